import ConcurCore
package import ConcurProtocol
package import Logging
import PostgresNIO
import Varlink

/// The statements one node runs on the queue all nodes share: queueing jobs, claiming them for
/// its pools, writing what became of them, and (``NodeLease``) proving it is alive.
///
/// Each statement is one round trip (a few, in one transaction, for ``enqueue(_:maxAttempts:on:)``)
/// and runs through a ``StoreSession``, so none waits forever. Row ownership is fenced: a job
/// is written only under the claim that gave it to this node (`claims`, a counter every claim
/// increments), so a node that lost a job to a rescue writes nothing over the run that
/// followed.
package struct SharedQueue: Sendable {
    /// The schema the tables are in.
    package let schema: String
    /// This node's name.
    package let node: String
    /// How long one statement may take before its connection is given up.
    package var limit: Duration = .seconds(30)
    let logger: Logger

    /// The queue in `schema`, as node `node` sees it.
    package init(schema: String, node: String, logger: Logger) {
        self.schema = schema
        self.node = node
        self.logger = logger
    }

    /// A job to queue: its pool and its spec, already checked (``JobAdmission``).
    package struct NewJob: Sendable {
        /// The pool that runs it.
        package var pool: PoolName
        /// What it runs.
        package var spec: JobSpec

        /// A job for `pool`.
        package init(pool: PoolName, spec: JobSpec) {
            self.pool = pool
            self.spec = spec
        }
    }

    /// Queues `jobs` in one transaction and returns their ids, consecutive and in order. A job
    /// with a start time in the future waits in state 6 until ``promoteDue(on:)`` queues it; one
    /// that runs after jobs that have not ended waits in state 7, linked to them in `job_after`,
    /// until they end (``settleDependents(of:on:)``); one that runs after a job that failed or was
    /// cancelled ends cancelled at once, saying which. `maxAttempts` is how many crashes of its
    /// runs the job survives.
    ///
    /// The jobs waited for are locked first, in id order (so two submits never deadlock), and
    /// marked: whoever ends one meanwhile waits for this commit, then learns from its own update
    /// that it has dependents to settle.
    ///
    /// - Throws: ``StoreFailure``. Transient while the server is away; whether the jobs were
    ///   queued is then unknown only if the connection closed after the commit was sent. With
    ///   ``StoreFailure/dependency`` set (nothing queued) when a job runs after one the queue does
    ///   not hold.
    package func enqueue(
        _ jobs: [NewJob], maxAttempts: Int, on session: StoreSession
    ) async throws(StoreFailure) -> ClosedRange<Int64> {
        precondition(!jobs.isEmpty, "enqueue needs a job")
        let awaited = Array(Set(jobs.flatMap(\.spec.after))).sorted().map { Int64(clamping: $0) }
        let count = Int64(jobs.count)
        let notice = readyNotice(jobs.map(\.pool.rawValue))
        let node = node
        let schema = schema
        let logger = logger
        let first = try await session.run(limit: limit) { connection in
            try await connection.withTransaction(logger: logger) { connection in
                var states: [Int64: Int16] = [:]
                if !awaited.isEmpty {
                    let rows = try await connection.query(
                        PostgresQuery(
                            unsafeSQL: "SELECT id, state FROM \(schema).jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                            binds: .of(awaited)), logger: logger)
                    for try await (id, state) in rows.decode((Int64, Int16).self) { states[id] = state }
                }
                let reserved = try await connection.query(
                    PostgresQuery(
                        unsafeSQL:
                            "UPDATE \(schema).meta SET value = value + $1 WHERE key = 'next_job_id' RETURNING value - $1",
                        binds: .of(count)), logger: logger)
                var first: Int64?
                for try await value in reserved.decode(Int64.self) { first = value }
                guard let first else {
                    throw StoreFailure(
                        kind: .permanent,
                        message:
                            "the job store's \(schema).meta has no next_job_id: the schema is damaged; restore it from a backup, or point --store at another database"
                    )
                }
                let plan = try Self.dependencyPlan(jobs, states: states, nextID: first)
                try await connection.query(
                    PostgresQuery(
                        unsafeSQL: """
                            INSERT INTO \(schema).jobs (id, pool, spec, kind, at_most_once, priority, max_attempts, state,
                              run_at, waiting_for, submitted_at, submitted_on, finished_at, error, cancel_reason)
                            SELECT $1 + i.n, i.pool, i.spec, i.kind, i.at_most_once, i.priority, $2,
                              CASE WHEN i.why IS NOT NULL THEN 5 WHEN i.wait > 0 THEN 7
                                WHEN i.run_at IS NULL OR to_timestamp(i.run_at) <= now() THEN 0 ELSE 6 END,
                              coalesce(to_timestamp(i.run_at), now()), coalesce(i.wait, 0), now(), $3,
                              CASE WHEN i.why IS NOT NULL THEN now() END, i.why, i.why
                            FROM jsonb_to_recordset($4::jsonb)
                              AS i(n bigint, pool text, spec text, kind smallint, at_most_once boolean, priority smallint,
                                run_at double precision, wait integer, why text)
                            """,
                        binds: .of(first, Int16(clamping: maxAttempts), node, Self.rows(jobs, plan: plan))),
                    logger: logger)
                if !plan.links.isEmpty {
                    try await connection.query(
                        PostgresQuery(
                            unsafeSQL: """
                                INSERT INTO \(schema).job_after (after, job)
                                SELECT l.after, $1 + l.n FROM jsonb_to_recordset($2::jsonb) AS l(n bigint, after bigint)
                                """, binds: .of(first, plan.linksJSON)), logger: logger)
                    try await connection.query(
                        PostgresQuery(
                            unsafeSQL: "UPDATE \(schema).jobs SET dependents = true WHERE id = ANY($1) AND NOT dependents",
                            binds: .of(plan.awaited)), logger: logger)
                }
                // Read to its end: an error of a statement with rows comes with them, not before.
                for try await _ in try await connection.query(notice, logger: logger).decode(Int64.self) {}
                return first
            }
        }
        return first...(first + count - 1)
    }

    /// The rows ``enqueue(_:maxAttempts:on:)`` inserts, as the JSON its statement reads.
    private static func rows(_ jobs: [NewJob], plan: DependencyPlan) -> String {
        JSON.array(
            jobs.enumerated().map { index, job in
                var object: JSONObject = [
                    "n": .int(Int64(index)), "pool": .string(job.pool.rawValue), "spec": .string(job.spec.json.serialized),
                    "kind": .int(Int64(JobEncoding.Kind(job.spec.kind).rawValue)),
                    "at_most_once": .bool(job.spec.delivery == .atMostOnce),
                    "priority": .int(Int64(job.spec.priority)),
                ]
                object.set("run_at", job.spec.startAt)
                if let wait = plan.waits[index] { object["wait"] = .int(Int64(wait)) }
                if let why = plan.cancelled[index] { object["why"] = .string(why) }
                return .object(object)
            }
        ).serialized
    }

    /// Moves jobs whose start time has come (state 6) to the queue and tells the listening
    /// nodes; returns how many.
    package func promoteDue(on session: StoreSession) async throws(StoreFailure) -> Int {
        let (sql, logger) = ("UPDATE \(schema).jobs SET state = 0 WHERE state = 6 AND run_at <= now() RETURNING pool", logger)
        let pools = try await session.run(limit: limit) { connection in
            var pools: [String] = []
            for try await pool in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(String.self) {
                pools.append(pool)
            }
            return pools
        }
        await notifyReady(pools, on: session)
        return pools.count
    }

    /// Runs one statement and returns the first column of its rows, as `Int64`.
    func execute(_ sql: String, _ binds: PostgresBindings = PostgresBindings(), on session: StoreSession)
        async throws(StoreFailure) -> [Int64]
    {
        let logger = logger
        return try await session.run(limit: limit) { connection in
            var values: [Int64] = []
            for try await value in try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
                .decode(Int64.self)
            {
                values.append(value)
            }
            return values
        }
    }
}
