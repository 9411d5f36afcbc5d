package import ConcurCore
package import ConcurProtocol
import PostgresNIO
import Varlink

extension SharedQueue {
    /// A job this node claimed: its record as the pool admits it, and the claim that fences
    /// every write about it.
    package struct Claimed: Sendable {
        /// The job (state queued, with the attempts and failed runs the store holds).
        package var record: JobRecord
        /// The claim's token: the row's `claims` after this claim.
        package var claim: Int64
    }

    /// Claims up to `limit` queued jobs of `pool` for this node, highest priority first, then
    /// oldest; jobs other nodes are claiming at the same moment are skipped, not waited for
    /// (`FOR UPDATE SKIP LOCKED`), so each job is claimed by one node. `exec` jobs are left to
    /// nodes that allow them. A row that no concurd could have written (an unreadable spec, a
    /// value out of range) is failed in place, naming what is wrong, and not returned.
    package func claim(
        pool: PoolName, limit: Int, allowExec: Bool, clock: MonotonicClock, on session: StoreSession
    ) async throws(StoreFailure) -> [Claimed] {
        let sql = """
            WITH picked AS (
              SELECT id FROM \(schema).jobs
              WHERE pool = $1 AND state = 0 AND ($2 OR kind <> \(JobEncoding.Kind.exec.rawValue))
              ORDER BY priority DESC, id LIMIT $3 FOR UPDATE SKIP LOCKED)
            UPDATE \(schema).jobs j SET state = 1, node = $4, claims = j.claims + 1
            FROM picked WHERE j.id = picked.id
            RETURNING j.id, j.claims, j.spec, j.attempts, j.preemptions, extract(epoch FROM j.submitted_at)::float8,
              j.history::text
            """
        let binds = PostgresBindings.of(pool.rawValue, allowExec, Int64(limit), node)
        let logger = logger
        let rows = try await session.run(limit: self.limit) { connection in
            var rows: [(Int64, Int64, String, Int32, Int32, Double, String?)] = []
            let result = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            for try await row in result.decode((Int64, Int64, String, Int32, Int32, Double, String?).self) {
                rows.append(row)
            }
            return rows
        }
        var claimed: [Claimed] = []
        var damaged: [(id: Int64, reason: String)] = []
        for (id, claim, specText, attempts, preemptions, submitted, history) in rows {
            do throws(JobEncoding.Damage) {
                let record = try Self.record(
                    id: id, specText: specText, attempts: attempts, preemptions: preemptions, submitted: submitted,
                    history: history, clock: clock)
                claimed.append(Claimed(record: record, claim: claim))
            } catch {
                damaged.append((id, Self.describe(error, id: id)))
            }
        }
        for (id, reason) in damaged {
            logger.error("job \(id) in the shared queue cannot run: \(reason)")
            _ = try await execute(
                "UPDATE \(schema).jobs SET state = \(JobEncoding.State.failed.rawValue), finished_at = now(), error = $2 WHERE id = $1 AND node = $3 RETURNING id",
                .of(id, reason, node), on: session)
        }
        return claimed.sorted { ($0.record.spec.priority, $1.record.id) > ($1.record.spec.priority, $0.record.id) }
    }

    /// Puts back the claimed, unstarted jobs of `pool` this node holds without knowing of them:
    /// claims that committed while their reply was lost with the connection. `known` are the
    /// jobs the node does hold. Returns how many went back; one a cancel asked to stop ends
    /// cancelled instead.
    package func releaseUnknown(pool: PoolName, known: [Int64], on session: StoreSession) async throws(StoreFailure) -> Int {
        try await putBack(pool: pool, where: "NOT (id = ANY($3))", known, on: session)
    }

    /// Puts back `ids`, claimed and unstarted jobs of `pool` this node's pool let go of
    /// (``PoolStateMachine/giveBackBuffered(keeping:)``) so that other nodes may run them;
    /// returns how many went back. One a cancel asked to stop ends cancelled instead.
    package func giveBack(_ ids: [Int64], pool: PoolName, on session: StoreSession) async throws(StoreFailure) -> Int {
        try await putBack(pool: pool, where: "id = ANY($3)", ids, on: session)
    }

    /// Queues again the claimed, unstarted jobs of `pool` this node holds that `condition`
    /// picks (`$3` is `ids`), and tells the listening nodes.
    private func putBack(pool: PoolName, where condition: String, _ ids: [Int64], on session: StoreSession)
        async throws(StoreFailure) -> Int
    {
        let released = try await execute(
            """
            UPDATE \(schema).jobs SET state = CASE WHEN cancel_reason IS NULL THEN 0 ELSE 5 END,
              node = CASE WHEN cancel_reason IS NULL THEN NULL ELSE node END,
              error = coalesce(error, cancel_reason), finished_at = CASE WHEN cancel_reason IS NULL THEN NULL ELSE now() END
            WHERE node = $1 AND pool = $2 AND state = 1 AND \(condition) RETURNING id
            """, .of(node, pool.rawValue, ids), on: session
        ).count
        if released > 0 { await notifyReady([pool.rawValue], on: session) }
        return released
    }

    /// The record of a claimed row, every value checked.
    static func record(
        id: Int64, specText: String, attempts: Int32, preemptions: Int32, submitted: Double, history: String?,
        clock: MonotonicClock
    ) throws(JobEncoding.Damage) -> JobRecord {
        let spec = try checkedSpec(id: id, text: specText)
        guard (0...JobEncoding.maxAttempts).contains(Int64(attempts)) else {
            throw JobEncoding.Damage(field: "attempts", value: "\(attempts)", allowed: "\(0...JobEncoding.maxAttempts)")
        }
        guard (0...attempts).contains(preemptions) else {
            throw JobEncoding.Damage(field: "preemptions", value: "\(preemptions)", allowed: "0...\(attempts)")
        }
        guard submitted.isFinite && JobEncoding.unixTimes.contains(submitted) else {
            throw JobEncoding.Damage(
                field: "submitted_at", value: "\(submitted)", allowed: "Unix times \(JobEncoding.unixTimes)")
        }
        var runs: [AttemptRecord] = []
        if let history {
            let attempts: [JobAttempt]
            do {
                attempts = try [JobAttempt](json: try JSON.parse(history), path: "history")
            } catch {
                throw JobEncoding.Damage(field: "history", value: "\(error)", allowed: nil)
            }
            runs = try JobEncoding.history(attempts, clock: clock)
        }
        return JobRecord(
            id: JobID(id), spec: spec, state: .queued, attempts: Int(attempts), preemptions: Int(preemptions),
            submittedAt: clock.monotonic(unixTime: submitted), history: runs)
    }

    /// The spec of row `id` from its text, the id checked too.
    static func checkedSpec(id: Int64, text: String) throws(JobEncoding.Damage) -> JobSpec {
        guard id >= 1 else { throw JobEncoding.Damage(field: "id", value: "\(id)", allowed: "1 and up") }
        do {
            return try JobSpec(json: try JSON.parse(text), path: "spec")
        } catch {
            throw JobEncoding.Damage(field: "spec", value: "\(error)", allowed: nil)
        }
    }

    /// What is wrong with row `id`, for its error column and the log.
    static func describe(_ damage: JobEncoding.Damage, id: Int64) -> String {
        guard let allowed = damage.allowed else {
            return "its \(damage.field) cannot be read (\(damage.value.prefix(200))); no concurd writes such a row"
        }
        return "its \(damage.field) is \(damage.value.prefix(40)), outside \(allowed); no concurd writes such a row"
    }
}
