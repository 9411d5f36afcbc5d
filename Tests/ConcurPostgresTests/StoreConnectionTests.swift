import ConcurPostgres
import ConcurTestSupport
import Logging
import NIOPosix
import PostgresNIO
import StoreAccess
import Testing

/// Connecting to a real PostgreSQL 15, and what each way of failing says.
@Suite("Connecting to the job store", .serialized, .storeThreads)
struct StoreConnectionTests {
    let server: PostgresServer
    let logger = Logger(label: "test")

    init() throws { server = try PostgresServer.shared() }

    func connect(_ url: String, password: String?) async throws(StoreFailure) -> PostgresConnection {
        let address = try! StoreAddress(parsing: url, defaultUser: "root")
        return try await StoreConnection.connect(
            to: address, password: password, passwordFile: server.passwordFile, role: "test",
            on: MultiThreadedEventLoopGroup.singleton.any(), logger: logger)
    }

    func failure(_ url: String, password: String?) async -> StoreFailure? {
        do throws(StoreFailure) {
            let connection = try await connect(url, password: password)
            try? await connection.close()
            return nil
        } catch {
            return error
        }
    }

    @Test("with the password from the file: connected, with the session settings sent at start")
    func connects() async throws {
        try server.createDatabase("connects")
        let address = try StoreAddress(parsing: server.url(database: "connects"), defaultUser: "root")
        let file = try #require(try PasswordFile.load(configured: server.passwordFile, environment: [:]))
        let password = try #require(file.password(for: address))
        let connection = try await connect(server.url(database: "connects"), password: password)
        let rows = try await connection.query(
            "SELECT current_user, current_setting('application_name'), current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout')",
            logger: logger)
        for try await (user, application, statement, idle) in rows.decode((String, String, String, String).self) {
            #expect(user == "concur")
            #expect(application == "concurd test")
            #expect(statement == "30s")
            #expect(idle == "15s")
        }
        try await connection.close()
    }

    @Test("a wrong password, no password, a missing database, no server: each says what to do")
    func failures() async throws {
        try server.createDatabase("failures")
        let wrong = await failure(server.url(database: "failures"), password: "not-it")
        #expect(wrong?.kind == .permanent)
        #expect(wrong?.sqlState == "28P01")
        #expect(wrong?.message.contains("password authentication failed for user concur") == true)
        #expect(wrong?.message.contains(server.passwordFile) == true)
        #expect(wrong?.message.contains("not-it") == false)

        let none = await failure(server.url(database: "failures"), password: nil)
        #expect(none?.kind == .permanent)
        #expect(none?.message.contains("wants a password for user concur") == true)

        let missing = await failure(server.url(database: "nope"), password: server.password)
        #expect(missing?.kind == .permanent)
        #expect(missing?.message.contains("database nope does not exist") == true)
        #expect(missing?.message.contains("createdb -O concur nope") == true)

        let nobody = await failure("postgres://concur@/x?host=/tmp/no-such-dir", password: nil)
        #expect(nobody?.kind == .transient)
        #expect(nobody?.message.contains("no PostgreSQL at /tmp/no-such-dir/.s.PGSQL.5432") == true)
        #expect(nobody?.message.contains("No such file or directory") == true)

        let closed = await failure("postgres://concur@127.0.0.1:1/x?sslmode=disable", password: nil)
        #expect(closed?.kind == .transient)
        #expect(closed?.message.contains("no PostgreSQL at 127.0.0.1:1") == true)
        #expect(closed?.message.contains("Connection refused") == true)
    }
}
