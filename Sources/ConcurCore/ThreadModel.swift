public import ConcurProtocol
import Glibc

/// The threads model: each worker is an OS thread blocking on the shared queue.
///
/// Swift has no global interpreter lock, so CPU-bound jobs on N threads use N cores: the lesson
/// the Python seed's threads could not show. A running job is interrupted only through its
/// cancellation flag, which every workload checks about once a millisecond; a `crash` job is
/// refused (it would abort the daemon) unless forced.
public struct ThreadModel: WorkerModel {
    /// `.threads`.
    public let model = ConcurrencyModel.threads

    /// The model.
    public init() {}

    /// Starts worker `handle.id` as a detached OS thread.
    public func startWorker(_ handle: WorkerHandle, pool: Pool, delay: Double) throws {
        try OSThread.start(name: "concur-worker-\(handle.id)") {
            if delay > 0 { usleep(UInt32(min(delay, 60) * 1e6)) }
            pool.workerReady(handle.id, osID: OSThread.currentID)
            var previous: JobReport?
            while let job = pool.nextJob(for: handle.id, completing: previous) {
                let start = MonotonicClock.now()
                let outcome = Workload.run(job, cancellation: handle.cancellation, crashAllowed: false)
                previous = JobReport(id: job.id, outcome: outcome, startedAt: start, finishedAt: MonotonicClock.now())
            }
            pool.workerExited(handle.id, exit: .retired)
        }
    }
}
