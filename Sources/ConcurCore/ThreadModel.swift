public import ConcurProtocol

/// The threads model: each worker is an OS thread blocking on the shared queue.
///
/// Swift has no global interpreter lock, so CPU-bound jobs on N threads use N cores: the lesson
/// the Python seed's threads could not show. A running job is interrupted only through its
/// cancellation flag, which every workload checks about once a millisecond.
public struct ThreadModel: WorkerModel {
    /// `.threads`.
    public let model = ConcurrencyModel.threads

    /// The model.
    public init() {}

    /// Starts worker `id` as this model runs workers.
    public func startWorker(_ id: WorkerID, cancellation: CancellationFlag, pool: Pool) throws {
        try OSThread.start(name: "concur-worker-\(id)") {
            pool.workerStarted(id, osID: OSThread.currentID)
            var previous: (job: Job, outcome: JobOutcome)?
            while let job = pool.nextJob(for: id, completing: previous) {
                previous = (job, Workload.run(job.kind, cancellation: cancellation))
            }
            pool.workerExited(id)
        }
    }
}
