package import ConcurCore
package import ConcurProtocol
import PostgresNIO

extension SharedQueue {
    /// Deletes finished jobs of `pool` (done, failed, cancelled) beyond `retention`: those that
    /// finished more than `retention.age` seconds ago, and those older (by id) than the
    /// `retention.count` newest finished ones; at most `batch` of them a call, oldest first, so
    /// that no statement runs long. Returns how many went. Jobs that have not finished are
    /// never touched, nor are jobs whose dependents are not settled yet (their links would go
    /// with them, and the jobs waiting would wait forever). Nodes pruning the same pool at once
    /// delete each row once.
    package func prune(
        pool: PoolName, keeping retention: JobRetention, batch: Int = 5_000, on session: StoreSession
    ) async throws(StoreFailure) -> Int {
        let codes = [JobEncoding.State.done, .failed, .cancelled].map { "\($0.rawValue)" }
        let finished = "state IN (\(codes.joined(separator: ", ")))"
        return try await execute(
            """
            WITH doomed AS (
              SELECT id FROM \(schema).jobs
              WHERE pool = $1 AND \(finished)
                AND (finished_at < now() - make_interval(secs => $2)
                  OR id <= (SELECT id FROM \(schema).jobs WHERE pool = $1 AND \(finished) ORDER BY id DESC OFFSET $3 LIMIT 1))
                AND NOT EXISTS (SELECT 1 FROM \(schema).job_after a WHERE a.after = jobs.id)
              ORDER BY id LIMIT $4),
            gone AS (DELETE FROM \(schema).jobs j USING doomed WHERE j.id = doomed.id RETURNING j.id),
            links AS (DELETE FROM \(schema).job_after a USING gone WHERE a.job = gone.id)
            SELECT count(*) FROM gone
            """, .of(pool.rawValue, retention.age, Int64(retention.count), Int64(batch)), on: session
        ).first.map(Int.init) ?? 0
    }
}
