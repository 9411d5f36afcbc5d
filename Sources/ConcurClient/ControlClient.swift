package import ConcurProtocol
import Glibc
package import Varlink

/// A connection to concurd's control socket with typed calls of `io.concur.Supervisor`.
///
/// Blocking and single-threaded, made for one command-line invocation; every failure is a
/// ``ClientFailure`` ready to show.
package final class ControlClient {
    /// The socket connected to.
    package let socketPath: String
    private let connection: VarlinkConnection
    /// The ssh that carries the connection, with `--host`.
    private let remote: RemoteBridge?

    /// Seconds a one-shot call waits for its reply.
    package static let replyTimeout = 60.0

    /// Connects to the socket at `socketPath` and checks who answers: the process must run as
    /// root, as the owner of the socket's directory, or as `serverUser` (see
    /// ``ServerCheck``); another process in concurd's place is refused before anything is sent.
    package init(socketPath: String, serverUser: UInt32? = nil) throws(ClientFailure) {
        self.socketPath = socketPath
        do {
            connection = try VarlinkConnection(unixPath: socketPath)
        } catch {
            throw ClientFailure.from(error, socket: socketPath)
        }
        try ServerCheck(socketPath: socketPath, serverUser: serverUser).verify(connection.fileDescriptor)
        remote = nil
    }

    /// Connects to concurd on `host` through `ssh host concurctl bridge REMOTE-ARGUMENTS`
    /// (``RemoteBridge``); the remote bridge checks who answers there.
    package init(host: String, remoteArguments: [String]) throws(ClientFailure) {
        let (bridge, descriptor) = try RemoteBridge.start(host: host, remoteArguments: remoteArguments)
        socketPath = "concurd's socket on \(host)"
        connection = VarlinkConnection(fileDescriptor: descriptor)
        remote = bridge
    }

    /// The connected socket's descriptor, for a bridge that relays it.
    package var fileDescriptor: Int32 { connection.fileDescriptor }

    /// What a client error means to the user: through ssh, a connection that closed is ssh's
    /// or the remote bridge's failure, which their exit status tells.
    private func failure(_ error: VarlinkClientError, method: SupervisorInterface.Method?) -> ClientFailure {
        if let remote {
            switch error {
            case .closedByPeer, .io(_, EPIPE), .io(_, ECONNRESET): return remote.failure()
            default: break
            }
        }
        return ClientFailure.from(error, socket: socketPath, method: method)
    }

    /// Calls `method` and returns its reply's parameters, waiting at most `timeout` seconds for
    /// it (0: as long as it takes).
    package func call(
        _ method: SupervisorInterface.Method, _ parameters: JSONObject = [:], timeout: Double = replyTimeout
    ) throws(ClientFailure) -> JSONObject {
        connection.setReceiveTimeout(timeout)
        do {
            return try connection.call(SupervisorInterface.method(method), parameters)
        } catch {
            throw failure(error, method: method)
        }
    }

    /// Calls `method` with `more` and returns every reply, in order, waiting at most `timeout`
    /// seconds for each: for a list the daemon sends in parts.
    package func collect(
        _ method: SupervisorInterface.Method, _ parameters: JSONObject = [:], timeout: Double = replyTimeout
    ) throws(ClientFailure) -> [JSONObject] {
        connection.setReceiveTimeout(timeout)
        var replies: [JSONObject] = []
        do {
            try connection.stream(SupervisorInterface.method(method), parameters) { reply in
                replies.append(reply)
                return true
            }
        } catch {
            throw failure(error, method: method)
        }
        return replies
    }

    /// Calls `method` with `more` and hands each reply to `onReply` until the stream ends or
    /// `onReply` returns false. Waits as long as the stream lasts.
    package func stream(
        _ method: SupervisorInterface.Method, _ parameters: JSONObject = [:],
        onReply: (JSONObject) throws(ClientFailure) -> Bool
    ) throws(ClientFailure) {
        switch try follow(method, parameters, onReply: onReply) {
        case .finished: return
        case .closedByDaemon: throw ClientFailure.from(.closedByPeer, socket: socketPath)
        case .lost(let message): throw ClientFailure(message, exitCode: ClientFailure.ExitStatus.unavailable)
        case .timedOut: throw ClientFailure.from(.timedOut, socket: socketPath)
        }
    }

    /// How a followed stream ended after its first reply.
    package enum StreamEnd: Sendable, Equatable {
        /// The daemon sent the last reply, or `onReply` asked to stop.
        case finished
        /// The daemon closed the connection (it stopped, or dropped a client that did not read).
        case closedByDaemon
        /// The connection failed; why.
        case lost(String)
        /// The timeout given to ``follow(_:_:timeout:onReply:)`` passed.
        case timedOut
    }

    /// Monotonic seconds, for deadlines.
    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// Like ``stream(_:_:onReply:)``, for a stream that lasts until the daemon ends it: a
    /// failure before the first reply is thrown (the call was refused or never reached the
    /// daemon); after it, the way the stream ended is returned, for a last line.
    ///
    /// With a `timeout` (seconds), the stream is given up once that much time has passed
    /// since the call, replies or not: ``StreamEnd/timedOut``.
    package func follow(
        _ method: SupervisorInterface.Method, _ parameters: JSONObject = [:], timeout: Double? = nil,
        onReply: (JSONObject) throws(ClientFailure) -> Bool
    ) throws(ClientFailure) -> StreamEnd {
        let deadline = timeout.map { Self.now() + $0 }
        connection.setReceiveTimeout(timeout ?? 0)
        var started = false
        var failure: ClientFailure?
        do {
            try connection.stream(SupervisorInterface.method(method), parameters) { reply throws(VarlinkClientError) in
                started = true
                if let deadline {
                    // The wait for each reply is what remains of the whole timeout.
                    let left = deadline - Self.now()
                    guard left > 0 else { throw .timedOut }
                    connection.setReceiveTimeout(left)
                }
                switch Result(catching: { () throws(ClientFailure) in try onReply(reply) }) {
                case .success(let more): return more
                case .failure(let error):
                    failure = error
                    return false
                }
            }
        } catch {
            switch error {
            case .timedOut where deadline != nil: return .timedOut
            case .closedByPeer where started: return .closedByDaemon
            case .io where started: return .lost(ClientFailure.from(error, socket: socketPath).message)
            default: throw self.failure(error, method: method)
            }
        }
        if let failure { throw failure }
        return .finished
    }

    /// Reads a typed field of a reply.
    package static func decode<T: JSONDecodable>(_ type: T.Type, _ field: String, in reply: JSONObject) throws(ClientFailure) -> T
    {
        do {
            return try T(json: reply[field] ?? .null, path: field)
        } catch {
            throw ClientFailure(
                "concurd sent a reply this concurctl does not understand (field '\(field)'); are they different versions?")
        }
    }

    /// Reads a whole reply as one typed value.
    package static func decode<T: JSONDecodable>(_ type: T.Type, in reply: JSONObject) throws(ClientFailure) -> T {
        do {
            return try T(json: .object(reply), path: "reply")
        } catch {
            throw ClientFailure(
                "concurd sent a reply this concurctl does not understand (\(error)); are they different versions?")
        }
    }

    /// The socket path from `--socket`, `$CONCUR_SOCKET`, or the default rule.
    package static func resolveSocket(_ explicit: String?) throws(ClientFailure) -> String {
        do {
            return try SocketPath.resolve(explicit: explicit, uid: getuid()) { getenv($0).map { String(cString: $0) } }
        } catch {
            throw ClientFailure(error.description, exitCode: ClientFailure.ExitStatus.usage)
        }
    }
}
