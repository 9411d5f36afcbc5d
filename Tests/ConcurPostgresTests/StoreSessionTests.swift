import ConcurPostgres
import ConcurTestSupport
import Foundation
import Logging
import NIOPosix
import PostgresNIO
import StoreAccess
import Testing

/// A store connection on which nothing waits forever, whatever the server does, in a real
/// PostgreSQL 15. (With postgres-nio 1.33 alone, each of these waited forever: a statement sent
/// on a connection the server had ended was dropped.)
@Suite("A store session's operations always end", .serialized, .storeThreads)
struct StoreSessionTests {
    let server: PostgresServer
    let logger = Logger(label: "test")

    init() throws {
        server = try PostgresServer.shared()
        _ = try? server.createDatabase("sessions")
    }

    func open(idleInTransaction: Duration = .seconds(15)) async throws -> StoreSession {
        let address = try StoreAddress(parsing: server.url(database: "sessions"), defaultUser: "root")
        var limits = StoreConnection.Limits()
        limits.idleInTransactionTimeout = idleInTransaction
        let connection = try await StoreConnection.connect(
            to: address, password: server.password, passwordFile: server.passwordFile, role: "test", limits: limits,
            on: MultiThreadedEventLoopGroup.singleton.any(), logger: logger)
        return StoreSession(connection, address: address, executor: StoreThreads.executor)
    }

    func failure<T: Sendable>(
        _ session: StoreSession, limit: Duration = .seconds(20),
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async -> StoreFailure? {
        do throws(StoreFailure) {
            _ = try await session.run(limit: limit, body)
            return nil
        } catch {
            return error
        }
    }

    @Test("a transaction the server ends for idling fails with a transient error, and so does what follows")
    func idleInTransaction() async throws {
        let session = try await open(idleInTransaction: .milliseconds(300))
        let logger = logger
        let failed = await failure(session) { connection in
            try await connection.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT 1", logger: logger)
                try await Task.sleep(for: .seconds(1))
                try await connection.query("SELECT 2", logger: logger)
            }
        }
        #expect(failed?.kind == .transient, "\(String(describing: failed))")
        #expect(session.isClosed)
        let after = await failure(session) { connection in try await connection.query("SELECT 3", logger: logger) }
        #expect(after?.message.contains("closed") == true, "\(String(describing: after))")
    }

    @Test("a session ended by pg_terminate_backend during a statement fails it")
    func terminated() async throws {
        let session = try await open()
        let logger = logger
        let server = server
        let killer = Task.detached {
            try await Task.sleep(for: .milliseconds(500))
            try server.psql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'concurd test' AND datname = 'sessions'"
            )
        }
        let failed = await failure(session) { connection in
            for try await _ in try await connection.query("SELECT pg_sleep(30)", logger: logger) {}
        }
        try await killer.value
        #expect(failed?.kind == .transient, "\(String(describing: failed))")
        // The server's error can come a moment before its end of the connection.
        for _ in 0..<100 where !session.isClosed { try await Task.sleep(for: .milliseconds(50)) }
        #expect(session.isClosed)
    }

    @Test("past its limit an operation fails and the connection is closed; a quick one succeeds")
    func overdue() async throws {
        let session = try await open()
        let logger = logger
        let value = try await session.run(limit: .seconds(20)) { connection in
            var total = 0
            for try await value in try await connection.query("SELECT 41 + 1", logger: logger).decode(Int.self) {
                total = value
            }
            return total
        }
        #expect(value == 42)
        let started = ContinuousClock.now
        let failed = await failure(session, limit: .milliseconds(300)) { connection in
            for try await _ in try await connection.query("SELECT pg_sleep(30)", logger: logger) {}
        }
        #expect(ContinuousClock.now - started < .seconds(20))
        #expect(failed?.message.contains("did not answer within") == true, "\(String(describing: failed))")
        #expect(session.isClosed)
    }

    @Test("an error from the server is described, and the session stays usable")
    func serverError() async throws {
        let session = try await open()
        let logger = logger
        let failed = await failure(session) { connection in
            try await connection.query("SELECT * FROM no_such_table", logger: logger)
        }
        #expect(failed?.sqlState == "42P01", "\(String(describing: failed))")
        #expect(!session.isClosed)
        let value = try await session.run(limit: .seconds(20)) { connection in
            try await connection.query("SELECT 1", logger: logger)
            return true
        }
        #expect(value)
        await session.close()
    }
}
