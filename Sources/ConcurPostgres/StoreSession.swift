import NIOCore
package import PostgresNIO
package import StoreAccess
import Synchronization

/// One connection to the job store on which every operation ends: when its work completes, when
/// the connection closes (the server ended the session, restarted, or the network went), or past
/// its time limit, after which the connection is closed.
///
/// postgres-nio 1.33 hands a statement to its channel without a promise: a statement sent on a
/// connection the server has just ended (an idle-in-transaction timeout, `pg_terminate_backend`,
/// a restart) is dropped, and whoever awaits it waits forever; so does the ROLLBACK
/// `withTransaction` sends after a failure. A session fails every operation in flight as soon as
/// the connection closes and refuses new ones after it, so nothing above it can hang. An
/// operation caught that way stays suspended inside postgres-nio (its task and what it holds,
/// once per lost connection); the caller has its ``StoreFailure`` and opens a new session.
///
/// Thread-safe: operations may overlap (postgres-nio runs their statements in the order sent).
/// Whether an operation that failed by the connection's close had committed is unknown; callers
/// that write make their writes safe to repeat.
package final class StoreSession: Sendable {
    /// The connection; statements sent on it outside ``run(limit:_:)`` have no such guarantee.
    package let connection: PostgresConnection
    private let address: StoreAddress
    private let executor: (any TaskExecutor)?
    private let state = Mutex(State())

    private struct State {
        var closed = false
        var nextOperation = 0
        var inFlight: [Int: @Sendable (StoreFailure) -> Void] = [:]
    }

    /// Takes over `connection` (to `address`, which names the server in messages): from now on
    /// its close fails what runs on it. Operations run on `executor` when given (a
    /// ``ThreadTaskExecutor`` keeps them off the global pool), else on the global pool.
    package init(_ connection: PostgresConnection, address: StoreAddress, executor: (any TaskExecutor)? = nil) {
        self.connection = connection
        self.address = address
        self.executor = executor
        connection.closeFuture.whenComplete { [weak self] _ in self?.connectionClosed() }
    }

    /// A session released while open closes its connection (postgres-nio traps when a
    /// connection is released open); the close holds the connection until it completes.
    deinit {
        let connection = connection
        guard !connection.isClosed else { return }
        connection.close().whenComplete { _ in _ = connection }
    }

    /// Whether the connection has closed (the session is then of no further use).
    package var isClosed: Bool { state.withLock { $0.closed } || connection.isClosed }

    /// Runs `body` on the connection and returns what it returns.
    ///
    /// - Throws: ``StoreFailure``: what `body` threw, described; a transient failure when the
    ///   connection closes first or was closed already; a transient failure after `limit`, having
    ///   closed the connection (a silent network drops nothing, it only stops answering).
    package func run<Result: Sendable>(
        limit: Duration, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws(StoreFailure) -> Result {
        let outcome: Swift.Result<Result, StoreFailure> = await withCheckedContinuation { continuation in
            let once = Once(continuation)
            let id: Int? = state.withLock { state in
                guard !state.closed && !connection.isClosed else { return nil }
                let id = state.nextOperation
                state.nextOperation += 1
                state.inFlight[id] = { failure in once.resume(.failure(failure)) }
                return id
            }
            guard let id else {
                once.resume(.failure(closedFailure))
                return
            }
            let timer = connection.eventLoop.scheduleTask(in: .nanoseconds(Int64(limit / .nanoseconds(1)))) {
                [weak self] in
                guard let self else { return }
                // Closed from now on, before the caller hears of it: nothing more is sent on a
                // connection that stopped answering while its close is under way.
                self.state.withLock { $0.closed = true }
                once.resume(.failure(self.overdueFailure(limit)))
                self.connection.close().whenComplete { _ in }
            }
            let address = address
            Task(executorPreference: executor) { [self] in
                let result: Swift.Result<Result, StoreFailure>
                do {
                    result = .success(try await body(connection))
                } catch {
                    result = .failure(StoreFailure(error, address: address, passwordFile: nil))
                }
                timer.cancel()
                _ = state.withLock { $0.inFlight.removeValue(forKey: id) }
                once.resume(result)
            }
        }
        return try outcome.get()
    }

    /// Closes the connection; what runs on it fails. Safe to call twice.
    package func close() async {
        try? await connection.close()
        connectionClosed()
    }

    private func connectionClosed() {
        let failing = state.withLock { state in
            state.closed = true
            defer { state.inFlight = [:] }
            return Array(state.inFlight.values)
        }
        for fail in failing { fail(closedFailure) }
    }

    private var closedFailure: StoreFailure {
        StoreFailure(
            kind: .transient,
            message:
                "the connection to the job store at \(address.serverName) closed (the server ended the session, restarted, or the network went): reconnecting"
        )
    }

    private func overdueFailure(_ limit: Duration) -> StoreFailure {
        StoreFailure(
            kind: .transient,
            message:
                "the job store at \(address.serverName) did not answer within \(limit): the connection is closed and opened again"
        )
    }
}

/// Resumes a continuation once; later results are dropped.
private final class Once<Value: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<Value, Never>?>

    init(_ continuation: CheckedContinuation<Value, Never>) { self.continuation = Mutex(continuation) }

    func resume(_ value: Value) {
        continuation.withLock { pending in
            defer { pending = nil }
            return pending
        }?.resume(returning: value)
    }
}
