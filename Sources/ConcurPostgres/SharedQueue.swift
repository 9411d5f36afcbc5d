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
    /// with a start time in the future waits in state 6 until ``promoteDue(on:)`` queues it;
    /// `maxAttempts` is how many crashes of its runs the job survives.
    ///
    /// - Throws: ``StoreFailure``. Transient while the server is away; whether the jobs were
    ///   queued is then unknown only if the connection closed after the commit was sent.
    package func enqueue(
        _ jobs: [NewJob], maxAttempts: Int, on session: StoreSession
    ) async throws(StoreFailure) -> ClosedRange<Int64> {
        precondition(!jobs.isEmpty, "enqueue needs a job")
        let rows = JSON.array(
            jobs.enumerated().map { index, job in
                var object: JSONObject = [
                    "n": .int(Int64(index)), "pool": .string(job.pool.rawValue), "spec": .string(job.spec.json.serialized),
                    "kind": .int(Int64(JobEncoding.Kind(job.spec.kind).rawValue)),
                    "at_most_once": .bool(job.spec.delivery == .atMostOnce),
                    "priority": .int(Int64(job.spec.priority)),
                ]
                object.set("run_at", job.spec.startAt)
                return .object(object)
            }
        ).serialized
        let count = Int64(jobs.count)
        let notice = readyNotice(jobs.map(\.pool.rawValue))
        let node = node
        let schema = schema
        let logger = logger
        let first = try await session.run(limit: limit) { connection in
            try await connection.withTransaction(logger: logger) { connection in
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
                try await connection.query(
                    PostgresQuery(
                        unsafeSQL: """
                            INSERT INTO \(schema).jobs (id, pool, spec, kind, at_most_once, priority, max_attempts, state,
                              run_at, submitted_at, submitted_on)
                            SELECT $1 + i.n, i.pool, i.spec, i.kind, i.at_most_once, i.priority, $2,
                              CASE WHEN i.run_at IS NULL OR to_timestamp(i.run_at) <= now() THEN 0 ELSE 6 END,
                              coalesce(to_timestamp(i.run_at), now()), now(), $3
                            FROM jsonb_to_recordset($4::jsonb)
                              AS i(n bigint, pool text, spec text, kind smallint, at_most_once boolean, priority smallint,
                                run_at double precision)
                            """,
                        binds: .of(first, Int16(clamping: maxAttempts), node, rows)), logger: logger)
                // Read to its end: an error of a statement with rows comes with them, not before.
                for try await _ in try await connection.query(notice, logger: logger).decode(Int64.self) {}
                return first
            }
        }
        return first...(first + count - 1)
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
