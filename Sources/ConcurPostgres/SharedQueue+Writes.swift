import ConcurCore
import PostgresNIO

extension SharedQueue {
    /// What became of a written batch.
    package struct Written: Sendable, Equatable {
        /// Jobs whose rows now hold the batch.
        package var written: [Int64] = []
        /// Jobs this node no longer holds (a rescue gave them to another node, or they were
        /// cancelled there): nothing was written, and the pool must drop them.
        package var fenced: [Int64] = []
        /// Jobs of `written` that ended and that other jobs wait for: to be settled
        /// (``SharedQueue/settleDependents(of:on:)``).
        package var awaited: [Int64] = []

        /// An outcome with these jobs written and these fenced.
        package init(written: [Int64] = [], fenced: [Int64] = [], awaited: [Int64] = []) {
            self.written = written
            self.fenced = fenced
            self.awaited = awaited
        }
    }

    /// Writes `batch` in one statement, each row only where this node still holds the job under
    /// the claim the row names. Writing the same batch twice (a resend after a connection lost
    /// with its commit in doubt) changes nothing the first write did not: a final row matches
    /// nothing the second time, and failed runs are appended only past the ones stored.
    package func write(_ batch: WriteBatch, on session: StoreSession) async throws(StoreFailure) -> Written {
        guard !batch.isEmpty else { return Written() }
        let (schema, logger, node, limit) = (schema, logger, node, limit)
        let sql = """
            WITH i AS (
              SELECT * FROM jsonb_to_recordset($1::jsonb) AS i(id bigint, claim bigint, state smallint, attempts integer,
                preemptions integer, worker integer, model text, started double precision, finished double precision,
                out_kind smallint, out_a bigint, out_b bigint, out_seconds double precision, out_text text, error text,
                history jsonb, retried jsonb, cancel_reason text))
            UPDATE \(schema).jobs j SET
              state = i.state,
              attempts = coalesce(i.attempts, j.attempts),
              preemptions = coalesce(i.preemptions, j.preemptions),
              worker = coalesce(i.worker, j.worker),
              model = coalesce(i.model, j.model),
              started_at = coalesce(to_timestamp(i.started), j.started_at),
              finished_at = to_timestamp(i.finished),
              out_kind = i.out_kind, out_a = i.out_a, out_b = i.out_b, out_seconds = i.out_seconds, out_text = i.out_text,
              error = coalesce(i.error, j.error),
              history = CASE
                WHEN i.history IS NOT NULL THEN i.history
                WHEN i.retried IS NOT NULL THEN coalesce(j.history, '[]'::jsonb) || coalesce((
                  SELECT jsonb_agg(r) FROM jsonb_array_elements(i.retried) r
                  WHERE (r->>'attempt')::bigint > coalesce((
                    SELECT max((h->>'attempt')::bigint) FROM jsonb_array_elements(j.history) h), 0)), '[]'::jsonb)
                ELSE j.history END,
              cancel_reason = coalesce(i.cancel_reason, j.cancel_reason)
            FROM i
            WHERE j.id = i.id AND j.claims = i.claim AND j.node = $2 AND j.state IN (1, 2)
            RETURNING j.id, j.dependents AND j.state IN (3, 4, 5)
            """
        let binds = PostgresBindings.of(batch.json, node)
        let rows = try await session.run(limit: limit) { connection in
            var rows: [(Int64, Bool)] = []
            let result = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            for try await row in result.decode((Int64, Bool).self) { rows.append(row) }
            return rows
        }
        let updated = rows.map(\.0)
        var written = Written(written: updated, awaited: rows.filter(\.1).map(\.0))
        guard updated.count < batch.rows.count else { return written }
        // Not matched: already written by a first try of this batch, or no longer ours.
        let matched = Set(updated)
        let missing = batch.rows.filter { !matched.contains($0.id) }
        let ours = Set(
            try await execute(
                """
                SELECT j.id FROM \(schema).jobs j
                JOIN jsonb_to_recordset($1::jsonb) AS i(id bigint, claim bigint, state smallint) ON j.id = i.id
                WHERE j.claims = i.claim AND j.node = $2 AND j.state = i.state
                """, .of(WriteBatch(rows: missing).json, node), on: session))
        for row in missing {
            if ours.contains(row.id) {
                written.written.append(row.id)
            } else {
                written.fenced.append(row.id)
            }
        }
        return written
    }
}

extension WriteBatch {
    /// A batch of `rows` as they are.
    init(rows: [Row]) {
        self.rows = rows
    }
}
