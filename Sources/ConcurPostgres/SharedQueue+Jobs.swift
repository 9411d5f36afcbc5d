import ConcurCore
package import ConcurProtocol
import PostgresNIO
import Varlink

extension SharedQueue {
    /// Reads the jobs of `ids` that the queue holds, as `ListJobs` shows them, each with the
    /// node that holds or ran it; ids the queue does not hold are left out. A job is `queued`
    /// until a node starts it (claimed ones have their node), `running` once started.
    ///
    /// - Throws: ``StoreFailure``: transient while the server is away; permanent, naming the
    ///   job and the field, for a row no concurd writes.
    package func jobs(_ ids: [Int64], on session: StoreSession) async throws(StoreFailure) -> [JobInfo] {
        try await jobs(where: "id = ANY($1) ORDER BY id", .of(ids), on: session)
    }

    /// The jobs of `ids` that have ended (done, failed, cancelled), as ``jobs(_:on:)`` reads them:
    /// what a wait for them polls.
    ///
    /// - Throws: as ``jobs(_:on:)``.
    package func endedJobs(_ ids: [Int64], on session: StoreSession) async throws(StoreFailure) -> [JobInfo] {
        try await jobs(where: "id = ANY($1) AND state IN (3, 4, 5) ORDER BY id", .of(ids), on: session)
    }

    /// The ids of up to `limit` jobs of the queue that have not ended, of `pool` or of every
    /// pool (nil), lowest first: what `wait --all` waits for.
    package func unfinishedIDs(pool: String?, limit: Int, on session: StoreSession) async throws(StoreFailure) -> [Int64] {
        try await execute(
            "SELECT id FROM \(schema).jobs WHERE ($1 = '' OR pool = $1) AND state NOT IN (3, 4, 5) ORDER BY id LIMIT $2",
            .of(pool ?? "", Int64(limit)), on: session)
    }

    /// Up to `limit` jobs of the queue in `state` (any: the newest by id), of `pool` or of
    /// every pool, as `ListJobs` orders them: queued ones (claimed ones too, until a node
    /// starts them) in the order they run, scheduled ones the soonest first, waiting and
    /// running ones by id, finished ones the most recently finished first.
    ///
    /// - Throws: as ``jobs(_:on:)``.
    package func recentJobs(pool: String?, state: JobState?, limit: Int, on session: StoreSession)
        async throws(StoreFailure) -> [JobInfo]
    {
        let order: String
        switch state {
        case nil: order = "true ORDER BY id DESC"
        case .queued: order = "state IN (0, 1) ORDER BY priority DESC, id"
        case .scheduled: order = "state = 6 ORDER BY run_at, id"
        case .waiting: order = "state = 7 ORDER BY id"
        case .running: order = "state = 2 ORDER BY id"
        case .done: order = "state = 3 ORDER BY finished_at DESC, id DESC"
        case .failed: order = "state = 4 ORDER BY finished_at DESC, id DESC"
        case .cancelled: order = "state = 5 ORDER BY finished_at DESC, id DESC"
        }
        // No pool is named "": that means every pool.
        return try await jobs(where: "($1 = '' OR pool = $1) AND \(order) LIMIT $2", .of(pool ?? "", Int64(limit)), on: session)
    }

    /// The jobs of the rows `condition` (the statement's tail: a condition, then its order)
    /// picks, every value checked.
    private func jobs(where condition: String, _ binds: PostgresBindings, on session: StoreSession)
        async throws(StoreFailure) -> [JobInfo]
    {
        let (schema, logger) = (schema, logger)
        let rows = try await session.run(limit: limit) { connection in
            var rows: [Row] = []
            let result = try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT id, pool, spec, state, attempts, worker, model, extract(epoch FROM submitted_at)::float8,
                          extract(epoch FROM started_at)::float8, extract(epoch FROM finished_at)::float8, out_kind, out_a,
                          out_b, out_seconds, out_text, error, history::text, node,
                          CASE WHEN state = 7 THEN (SELECT array_agg(a.after ORDER BY a.after) FROM \(schema).job_after a
                            WHERE a.job = jobs.id) END
                        FROM \(schema).jobs WHERE \(condition)
                        """, binds: binds), logger: logger)
            for try await row in result.decode(Row.self) { rows.append(row) }
            return rows
        }
        var jobs: [JobInfo] = []
        for row in rows {
            do throws(JobEncoding.Damage) {
                jobs.append(try Self.info(row))
            } catch {
                let why = Self.describe(error, id: row.0)
                throw StoreFailure(kind: .permanent, message: "job \(row.0) in the shared queue cannot be read: \(why)")
            }
        }
        return jobs
    }

    /// A row of ``jobs(_:on:)``.
    typealias Row = (
        Int64, String, String, Int16, Int32, Int32?, String?, Double, Double?, Double?, Int16?, Int64?, Int64?, Double?,
        String?, String?, String?, String?, [Int64]?
    )

    /// The job of a row, every value checked.
    static func info(_ row: Row) throws(JobEncoding.Damage) -> JobInfo {
        let (id, pool, specText, stored, attempts, worker, model, submitted, started, finished) =
            (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9)
        let spec = try checkedSpec(id: id, text: specText)
        let state: JobState
        switch stored {
        case 0, 1: state = .queued
        case 2: state = .running
        case 6: state = .scheduled
        case 7: state = .waiting
        default:
            guard let final = finalState(stored) else {
                throw JobEncoding.Damage(field: "state", value: "\(stored)", allowed: "0...7")
            }
            state = final
        }
        guard (0...JobEncoding.maxAttempts).contains(Int64(attempts)) else {
            throw JobEncoding.Damage(field: "attempts", value: "\(attempts)", allowed: "\(0...JobEncoding.maxAttempts)")
        }
        for (field, time) in [("submitted_at", submitted), ("started_at", started), ("finished_at", finished)] {
            if let time, !(time.isFinite && JobEncoding.unixTimes.contains(time)) {
                throw JobEncoding.Damage(field: field, value: "\(time)", allowed: "Unix times \(JobEncoding.unixTimes)")
            }
        }
        if let worker, worker < 1 { throw JobEncoding.Damage(field: "worker", value: "\(worker)", allowed: "1 and up") }
        let runsOn = try model.map { text throws(JobEncoding.Damage) in
            guard let known = ConcurrencyModel(rawValue: text) else {
                throw JobEncoding.Damage(field: "model", value: "'\(text.prefix(40))'", allowed: "threads, processes, tasks")
            }
            return known
        }
        let output = try JobEncoding.OutputColumns(
            rawKind: row.10.map(Int64.init), a: row.11, b: row.12, seconds: row.13, text: row.14
        ).output()
        var history: [JobAttempt] = []
        if let text = row.16 {
            do {
                history = try [JobAttempt](json: try JSON.parse(text), path: "history")
            } catch {
                throw JobEncoding.Damage(field: "history", value: "\(error)", allowed: nil)
            }
        }
        var info = JobInfo(
            id: UInt64(id), spec: spec, state: state, attempts: Int(attempts), submittedAt: submitted,
            startedAt: state == .queued ? nil : started, finishedAt: state.isFinal ? finished : nil,
            worker: worker.map(Int.init), model: runsOn, result: output?.result, error: row.15, history: history)
        info.pool = pool
        info.node = row.17
        info.waitingFor = (row.18 ?? []).map { UInt64(clamping: $0) }
        return info
    }
}
