import ConcurCore
package import ConcurProtocol
import PostgresNIO

extension SharedQueue {
    /// What a cancel made of the jobs it was given, all or none.
    package enum CancelVerdict: Sendable, Equatable {
        /// Jobs not started ended cancelled at once; jobs some node holds are asked to stop
        /// (`stopping`): their node cancels them when it next looks, within a second or so.
        case cancelled(cancelled: [Int64], stopping: [Int64])
        /// No job has this id in the queue: nothing was cancelled.
        case unknown(Int64)
        /// This job had ended, in this state: nothing was cancelled.
        case finished(Int64, JobState)
    }

    /// Cancels `ids` in one transaction, all or none: queued and scheduled jobs end cancelled at
    /// once with `reason`; a job a node holds (claimed or running, on this node or another)
    /// gets `reason` as a request its node acts on (``cancelRequests(on:)``), and the
    /// restart rules end it cancelled if its node is lost first. The jobs waiting for those
    /// cancelled at once are cancelled too.
    package func cancel(_ ids: [Int64], reason: String, on session: StoreSession) async throws(StoreFailure)
        -> CancelVerdict
    {
        let (schema, logger) = (schema, logger)
        let verdict = try await session.run(limit: limit) { connection -> CancelVerdict in
            try await connection.withTransaction(logger: logger) { connection -> CancelVerdict in
                var states: [Int64: Int16] = [:]
                let rows = try await connection.query(
                    PostgresQuery(
                        unsafeSQL: "SELECT id, state FROM \(schema).jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                        binds: .of(ids)), logger: logger)
                for try await (id, state) in rows.decode((Int64, Int16).self) { states[id] = state }
                for id in ids {
                    guard let state = states[id] else { return .unknown(id) }
                    if let ended = Self.finalState(state) { return .finished(id, ended) }
                }
                var cancelled: [Int64] = []
                let ended = try await connection.query(
                    PostgresQuery(
                        unsafeSQL: """
                            UPDATE \(schema).jobs SET state = 5, cancel_reason = $2, error = $2, finished_at = now()
                            WHERE id = ANY($1) AND state IN (0, 6, 7) RETURNING id
                            """, binds: .of(ids, reason)), logger: logger)
                for try await id in ended.decode(Int64.self) { cancelled.append(id) }
                var stopping: [Int64] = []
                let asked = try await connection.query(
                    PostgresQuery(
                        unsafeSQL: """
                            UPDATE \(schema).jobs SET cancel_reason = coalesce(cancel_reason, $2)
                            WHERE id = ANY($1) AND state IN (1, 2) RETURNING id
                            """, binds: .of(ids, reason)), logger: logger)
                for try await id in asked.decode(Int64.self) { stopping.append(id) }
                return CancelVerdict.cancelled(cancelled: cancelled.sorted(), stopping: stopping.sorted())
            }
        }
        if case .cancelled(let cancelled, _) = verdict, !cancelled.isEmpty {
            await settleDependents(of: cancelled, on: session)
        }
        return verdict
    }

    /// Cancels every job of `pool` that waits in the queue (queued or scheduled; not the ones
    /// nodes hold) with `reason`, and the jobs waiting for them; returns the ids of the first.
    package func cancelQueued(in pool: String, reason: String, on session: StoreSession) async throws(StoreFailure)
        -> [Int64]
    {
        let cancelled = try await execute(
            """
            UPDATE \(schema).jobs SET state = 5, cancel_reason = $2, error = $2, finished_at = now()
            WHERE pool = $1 AND state IN (0, 6, 7) RETURNING id
            """, .of(pool, reason), on: session
        ).sorted()
        if !cancelled.isEmpty { await settleDependents(of: cancelled, on: session) }
        return cancelled
    }

    /// The jobs this node holds that a cancel asked to stop, with the reason (those it acted on
    /// already too, until they end). Reads the held jobs' index only.
    package func cancelRequests(on session: StoreSession) async throws(StoreFailure) -> [(id: Int64, reason: String)] {
        let (schema, logger, node) = (schema, logger, node)
        return try await session.run(limit: limit) { connection in
            var requests: [(id: Int64, reason: String)] = []
            let rows = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT id, cancel_reason FROM \(schema).jobs
                        WHERE node = $1 AND state IN (1, 2) AND cancel_reason IS NOT NULL ORDER BY id
                        """, binds: .of(node)), logger: logger)
            for try await (id, reason) in rows.decode((Int64, String).self) {
                requests.append((id, reason))
            }
            return requests
        }
    }

    /// The job state a final queue state stands for; nil if it is not final.
    static func finalState(_ state: Int16) -> JobState? {
        switch state {
        case 3: .done
        case 4: .failed
        case 5: .cancelled
        default: nil
        }
    }
}
