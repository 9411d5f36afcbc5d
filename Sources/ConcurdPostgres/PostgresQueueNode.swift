package import ConcurCore
package import ConcurDaemon
package import ConcurPostgres
package import ConcurProtocol
import ConcurRuntime

/// A ``StoreNode`` as the daemon's ``SharedQueueNode``: the PostgreSQL shared queue behind
/// `concurd --store`.
extension StoreNode: SharedQueueNode {
    /// A new ``PoolLane`` of this node for `pool`; the node closes it when it closes.
    package func lane(for pool: PoolName, allowExec: Bool) -> any JobStore {
        let lane: PoolLane = lane(for: pool, allowExec: allowExec)
        return lane
    }

    /// Queues `jobs` from the node's submit thread (one transaction); `completion` runs there.
    package func enqueue(
        _ jobs: [JobSpec], into pool: PoolName, maxAttempts: Int,
        completion: @escaping @Sendable (Result<ClosedRange<Int64>, SharedQueueFailure>) -> Void
    ) {
        enqueue(jobs.map { SharedQueue.NewJob(pool: pool, spec: $0) }, maxAttempts: maxAttempts) { result in
            completion(result.mapError { SharedQueueFailure(message: $0.message, refusedAfter: $0.dependency?.index) })
        }
    }

    /// Cancels in the shared queue from the node's control thread; `completion` runs there.
    package func cancelShared(
        _ selection: SharedCancelSelection, reason: String,
        completion: @escaping @Sendable (Result<SharedCancel, SharedQueueFailure>) -> Void
    ) {
        let (ids, pool): ([Int64]?, PoolName) =
            switch selection {
            case .ids(let ids): (ids.map { Int64(clamping: $0) }, .default)
            case .queued(let pool): (nil, pool)
            }
        cancel(ids, queuedIn: pool.rawValue, reason: reason) { result in
            completion(
                result.map { verdict in
                    switch verdict {
                    case .cancelled(let cancelled, let stopping):
                        .cancelled(cancelled: cancelled.map { JobID($0) }, stopping: stopping.map { JobID($0) })
                    case .unknown(let id): .unknown(JobID(id))
                    case .finished(let id, let state): .finished(JobID(id), state)
                    }
                }.mapError { SharedQueueFailure(message: $0.message) })
        }
    }

    /// Hands the cancels asked of this node's jobs to `handler`, from the lease thread.
    package func whenCancelRequested(_ handler: @escaping @Sendable ([(id: JobID, reason: String)]) -> [JobID]) {
        onCancelRequests { requests in handler(requests.map { (JobID($0.id), $0.reason) }).map { Int64(clamping: $0) } }
    }

    /// This node's name in the queue.
    package var name: String { queue.node }

    /// Reads jobs from the node's control thread; `completion` runs there.
    package func readJobs(_ ids: [JobID], completion: @escaping @Sendable (Result<[JobInfo], SharedQueueFailure>) -> Void) {
        jobs(ids.map { Int64(clamping: $0) }) { result in
            completion(result.mapError { SharedQueueFailure(message: $0.message) })
        }
    }

    /// Reads the ended jobs of `ids` from the node's control thread; `completion` runs there.
    package func readEndedJobs(
        _ ids: [JobID], completion: @escaping @Sendable (Result<[JobInfo], SharedQueueFailure>) -> Void
    ) {
        endedJobs(ids.map { Int64(clamping: $0) }) { result in
            completion(result.mapError { SharedQueueFailure(message: $0.message) })
        }
    }

    /// Reads the ids of unfinished jobs from the node's control thread; `completion` runs there.
    package func readUnfinishedIDs(
        pool: String?, limit: Int, completion: @escaping @Sendable (Result<[JobID], SharedQueueFailure>) -> Void
    ) {
        unfinishedIDs(pool: pool, limit: limit) { result in
            completion(result.map { $0.map { JobID($0) } }.mapError { SharedQueueFailure(message: $0.message) })
        }
    }

    /// Reads recent jobs from the node's control thread; `completion` runs there.
    package func readRecentJobs(
        pool: String?, state: JobState?, limit: Int,
        completion: @escaping @Sendable (Result<[JobInfo], SharedQueueFailure>) -> Void
    ) {
        recentJobs(pool: pool, state: state, limit: limit) { result in
            completion(result.mapError { SharedQueueFailure(message: $0.message) })
        }
    }

    /// Reads the cluster from the node's control thread; `completion` runs there.
    package func readCluster(completion: @escaping @Sendable (Result<ClusterStatus, SharedQueueFailure>) -> Void) {
        clusterStatus { result in completion(result.mapError { SharedQueueFailure(message: $0.message) }) }
    }
}

/// Makes this process a daemon that can join a PostgreSQL shared queue (`concurd-postgres`),
/// whose own children (process workers, the command guard) run the `concurd` beside it when
/// there is one (``HelperBinary``): call before the command runs.
package func installPostgresQueue() {
    if let light = SharedQueueSupport.beside("concurd") { HelperBinary.pin(light) }
    SharedQueueSupport.install { settings, logger in
        try StoreNode(settings, clock: MonotonicClock(), logger: logger)
    }
}
