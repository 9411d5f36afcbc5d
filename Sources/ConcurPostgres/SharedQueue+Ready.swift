import ConcurCore
import PostgresNIO

extension SharedQueue {
    /// The channel on which the nodes of this queue are told that a pool has queued jobs (the
    /// payload is the pool's name): the queue's schema, so that several queues in one database
    /// do not wake each other's nodes.
    package var channel: String { schema }

    /// The statement that tells every listening node that `pools` have queued jobs: sent in a
    /// transaction it is delivered at its commit, outside one at once. PostgreSQL folds
    /// identical notices of one transaction into one.
    func readyNotice(_ pools: some Sequence<String>) -> PostgresQuery {
        PostgresQuery(
            unsafeSQL: "SELECT count(pg_notify($1, p)) FROM unnest($2::text[]) AS p",
            binds: .of(channel, Array(Set(pools)).sorted()))
    }

    /// Tells the listening nodes that `pools` have queued jobs (after the statement that
    /// queued them committed). A notice that cannot be sent is logged, not thrown: what
    /// queued them is done, and every lane looks at the queue at least once a second anyway.
    func notifyReady(_ pools: some Sequence<String>, on session: StoreSession) async {
        let pools = Array(pools)
        guard !pools.isEmpty else { return }
        let (query, logger) = (readyNotice(pools), logger)
        do throws(StoreFailure) {
            try await session.run(limit: limit) { connection in
                for try await _ in try await connection.query(query, logger: logger).decode(Int64.self) {}
            }
        } catch {
            logger.warning(
                "the nodes could not be told of jobs queued in \(pools.joined(separator: ", ")): \(error); they look within a second"
            )
        }
    }
}
