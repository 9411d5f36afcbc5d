import ConcurCore
package import ConcurProtocol

/// A way of running workers: OS threads, child processes or tasks.
///
/// A started worker asks the pool for jobs until it is told to retire, then reports that it
/// exited. Every model shares the pool's queue, so switching models loses no job.
package protocol WorkerModel: Sendable {
    /// The model this implements.
    var model: ConcurrencyModel { get }
    /// Starts the worker of `handle` after `delay` seconds (a backoff after deaths).
    func startWorker(_ handle: WorkerHandle, pool: Pool, delay: Double) throws
    /// The OS threads every worker of the model shares, for a model whose workers take turns
    /// on a few (nil: each worker has a thread or a process of its own).
    var sharedThreads: Int? { get }
}

extension WorkerModel {
    /// Each worker has a thread or a process of its own.
    package var sharedThreads: Int? { nil }
}
