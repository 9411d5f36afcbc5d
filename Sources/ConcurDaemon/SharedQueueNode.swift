package import ConcurCore
package import ConcurProtocol

/// This daemon as a node of a queue it shares with other nodes (`--store`), as the daemon uses
/// it: each pool's job store is its lane of the queue, and submits go into the queue, where any
/// node serving the pool may claim them. The PostgreSQL node is `ConcurdPostgres`'s, linked
/// only into `concurd-postgres` (``SharedQueueSupport``).
package protocol SharedQueueNode: AnyObject, Sendable {
    /// The job store of pool `pool` (`allowExec`: whether it claims `exec` jobs); the node
    /// closes it when it closes.
    func lane(for pool: PoolName, allowExec: Bool) -> any JobStore

    /// Queues `jobs` (checked already) into `pool`'s part of the queue, each given
    /// `maxAttempts` attempts, and calls `completion` from the node's own thread with the ids
    /// they got once their transaction committed, or with why they were not queued.
    func enqueue(
        _ jobs: [JobSpec], into pool: PoolName, maxAttempts: Int,
        completion: @escaping @Sendable (Result<ClosedRange<Int64>, SharedQueueFailure>) -> Void)

    /// Makes `reporter` what the node writes of itself with each heartbeat, for the other
    /// nodes' `ClusterStatus`; called on the node's lease thread, so it must not block.
    func report(with reporter: @escaping @Sendable () -> NodeReport)

    /// Reads every node and the queue's jobs, and calls `completion` from the node's own thread
    /// with them, or with why the store could not be read.
    func readCluster(completion: @escaping @Sendable (Result<ClusterStatus, SharedQueueFailure>) -> Void)

    /// Cancels jobs in the shared queue and calls `completion` from the node's own thread with
    /// what became of them: `ids` all or none (jobs not started end cancelled at once; a job a
    /// node holds is asked to stop, and that node cancels it: ``whenCancelRequested(_:)``), or
    /// every job of a pool waiting in the queue.
    func cancelShared(
        _ selection: SharedCancelSelection, reason: String,
        completion: @escaping @Sendable (Result<SharedCancel, SharedQueueFailure>) -> Void)

    /// Makes `handler` what the node calls, from its own thread, with the jobs it holds that a
    /// cancel on some node asked to stop; it returns the ids it acted on (the others come again
    /// a second later) and must not block.
    func whenCancelRequested(_ handler: @escaping @Sendable ([(id: JobID, reason: String)]) -> [JobID])

    /// This node's name in the queue.
    var name: String { get }

    /// Reads the jobs of `ids` that the queue holds (ids it does not hold left out), and calls
    /// `completion` from the node's own thread with them, or with why they could not be read.
    func readJobs(_ ids: [JobID], completion: @escaping @Sendable (Result<[JobInfo], SharedQueueFailure>) -> Void)

    /// Reads the jobs of `ids` that have ended (the others left out), and calls `completion`
    /// from the node's own thread with them, or with why they could not be read.
    func readEndedJobs(_ ids: [JobID], completion: @escaping @Sendable (Result<[JobInfo], SharedQueueFailure>) -> Void)

    /// Reads the ids of up to `limit` jobs of the queue that have not ended, of `pool` or of
    /// every pool (nil), lowest first, and calls `completion` from the node's own thread with
    /// them, or with why they could not be read.
    func readUnfinishedIDs(
        pool: String?, limit: Int, completion: @escaping @Sendable (Result<[JobID], SharedQueueFailure>) -> Void)

    /// Reads up to `limit` of the queue's jobs in `state` (nil: the newest), of `pool` or of
    /// every pool (nil), in `ListJobs`'s order, and calls `completion` from the node's own
    /// thread with them, or with why they could not be read.
    func readRecentJobs(
        pool: String?, state: JobState?, limit: Int,
        completion: @escaping @Sendable (Result<[JobInfo], SharedQueueFailure>) -> Void)

    /// Stops the lanes (they put back what they hold), then the node's lease: other nodes see
    /// it stopped. Blocks until done.
    func close()
}

/// Why the shared queue did not take what it was given.
package struct SharedQueueFailure: Error, Sendable, CustomStringConvertible {
    /// What went wrong, for the caller.
    package let message: String
    /// Set when the submit itself was wrong: the index of the job whose `after` names a job the
    /// queue does not hold (`message` says which). Nothing was queued, and nothing would be.
    package var refusedAfter: Int?

    /// A failure saying `message`; `refusedAfter` as above.
    package init(message: String, refusedAfter: Int? = nil) {
        self.message = message
        self.refusedAfter = refusedAfter
    }

    /// The message, as it is shown.
    package var description: String { message }
}

/// What a cancel in the shared queue made of the jobs it was given.
package enum SharedCancel: Sendable, Equatable {
    /// Jobs not started ended cancelled; jobs a node holds are asked to stop (`stopping`).
    case cancelled(cancelled: [JobID], stopping: [JobID])
    /// No job of the queue has this id; nothing was cancelled.
    case unknown(JobID)
    /// This job had ended, in this state; nothing was cancelled.
    case finished(JobID, JobState)
}

/// The jobs a cancel in the shared queue is for.
package enum SharedCancelSelection: Sendable, Equatable {
    /// These jobs, all or none.
    case ids([JobID])
    /// Every job of this pool waiting in the queue (not those nodes hold).
    case queued(PoolName)
}
