import ConcurPostgres
import ConcurTestSupport
import Logging
import NIOPosix
import PostgresNIO
import StoreAccess
import Testing

/// Creating, migrating and trusting the job store's schema in a real PostgreSQL 15.
@Suite("The job store's schema", .serialized, .storeThreads)
struct StoreSchemaTests {
    let server: PostgresServer
    let logger = Logger(label: "test")

    init() throws { server = try PostgresServer.shared() }

    func prepare(_ database: String, schema: String? = nil) async throws(StoreFailure) -> StoreSchema.Outcome {
        var url = server.url(database: database)
        if let schema { url += "&schema=\(schema)" }
        let address = try! StoreAddress(parsing: url, defaultUser: "root")
        let connection = try await StoreConnection.connect(
            to: address, password: server.password, passwordFile: server.passwordFile, role: "test",
            on: MultiThreadedEventLoopGroup.singleton.any(), logger: logger)
        let session = StoreSession(connection, address: address, executor: StoreThreads.executor)
        defer { Task { await session.close() } }
        return try await StoreSchema.prepare(on: session, address: address, logger: logger)
    }

    func refusal(_ database: String, schema: String? = nil) async -> StoreFailure? {
        do throws(StoreFailure) {
            _ = try await prepare(database, schema: schema)
            return nil
        } catch {
            return error
        }
    }

    @Test("an empty database gets every table; a second start finds them and changes nothing")
    func createsOnce() async throws {
        try server.createDatabase("creates")
        let first = try await prepare("creates")
        #expect(first == .init(found: 0, now: StoreSchema.version))
        let tables = try server.psql(
            "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'concur'",
            database: "creates")
        #expect(tables == "job_after,jobs,meta,nodes")
        let indexes = try server.psql(
            "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'jobs'",
            database: "creates")
        #expect(indexes == "jobs_due,jobs_finished,jobs_held,jobs_pkey,jobs_ready")
        #expect(try server.psql("SELECT value FROM concur.meta WHERE key = 'schema_version'", database: "creates") == "2")
        #expect(try server.psql("SELECT value FROM concur.meta WHERE key = 'next_job_id'", database: "creates") == "1")
        try server.psql("UPDATE concur.meta SET value = 42 WHERE key = 'next_job_id'", database: "creates")

        let second = try await prepare("creates")
        #expect(second == .init(found: 2, now: 2))
        #expect(try server.psql("SELECT value FROM concur.meta WHERE key = 'next_job_id'", database: "creates") == "42")
    }

    @Test("a version 1 schema is migrated to version 2 in place: its jobs stay, dependents are marked from then on")
    func migratesFromOne() async throws {
        try server.createDatabase("migrates")
        _ = try await prepare("migrates")
        // Version 1 as it was: no dependents column, no index by waiting job.
        try server.psql(
            """
            ALTER TABLE concur.jobs DROP COLUMN dependents; DROP INDEX concur.job_after_job;
            UPDATE concur.meta SET value = 1 WHERE key = 'schema_version';
            INSERT INTO concur.jobs (id, pool, spec, kind, at_most_once, priority, max_attempts, state, run_at, submitted_at,
              submitted_on) VALUES (7, 'default', '{}', 0, false, 0, 3, 0, now(), now(), 'old')
            """, database: "migrates")
        let migrated = try await prepare("migrates")
        #expect(migrated == .init(found: 1, now: 2))
        #expect(try server.psql("SELECT id::text || ' ' || dependents::text FROM concur.jobs", database: "migrates") == "7 false")
        #expect(
            try server.psql("SELECT count(*) FROM pg_indexes WHERE indexname = 'job_after_job'", database: "migrates") == "1")
    }

    @Test("nodes starting at once: one creates, the others wait on the lock and find it made")
    func concurrentStarts() async throws {
        try server.createDatabase("racing")
        let outcomes = try await withThrowingTaskGroup(of: StoreSchema.Outcome.self) { group in
            for _ in 0..<4 { group.addTask { try await prepare("racing") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.filter { $0.found == 0 }.count == 1)
        #expect(outcomes.filter { $0.found == StoreSchema.version }.count == 3)
    }

    @Test("another schema by ?schema= keeps its tables apart")
    func otherSchema() async throws {
        try server.createDatabase("schemas")
        _ = try await prepare("schemas", schema: "batch")
        _ = try await prepare("schemas")
        let schemas = try server.psql(
            "SELECT string_agg(DISTINCT schemaname, ',' ORDER BY schemaname) FROM pg_tables WHERE tablename = 'jobs'",
            database: "schemas")
        #expect(schemas == "batch,concur")
    }

    @Test("a schema from a newer concurd: refused when it needs a newer one, used when it still admits this one")
    func newerSchema() async throws {
        try server.createDatabase("newer")
        _ = try await prepare("newer")
        try server.psql(
            "UPDATE concur.meta SET value = 4 WHERE key = 'schema_version'; UPDATE concur.meta SET value = 3 WHERE key = 'oldest_compatible'",
            database: "newer")
        let refused = await refusal("newer")
        #expect(refused?.kind == .permanent)
        #expect(refused?.message.contains("version 4, written by a newer concurd") == true)
        #expect(refused?.message.contains("knows up to version 2") == true)
        #expect(refused?.message.contains("upgrade concurd on this node") == true)

        try server.psql("UPDATE concur.meta SET value = 1 WHERE key = 'oldest_compatible'", database: "newer")
        let admitted = try await prepare("newer")
        #expect(admitted == .init(found: 4, now: 4))
        #expect(try server.psql("SELECT value FROM concur.meta WHERE key = 'schema_version'", database: "newer") == "4")
    }

    @Test("values read back that no concurd writes: a negative version, a missing one, a foreign schema")
    func damagedSchema() async throws {
        try server.createDatabase("damaged")
        _ = try await prepare("damaged")
        try server.psql("UPDATE concur.meta SET value = -4 WHERE key = 'schema_version'", database: "damaged")
        #expect(await refusal("damaged")?.message.contains("records version -4, which no concurd writes") == true)
        try server.psql("DELETE FROM concur.meta WHERE key = 'schema_version'", database: "damaged")
        #expect(await refusal("damaged")?.message.contains("has no schema_version") == true)

        try server.psql(
            "CREATE SCHEMA app AUTHORIZATION concur; SET ROLE concur; CREATE TABLE app.orders (id int)", database: "damaged")
        let foreign = await refusal("damaged", schema: "app")
        #expect(foreign?.message.contains("the schema app holds 1 objects that are not concur's job store") == true)
        #expect(try server.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'app'", database: "damaged") == "1")
    }

    @Test("tables another role may write, or owns, are refused with the REVOKE or ALTER to run")
    func untrustedTables() async throws {
        try server.createDatabase("trust")
        _ = try await prepare("trust")
        try server.psql("GRANT INSERT ON concur.jobs TO PUBLIC", database: "trust")
        let granted = await refusal("trust")
        #expect(granted?.kind == .permanent)
        #expect(granted?.message.contains("PUBLIC may change the job store's table concur.jobs (INSERT)") == true)
        #expect(granted?.message.contains("REVOKE INSERT ON concur.jobs FROM PUBLIC") == true)
        try server.psql("REVOKE INSERT ON concur.jobs FROM PUBLIC", database: "trust")
        _ = try await prepare("trust")

        try server.psql("ALTER TABLE concur.nodes OWNER TO postgres", database: "trust")
        let owned = await refusal("trust")
        #expect(owned?.message.contains("belong to other roles: nodes (postgres)") == true)
        try server.psql("ALTER TABLE concur.nodes OWNER TO concur; ALTER SCHEMA concur OWNER TO postgres", database: "trust")
        let schema = await refusal("trust")
        #expect(schema?.message.contains("belongs to postgres, not to concur") == true)
        #expect(schema?.message.contains("ALTER SCHEMA concur OWNER TO concur") == true)
    }

    @Test("no right to create the schema: the privilege named, with what to do")
    func noCreatePrivilege() async throws {
        try server.createDatabase("locked")
        try server.psql(
            "REVOKE CREATE ON DATABASE locked FROM concur; ALTER DATABASE locked OWNER TO postgres", database: "locked")
        let refused = await refusal("locked")
        #expect(refused?.kind == .permanent)
        #expect(refused?.sqlState == "42501")
        #expect(refused?.message.contains("lacks a privilege") == true)
    }
}
