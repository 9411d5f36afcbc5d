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

    /// Stops the lanes (they put back what they hold), then the node's lease: other nodes see
    /// it stopped. Blocks until done.
    func close()
}

/// Why the shared queue did not take what it was given.
package struct SharedQueueFailure: Error, Sendable, CustomStringConvertible {
    /// What went wrong, for the caller.
    package let message: String

    /// A failure saying `message`.
    package init(message: String) { self.message = message }

    /// The message, as it is shown.
    package var description: String { message }
}
