import NIOCore
import NIOPosix
import PostgresNIO
package import StoreAccess

/// What went wrong with the job store, said for a person, and whether waiting may cure it.
///
/// Built from what postgres-nio throws: its `PSQLError.description` says nothing on purpose, so
/// the message comes from the SQLSTATE and the server's own text, never from the configuration
/// (which could hold a secret), and ends with what to do.
package struct StoreFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// Whether trying again later may succeed.
    package enum Kind: Sendable, Equatable {
        /// The server is away, restarting or full: reconnect with backoff.
        case transient
        /// The configuration is wrong (password, database, privileges, schema): a person must act.
        case permanent
    }

    /// Whether a backoff may cure it.
    package let kind: Kind
    /// The SQLSTATE the server sent, when it sent one.
    package let sqlState: String?
    /// What happened and what to do, with no secret from the configuration in it.
    package let message: String
    /// Set when a submit was refused because a job of it runs after a job the queue does not
    /// hold: the submit itself is wrong, and would be refused again.
    package var dependency: UnknownDependency?

    /// A job of a submit (its index in the batch) runs after job `id`, which the queue does not
    /// hold: it was never submitted, or (`forgotten`) it ended and was pruned, so how it ended is
    /// no longer known.
    package struct UnknownDependency: Sendable, Equatable {
        /// The job's index in its submit.
        package var index: Int
        /// The job it was to run after.
        package var id: Int64
        /// Whether `id` was submitted once (and pruned since).
        package var forgotten: Bool

        /// Job `index` runs after `id`, `forgotten` or never submitted.
        package init(index: Int, id: Int64, forgotten: Bool) {
            self.index = index
            self.id = id
            self.forgotten = forgotten
        }
    }

    /// A failure concurd itself detects (no SQLSTATE unless the server sent one).
    package init(kind: Kind, sqlState: String? = nil, message: String) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
    }

    /// The refusal of a submit whose job `index` runs after `id`, which the queue does not hold.
    package init(unknownDependency id: Int64, index: Int, forgotten: Bool) {
        self.init(
            kind: .permanent,
            message: forgotten
                ? "job \(id) ended so long ago that the queue no longer keeps it (retain_jobs, retain_age), so how it ended is not known"
                : "job \(id) was never submitted; a job runs only after jobs that exist")
        dependency = UnknownDependency(index: index, id: id, forgotten: forgotten)
    }

    /// The message alone: what happened and what to do.
    package var description: String { message }

    /// Describes `error`, thrown while talking to the store at `address`; `passwordFile` is the
    /// file the password came from, if one did.
    package init(_ error: any Error, address: StoreAddress, passwordFile: String?) {
        if let failure = error as? StoreFailure {
            self = failure
            return
        }
        if let transaction = error as? PostgresTransactionError {
            let inner = transaction.closureError ?? transaction.commitError ?? transaction.beginError
            if let inner {
                self.init(inner, address: address, passwordFile: passwordFile)
                return
            }
        }
        let server = address.serverName
        guard let psql = error as? PSQLError else {
            self.init(kind: .transient, message: "the job store at \(server) failed: \(String(describing: error))")
            return
        }
        let state = psql.serverInfo?[.sqlState]
        let text = psql.serverInfo?[.message] ?? ""
        let user = address.user
        let database = address.database
        let fileHint =
            passwordFile.map { "check the line for \(user) in \($0)" }
            ?? "no password file applies: put a line for \(user) in one (PGPASSFILE or store_password_file)"
        switch (psql.code, state) {
        case (.server, "28P01"?):
            self.init(
                kind: .permanent, sqlState: state,
                message: "password authentication failed for user \(user) at \(server): \(fileHint)")
        case (.server, "28000"?):
            self.init(
                kind: .permanent, sqlState: state,
                message:
                    "the server at \(server) refuses user \(user) on database \(database) (\(text)): add a pg_hba.conf entry for it"
            )
        case (.server, "3D000"?):
            self.init(
                kind: .permanent, sqlState: state,
                message: "database \(database) does not exist at \(server): create it (createdb -O \(user) \(database))")
        case (.server, "42501"?):
            self.init(
                kind: .permanent, sqlState: state,
                message:
                    "user \(user) lacks a privilege it needs in \(database) (\(text)): run concurd as the owner of its schema, or grant it"
            )
        case (.server, "53300"?):
            self.init(
                kind: .transient, sqlState: state,
                message: "the server at \(server) has too many connections: raise max_connections, or wait")
        case (.server, let state?) where state.hasPrefix("57P") || state.hasPrefix("08"):
            self.init(
                kind: .transient, sqlState: state, message: "the server at \(server) is shutting down or starting (\(text))")
        case (.server, "53100"?):
            self.init(kind: .transient, sqlState: state, message: "the server at \(server) is out of disk space (\(text))")
        case (.server, "25006"?):
            self.init(
                kind: .transient, sqlState: state,
                message: "the server at \(server) is read-only (a standby?): point the store at the primary")
        case (.server, let state):
            let kind: Kind =
                (state == "40001" || state == "40P01" || state == "55P03" || state == "57014") ? .transient : .permanent
            self.init(
                kind: kind, sqlState: state,
                message: "the job store at \(server) refused a statement: \(text) (SQLSTATE \(state ?? "?"))")
        case (.authMechanismRequiresPassword, _):
            self.init(kind: .permanent, message: "the server at \(server) wants a password for user \(user): \(fileHint)")
        case (.unsupportedAuthMechanism, _):
            self.init(
                kind: .permanent,
                message:
                    "the server at \(server) asks for an authentication method concurd does not speak: use scram-sha-256, md5, password or trust in pg_hba.conf"
            )
        case (.saslError, _):
            self.init(kind: .permanent, message: "password authentication failed for user \(user) at \(server): \(fileHint)")
        case (.sslUnsupported, _):
            self.init(
                kind: .permanent,
                message:
                    "the server at \(server) does not offer TLS: enable ssl on it, or use sslmode=disable on a trusted network")
        case (.connectionError, _), (.serverClosedConnection, _), (.uncleanShutdown, _):
            self.init(kind: .transient, message: Self.unreachable(server, psql.underlying, address: address))
        default:
            self.init(kind: .transient, message: "the job store at \(server) failed: \(psql.code)")
        }
    }

    /// Why a connection could not be made or was lost.
    private static func unreachable(_ server: String, _ underlying: (any Error)?, address: StoreAddress) -> String {
        let hint: String
        switch address.endpoint {
        case .socket: hint = "is it running, and is the socket directory right? (pg_lsclusters, systemctl status postgresql)"
        case .tcp: hint = "is it running, and does it listen there? (listen_addresses, the firewall)"
        }
        var reason = underlying.map { String(describing: $0) } ?? "the connection closed"
        if let io = underlying as? IOError {
            reason = String(cString: strerror(io.errnoCode))
        } else if let connect = underlying as? NIOConnectionError, let first = connect.connectionErrors.first?.error as? IOError {
            reason = String(cString: strerror(first.errnoCode))
        } else if underlying is ChannelError, case .connectTimeout? = underlying as? ChannelError {
            reason = "no answer within the connect timeout"
        }
        return "no PostgreSQL at \(server) (\(reason)): \(hint)"
    }
}
