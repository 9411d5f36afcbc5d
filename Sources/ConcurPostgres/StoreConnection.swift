package import Logging
package import NIOCore
import NIOSSL
package import PostgresNIO
package import StoreAccess
import Synchronization

/// Opens one connection to the job store, with the session settings every node connection uses.
///
/// A connection is owned by one task at a time: postgres-nio runs its statements in order, and
/// concurd gives each kind of work (writing, the lease, listening, control) a connection of its
/// own so that none waits behind another. Connecting does not retry: the caller decides whether
/// a ``StoreFailure`` is worth a backoff (``StoreFailure/Kind/transient``) or a stop.
package enum StoreConnection {
    /// The session limits sent at start-up (no extra round trip).
    package struct Limits: Sendable, Equatable {
        /// A statement running longer is cancelled by the server.
        package var statementTimeout: Duration = .seconds(30)
        /// A session idle inside a transaction longer than this is ended by the server, so a
        /// frozen node (SIGSTOP, a hung VM) cannot hold row locks past its lease.
        package var idleInTransactionTimeout: Duration = .seconds(15)
        /// How long a connection attempt may take.
        package var connectTimeout: Duration = .seconds(5)
        /// The defaults: 30 s per statement, 15 s idle in a transaction, 5 s to connect.
        package init() {}
    }

    /// Connects to `address` as `role` (`application_name` shows `concurd ROLE`, as
    /// `pg_stat_activity` lists it).
    ///
    /// - Throws: ``StoreFailure``, saying what to do.
    package static func connect(
        to address: StoreAddress, password: String?, passwordFile: String?, role: String, limits: Limits = .init(),
        on eventLoop: any EventLoop, logger: Logger
    ) async throws(StoreFailure) -> PostgresConnection {
        var configuration: PostgresConnection.Configuration
        switch address.endpoint {
        case .socket:
            configuration = .init(
                unixSocketPath: address.socketPath!, username: address.user, password: password, database: address.database)
        case .tcp(let host):
            let tls: PostgresConnection.Configuration.TLS
            do {
                switch address.tls {
                case .disable:
                    tls = .disable
                case .require:
                    var settings = TLSConfiguration.makeClientConfiguration()
                    settings.certificateVerification = .none
                    tls = .require(try NIOSSLContext(configuration: settings))
                case .verifyFull:
                    tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
                }
            } catch {
                throw StoreFailure(kind: .permanent, message: "TLS for the job store cannot be set up: \(error)")
            }
            configuration = .init(
                host: host, port: address.port, username: address.user, password: password, database: address.database,
                tls: tls)
        }
        configuration.options.connectTimeout = .milliseconds(Int64(limits.connectTimeout / .milliseconds(1)))
        configuration.options.additionalStartupParameters = [
            ("application_name", "concurd \(role)"),
            ("statement_timeout", "\(Int(limits.statementTimeout / .milliseconds(1)))"),
            ("idle_in_transaction_session_timeout", "\(Int(limits.idleInTransactionTimeout / .milliseconds(1)))"),
        ]
        do {
            return try await PostgresConnection.connect(
                on: eventLoop, configuration: configuration, id: nextID.wrappingAdd(1, ordering: .relaxed).newValue,
                logger: logger)
        } catch {
            throw StoreFailure(error, address: address, passwordFile: passwordFile)
        }
    }

    private static let nextID = Atomic<Int>(0)
}
