package import Logging
import PostgresNIO
package import StoreAccess

/// The tables concurd keeps in PostgreSQL, the steps that build and migrate them, and the checks
/// a node makes before it trusts what it finds there.
///
/// ``prepare(on:address:limit:logger:)`` runs in one transaction under an advisory lock, so nodes that
/// start at once never race: the first creates or migrates, the others find the work done. A
/// schema this build is too old for (its `oldest_compatible` is above ``version``) is refused
/// with what to do; one newer but still compatible is used as it is. Tables that another role
/// owns or may write are refused too: whoever can write `jobs` can plant `exec` jobs on every
/// node that allows them.
package enum StoreSchema {
    /// The schema version this build writes and knows.
    package static let version: Int64 = 2

    /// The steps, one per version: `steps(in:)[n]` takes the schema from version `n` to `n + 1`.
    /// A step is a list of statements (the extended protocol runs one at a time). The schema name
    /// is spliced in: ``StoreAddress`` admits only plain lower-case identifiers.
    static func steps(in schema: String) -> [[String]] {
        [
            [
                "CREATE TABLE \(schema).meta (key text PRIMARY KEY, value bigint NOT NULL)",
                """
                INSERT INTO \(schema).meta (key, value)
                VALUES ('schema_version', 0), ('oldest_compatible', 1), ('next_job_id', 1)
                """,
                """
                CREATE TABLE \(schema).nodes (
                  name text PRIMARY KEY,
                  incarnation bigint NOT NULL,
                  host text NOT NULL,
                  pid integer NOT NULL,
                  version text NOT NULL,
                  state smallint NOT NULL,
                  started_at timestamptz NOT NULL,
                  heartbeat_at timestamptz NOT NULL,
                  lease_until timestamptz NOT NULL,
                  lease_seconds double precision NOT NULL,
                  pools jsonb NOT NULL DEFAULT '[]',
                  done bigint NOT NULL DEFAULT 0,
                  failed bigint NOT NULL DEFAULT 0,
                  cancelled bigint NOT NULL DEFAULT 0,
                  CHECK (state BETWEEN 0 AND 2))
                """,
                """
                CREATE TABLE \(schema).jobs (
                  id bigint PRIMARY KEY,
                  pool text NOT NULL,
                  spec text NOT NULL,
                  kind smallint NOT NULL,
                  at_most_once boolean NOT NULL,
                  priority smallint NOT NULL,
                  max_attempts smallint NOT NULL,
                  state smallint NOT NULL,
                  run_at timestamptz NOT NULL,
                  waiting_for integer NOT NULL DEFAULT 0,
                  node text,
                  claims bigint NOT NULL DEFAULT 0,
                  attempts integer NOT NULL DEFAULT 0,
                  preemptions integer NOT NULL DEFAULT 0,
                  worker integer,
                  model text,
                  submitted_at timestamptz NOT NULL,
                  submitted_on text NOT NULL,
                  started_at timestamptz,
                  finished_at timestamptz,
                  out_kind smallint,
                  out_a bigint,
                  out_b bigint,
                  out_seconds double precision,
                  out_text text,
                  error text,
                  cancel_reason text,
                  history jsonb,
                  CHECK (state BETWEEN 0 AND 7),
                  CHECK (priority BETWEEN -10 AND 10))
                WITH (fillfactor = 85, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 1)
                """,
                "CREATE INDEX jobs_ready ON \(schema).jobs (pool, priority DESC, id) WHERE state = 0",
                "CREATE INDEX jobs_due ON \(schema).jobs (run_at) WHERE state = 6",
                "CREATE INDEX jobs_held ON \(schema).jobs (node) WHERE state IN (1, 2)",
                "CREATE INDEX jobs_finished ON \(schema).jobs (pool, id) WHERE state IN (3, 4, 5)",
                """
                CREATE TABLE \(schema).job_after (
                  after bigint NOT NULL, job bigint NOT NULL, PRIMARY KEY (after, job))
                """,
            ],
            // Dependencies: a row of `job_after` says `job` still waits for `after`; it goes when
            // `after` ends. `dependents` marks a job others were made to wait for, under its row
            // lock, so whoever ends it learns (by its update's RETURNING) that it must settle them.
            [
                "ALTER TABLE \(schema).jobs ADD COLUMN dependents boolean NOT NULL DEFAULT false",
                "CREATE INDEX job_after_job ON \(schema).job_after (job)",
            ],
        ]
    }

    /// What ``prepare(on:address:limit:logger:)`` found and did.
    package struct Outcome: Sendable, Equatable {
        /// The version found (0: nothing was there).
        package var found: Int64
        /// The version the schema has now: ``StoreSchema/version``, or a newer one that still
        /// admits this build.
        package var now: Int64

        /// An outcome: `found` before, `now` after.
        package init(found: Int64, now: Int64) {
            self.found = found
            self.now = now
        }
    }

    /// Creates the schema if it is missing, migrates an older one, refuses one this build is too
    /// old for, and checks that nobody but the connecting role owns or may write its tables.
    ///
    /// Runs one transaction on the session's connection (which it uses exclusively meanwhile),
    /// ended past `limit`; nodes that call it at once wait for each other on an advisory lock.
    ///
    /// - Throws: ``StoreFailure``: permanent for a schema too new, untrusted tables or a missing
    ///   privilege, transient when the server went away.
    package static func prepare(
        on session: StoreSession, address: StoreAddress, limit: Duration = .seconds(60), logger: Logger
    ) async throws(StoreFailure) -> Outcome {
        let schema = address.schema
        return try await session.run(limit: limit) { connection in
            try await connection.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(schema + ".schema")))", logger: logger)
                try await checkTrust(on: connection, schema: schema, logger: logger)
                let found = try await installedVersion(on: connection, schema: schema, logger: logger)
                let now: Int64
                if let found {
                    let oldest = try await meta("oldest_compatible", on: connection, schema: schema, logger: logger) ?? 1
                    guard oldest <= version else {
                        throw StoreFailure(
                            kind: .permanent,
                            message:
                                "the job store's schema \(schema) is version \(found), written by a newer concurd; this one knows up to version \(version) and version \(found) needs at least \(oldest): upgrade concurd on this node, or point --store at another database"
                        )
                    }
                    now = max(found, version)
                } else {
                    try await connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"), logger: logger)
                    now = version
                }
                let from = found ?? 0
                if from < version {
                    for step in steps(in: schema)[Int(from)..<Int(version)] {
                        for statement in step {
                            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                    }
                    try await connection.query(
                        PostgresQuery(
                            unsafeSQL: "UPDATE \(schema).meta SET value = \(version) WHERE key = 'schema_version'"),
                        logger: logger)
                    try await checkTrust(on: connection, schema: schema, logger: logger)
                    logger.notice(
                        "job store schema \(schema) \(from == 0 ? "created" : "migrated from version \(from)") at version \(version)"
                    )
                }
                return Outcome(found: from, now: now)
            }
        }
    }

    /// The version recorded in `schema.meta`, or nil when the schema has no tables of concur's.
    private static func installedVersion(
        on connection: PostgresConnection, schema: String, logger: Logger
    ) async throws -> Int64? {
        let rows = try await connection.query(
            "SELECT to_regclass(\(schema + ".meta")) IS NOT NULL", logger: logger)
        var exists = false
        for try await present in rows.decode(Bool.self) { exists = present }
        guard exists else {
            let other = try await connection.query(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = \(schema)",
                logger: logger)
            var count: Int64 = 0
            for try await found in other.decode(Int64.self) { count = found }
            if count > 0 {
                throw StoreFailure(
                    kind: .permanent,
                    message:
                        "the schema \(schema) holds \(count) objects that are not concur's job store: choose another with ?schema= in the store's address"
                )
            }
            return nil
        }
        guard let value = try await meta("schema_version", on: connection, schema: schema, logger: logger) else {
            throw StoreFailure(
                kind: .permanent,
                message:
                    "the job store's schema \(schema) has no schema_version in its meta table: it was not made by concurd, or was damaged; choose another with ?schema="
            )
        }
        guard value >= 0 else {
            throw StoreFailure(
                kind: .permanent,
                message:
                    "the job store's schema \(schema) records version \(value), which no concurd writes: it was damaged; restore it or choose another with ?schema="
            )
        }
        return value
    }

    /// A value from `schema.meta`, or nil if the key is missing.
    private static func meta(
        _ key: String, on connection: PostgresConnection, schema: String, logger: Logger
    ) async throws -> Int64? {
        let rows = try await connection.query(
            PostgresQuery(unsafeSQL: "SELECT value FROM \(schema).meta WHERE key = $1", binds: .of(key)),
            logger: logger)
        var value: Int64?
        for try await found in rows.decode(Int64.self) { value = found }
        return value
    }

    /// Refuses a schema, or a table in it, that another role owns, and any table another role
    /// (or PUBLIC) may change: either could plant jobs this node would run.
    private static func checkTrust(
        on connection: PostgresConnection, schema: String, logger: Logger
    ) async throws {
        let me = try await currentUser(on: connection, logger: logger)
        let owners = try await connection.query(
            """
            SELECT pg_get_userbyid(n.nspowner)::text, coalesce(string_agg(c.relname || ' (' || pg_get_userbyid(c.relowner) || ')', ', ' ORDER BY c.relname), '')
            FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
              AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
            WHERE n.nspname = \(schema) GROUP BY n.nspowner
            """, logger: logger)
        for try await (owner, foreign) in owners.decode((String, String).self) {
            if owner != me {
                throw StoreFailure(
                    kind: .permanent,
                    message:
                        "the job store's schema \(schema) belongs to \(owner), not to \(me), as whom concurd connects: whoever owns it can plant jobs every node runs; connect as \(owner), or ALTER SCHEMA \(schema) OWNER TO \(me)"
                )
            }
            if !foreign.isEmpty {
                throw StoreFailure(
                    kind: .permanent,
                    message:
                        "tables of the job store's schema \(schema) belong to other roles: \(foreign): whoever owns them can plant jobs every node runs; ALTER TABLE ... OWNER TO \(me)"
                )
            }
        }
        let writers = try await connection.query(
            """
            SELECT c.relname::text, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END,
                   string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
            WHERE n.nspname = \(schema) AND c.relkind IN ('r', 'p') AND a.grantee <> c.relowner
              AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER', 'REFERENCES')
            GROUP BY c.relname, a.grantee ORDER BY c.relname LIMIT 1
            """, logger: logger)
        for try await (table, grantee, privileges) in writers.decode((String, String, String).self) {
            throw StoreFailure(
                kind: .permanent,
                message:
                    "\(grantee) may change the job store's table \(schema).\(table) (\(privileges)): whoever can write it can plant jobs every node runs; REVOKE \(privileges) ON \(schema).\(table) FROM \(grantee)"
            )
        }
    }

    /// The role this session acts as.
    private static func currentUser(on connection: PostgresConnection, logger: Logger) async throws -> String {
        var user = ""
        for try await name in try await connection.query("SELECT current_user::text", logger: logger).decode(String.self) {
            user = name
        }
        return user
    }
}
