import CConcurShims
import Glibc
public import Logging
public import NIOCore
import NIOPosix
public import PathTrust
import Synchronization
public import Varlink

/// How the socket's errors name the server and the option that chooses its path: the
/// application's words (`concurd`, `--socket`), not this module's.
public struct ServerNaming: Sendable, Equatable {
    /// The server's name, as in "another concurd is already serving".
    public var name: String
    /// The command-line option that sets the socket's path.
    public var pathOption: String

    /// A naming with the given words.
    public init(name: String, pathOption: String) {
        self.name = name
        self.pathOption = pathOption
    }
}

/// Why the control socket could not be set up; each message says what to do about it.
public struct VarlinkSocketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Problem: Sendable, Equatable {
        /// Another process already accepts connections on the path.
        case alreadyServing(path: String)
        /// The path exists and is not a socket, so it is not ours to replace.
        case notASocket(path: String)
        /// Creating the socket's directory failed.
        case directory(path: String, errno: Int32)
        /// Binding or listening failed.
        case bind(path: String, reason: String)
        /// The socket's directory could be changed by another user, who could put a listener in
        /// the server's place.
        case untrustedDirectory(UntrustedPath)
    }

    /// What went wrong.
    public let problem: Problem
    /// The words the message uses for the server and its path option.
    public let naming: ServerNaming

    /// An error for `problem`, worded with `naming`.
    public init(_ problem: Problem, naming: ServerNaming) {
        self.problem = problem
        self.naming = naming
    }

    /// The text shown to people.
    public var description: String {
        let (name, option) = (naming.name, naming.pathOption)
        return switch problem {
        case .alreadyServing(let path):
            "another \(name) is already serving on \(path): stop it first, or start this one with \(option) PATH"
        case .notASocket(let path):
            "\(path) exists and is not a socket: remove it or choose another path with \(option)"
        case .directory(let path, let code):
            "cannot create directory \(path): \(String(cString: strerror(code))); check its parent's permissions or choose \(option)"
        case .bind(let path, let reason):
            "cannot listen on \(path): \(reason)"
        case .untrustedDirectory(let problem):
            "refusing the socket's directory: \(problem); another user could put a listener in \(name)'s place there"
        }
    }
}

/// Limits and policy of the control socket.
public struct VarlinkServerConfiguration: Sendable {
    /// The largest message accepted from a client; a longer one gets an error and closes the
    /// connection.
    public var maxMessageSize = VarlinkFraming.defaultMaxMessageSize
    /// Connections beyond this many are closed at once.
    public var maxConnections = 256
    /// Calls a client may send while it leaves the replies to earlier ones unread; one more
    /// closes its connection.
    public var maxPipelined = 64
    /// Bytes of replies a client may leave unread (queued in the daemon) before it is dropped.
    public var maxUnreadBytes = 4 << 20
    /// Bytes of replies all clients together may leave unread; past it, the connections that
    /// leave the most are closed.
    public var maxUnreadBytesTotal = 32 << 20
    /// The error a message that is not a Varlink call gets before its connection is closed
    /// (the reason says what was wrong: not JSON, nested too deep, over the size limit).
    public var invalidMessage: @Sendable (String) -> VarlinkError = { _ in VarlinkError.invalidParameter("message") }
    /// The error that ends a call whose reply (of the given size in bytes) would be over
    /// `maxMessageSize`, in place of that reply: a service's own limits should keep it from
    /// ever being used.
    public var oversizedReply: @Sendable (Int) -> VarlinkError = { _ in VarlinkError.invalidParameter("reply") }
    /// The socket file's mode (0600: only the daemon's user can connect).
    public var socketMode: UInt32 = 0o600
    /// Seconds a client may leave the daemon's replies unread (its connection's output backed
    /// up) before it is disconnected: a stuck watcher must not hold memory for ever.
    public var stalledClientTimeout: Double = 30
    /// Seconds a connection may stay silent (nothing read, a partial message included) while no
    /// call of it is running before it is closed: idle and half-open connections do not hold one
    /// of the `maxConnections` places for ever. A streaming call keeps its connection open.
    public var idleTimeout: Double = 60
    /// Decides whether a peer may call anything; refused peers get `PermissionDenied`.
    public var authorize: @Sendable (VarlinkPeer) -> Bool
    /// How errors setting up the socket name the server and its path option.
    public var naming = ServerNaming(name: "server", pathOption: "the socket path option")

    /// A configuration with the given authorization policy and default limits.
    public init(authorize: @escaping @Sendable (VarlinkPeer) -> Bool) {
        self.authorize = authorize
    }
}

/// A Varlink service listening on a Unix-domain stream socket, on SwiftNIO.
///
/// The event loop runs nothing but protocol work: handlers that take longer answer later
/// through their responder, so the control plane stays responsive while workers are busy.
public final class VarlinkSocketServer: Sendable {
    private let serverChannel: any Channel
    private let connections: ConnectionRegistry
    /// The path the server listens on, or nil for an adopted descriptor with no known path.
    public let path: String?
    private let ownsPath: Bool

    private init(serverChannel: any Channel, connections: ConnectionRegistry, path: String?, ownsPath: Bool) {
        self.serverChannel = serverChannel
        self.connections = connections
        self.path = path
        self.ownsPath = ownsPath
    }

    /// Creates the socket at `path` (and its directory, mode 0700, if missing) and listens.
    ///
    /// A leftover socket nobody listens on is replaced; one that answers is another daemon's,
    /// and is left alone. The socket is created under a restrictive umask, so there is no
    /// moment when it has a wider mode than `configuration.socketMode`.
    ///
    /// The directory must be one only root or this user can change (``PathTrust``): another
    /// user who could, could also replace the socket with a listener of their own.
    public static func bind(
        path: String, service: VarlinkService, configuration: VarlinkServerConfiguration,
        group: any EventLoopGroup, logger: Logger
    ) throws -> VarlinkSocketServer {
        let naming = configuration.naming
        try prepareDirectory(of: path, naming: naming)
        try removeStaleSocket(at: path, naming: naming)
        let listener = try listen(at: path, mode: configuration.socketMode, naming: naming)
        let connections = ConnectionRegistry()
        let channel: any Channel
        do {
            channel = try makeBootstrap(
                service: service, configuration: configuration, group: group, logger: logger, connections: connections,
                listener: listener
            )
            .withBoundSocket(listener).wait()
        } catch {
            unlink(path)
            throw VarlinkSocketError(.bind(path: path, reason: "\(error)"), naming: naming)
        }
        restoreBacklog(listener)
        return VarlinkSocketServer(serverChannel: channel, connections: connections, path: path, ownsPath: true)
    }

    /// The listen backlog: connections the kernel holds until they are accepted.
    static let backlog: Int32 = 256

    /// SwiftNIO listens again (with its default backlog of 128) when it takes over a socket:
    /// the backlog is set back to ``backlog``. (That `listen` is also why a connection's peer,
    /// seen from the client, is concurd itself even under socket activation.)
    private static func restoreBacklog(_ listener: Int32) {
        _ = Glibc.listen(listener, backlog)
    }

    /// A listening Unix socket at `path`, made under a restrictive umask so that it never has a
    /// wider mode than `mode`.
    private static func listen(at path: String, mode: UInt32, naming: ServerNaming) throws(VarlinkSocketError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw VarlinkSocketError(.bind(path: path, reason: "socket: \(String(cString: strerror(errno)))"), naming: naming)
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(fd)
            throw VarlinkSocketError(
                .bind(path: path, reason: "the path is longer than a Unix socket allows (107 bytes)"), naming: naming)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let previousMask = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1))
            }
        }
        let bindError = errno
        umask(previousMask)
        guard bound == 0 else {
            Glibc.close(fd)
            throw VarlinkSocketError(.bind(path: path, reason: "bind: \(String(cString: strerror(bindError)))"), naming: naming)
        }
        guard chmod(path, mode_t(mode)) == 0, Glibc.listen(fd, backlog) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            unlink(path)
            throw VarlinkSocketError(.bind(path: path, reason: reason), naming: naming)
        }
        return fd
    }

    /// Accepts on a listening socket handed over by systemd (socket activation).
    public static func adopt(
        fileDescriptor: Int32, path: String?, service: VarlinkService, configuration: VarlinkServerConfiguration,
        group: any EventLoopGroup, logger: Logger
    ) throws -> VarlinkSocketServer {
        let connections = ConnectionRegistry()
        let channel: any Channel
        do {
            channel = try makeBootstrap(
                service: service, configuration: configuration, group: group, logger: logger, connections: connections,
                listener: fileDescriptor
            )
            .withBoundSocket(fileDescriptor).wait()
        } catch {
            throw VarlinkSocketError(
                .bind(path: path ?? "fd \(fileDescriptor)", reason: "\(error)"), naming: configuration.naming)
        }
        restoreBacklog(fileDescriptor)
        return VarlinkSocketServer(serverChannel: channel, connections: connections, path: path, ownsPath: false)
    }

    /// The number of open client connections.
    public var connectionCount: Int { connections.count }

    /// Stops accepting, closes every client connection (their streaming calls end) and removes
    /// the socket file if this server created it.
    public func close() {
        try? serverChannel.close().wait()
        connections.closeAll()
        if ownsPath, let path { unlink(path) }
    }

    private static func makeBootstrap(
        service: VarlinkService, configuration: VarlinkServerConfiguration, group: any EventLoopGroup, logger: Logger,
        connections: ConnectionRegistry, listener: Int32
    ) -> ServerBootstrap {
        let limits = ConnectionLimits(
            maxMessageSize: configuration.maxMessageSize, maxPipelined: configuration.maxPipelined,
            maxUnreadBytes: configuration.maxUnreadBytes, stalledClientTimeout: configuration.stalledClientTimeout)
        let unreadBudget = UnreadReplyBudget(limit: configuration.maxUnreadBytesTotal)
        return ServerBootstrap(group: group)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptGuard(listener: listener, logger: logger))
                }
            }
            .childChannelInitializer { channel in
                peerCredentials(of: channel).flatMapThrowing { peer in
                    let authorized = configuration.authorize(peer)
                    let activity = ConnectionActivity()
                    let limit = configuration.maxConnections
                    switch connections.add(channel, activity: activity, authorized: authorized, limit: limit) {
                    case .admitted: break
                    case .admittedEvicting(let idle):
                        // Full: the connection that has gone longest without a call gives way
                        // (a refused peer's first), so a flood of idle connections cannot lock
                        // out a client that calls.
                        idle.close(promise: nil)
                        connections.noteRefusal(logger: logger, "closed an idle connection to make room: \(limit) open")
                    case .refused:
                        connections.noteRefusal(
                            logger: logger,
                            authorized
                                ? "refusing a connection: \(limit) open, every one running a call"
                                : "refusing a connection of a peer that may not call (\(peer)): \(limit) open")
                        throw ChannelError.inappropriateOperationForState
                    }
                    channel.closeFuture.whenComplete { _ in connections.remove(channel) }
                    try channel.pipeline.syncOperations.addHandler(
                        IdleStateHandler(readTimeout: .nanoseconds(Int64(configuration.idleTimeout * 1e9))))
                    try channel.pipeline.syncOperations.addHandler(
                        VarlinkConnectionHandler(
                            service: service, peer: peer, authorized: authorized, logger: logger, limits: limits,
                            invalidMessage: configuration.invalidMessage, oversizedReply: configuration.oversizedReply,
                            activity: activity, unreadBudget: unreadBudget))
                }
            }
            // A client's end of input is seen (``VarlinkConnectionHandler`` answers what it sent first).
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            // Replies a client has not read are held back early (the kernel's share is small),
            // so a client that never reads costs the daemon a few dozen replies, not hundreds.
            .childChannelOption(.socketOption(.so_sndbuf), value: 64 << 10)
    }

    private static func peerCredentials(of channel: any Channel) -> EventLoopFuture<VarlinkPeer> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeSucceededFuture(VarlinkPeer(pid: 0, uid: UInt32.max, gid: UInt32.max))
        }
        let future: EventLoopFuture<concur_ucred> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(concur_so_peercred()))
        return future.map { VarlinkPeer(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
    }

    private static func prepareDirectory(of path: String, naming: ServerNaming) throws(VarlinkSocketError) {
        guard path.hasPrefix("/") else {
            throw VarlinkSocketError(.bind(path: path, reason: "give the socket an absolute path"), naming: naming)
        }
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
        let directory = String(path[..<slash])
        var components: [Substring] = []
        for component in directory.split(separator: "/") {
            components.append(component)
            let partial = "/" + components.joined(separator: "/")
            if mkdir(partial, 0o700) != 0 && errno != EEXIST {
                throw VarlinkSocketError(.directory(path: partial, errno: errno), naming: naming)
            }
        }
        do {
            try PathTrust.check(directory, as: .directory)
        } catch {
            throw VarlinkSocketError(.untrustedDirectory(error), naming: naming)
        }
    }

    private static func removeStaleSocket(at path: String, naming: ServerNaming) throws(VarlinkSocketError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw VarlinkSocketError(.notASocket(path: path), naming: naming) }
        do {
            let probe = try VarlinkConnection(unixPath: path)
            probe.close()
        } catch .connectFailed(_, let code) where code == ECONNREFUSED {
            unlink(path)  // nobody listens: a leftover of a daemon that did not exit cleanly
            return
        } catch {
            throw VarlinkSocketError(.bind(path: path, reason: "cannot check the existing socket: \(error)"), naming: naming)
        }
        throw VarlinkSocketError(.alreadyServing(path: path), naming: naming)
    }
}

/// The open client connections, so that shutdown can close them and a limit can be kept.
/// Whether a connection is running a call, and when it last started or ended one (monotonic
/// nanoseconds): what the registry looks at to choose a connection to close when it is full.
final class ConnectionActivity: Sendable {
    private let state = Mutex<(busy: Bool, since: UInt64)>((false, concur_monotonic_nanoseconds()))

    /// A call started (`true`) or the last one ended (`false`).
    func setBusy(_ busy: Bool) {
        state.withLock { $0 = (busy, concur_monotonic_nanoseconds()) }
    }

    /// Not running a call, and since when.
    var idleSince: UInt64? {
        state.withLock { $0.busy ? nil : $0.since }
    }
}

private final class ConnectionRegistry: Sendable {
    enum Admission {
        case admitted
        /// Admitted after choosing this idle connection to close.
        case admittedEvicting(any Channel)
        case refused
    }

    private struct Entry {
        let channel: any Channel
        let activity: ConnectionActivity
        let authorized: Bool
    }

    private let channels = Mutex<[ObjectIdentifier: Entry]>([:])
    private let refusals = Mutex<(count: Int, lastLog: UInt64)>((0, 0))

    var count: Int { channels.withLock { $0.count } }

    /// Admits a connection, closing an idle one when `limit` are open: a refused peer's first,
    /// then the one longest without a call. A peer that may not call can make room only by
    /// evicting another such peer, never a connection that may call.
    func add(_ channel: any Channel, activity: ConnectionActivity, authorized: Bool, limit: Int) -> Admission {
        channels.withLock { open in
            var admission = Admission.admitted
            if open.count >= limit {
                let idlest = open.compactMap { key, entry -> (ObjectIdentifier, Entry, UInt64)? in
                    guard authorized || !entry.authorized, let since = entry.activity.idleSince else { return nil }
                    return (key, entry, since)
                }
                .min { ($0.1.authorized ? 1 : 0, $0.2) < ($1.1.authorized ? 1 : 0, $1.2) }
                guard let (key, idle, _) = idlest else { return .refused }
                open[key] = nil
                admission = .admittedEvicting(idle.channel)
            }
            open[ObjectIdentifier(channel)] = Entry(channel: channel, activity: activity, authorized: authorized)
            return admission
        }
    }

    func remove(_ channel: any Channel) {
        _ = channels.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Logs a refusal or an eviction at most once a second, with how many there were since.
    func noteRefusal(logger: Logger, _ message: String) {
        let now = concur_monotonic_nanoseconds()
        let report = refusals.withLock { state -> Int? in
            state.count += 1
            guard now - state.lastLog >= 1_000_000_000 else { return nil }
            defer { state = (0, now) }
            return state.count
        }
        if let report { logger.warning("\(message) (\(report) in the last second or since the last report)") }
    }

    func closeAll() {
        let open = channels.withLock { $0.values.map(\.channel) }
        for channel in open { channel.close(promise: nil) }
    }
}
