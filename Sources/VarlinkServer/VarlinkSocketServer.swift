import CConcurShims
import Glibc
public import Logging
public import NIOCore
import NIOPosix
import Synchronization
public import Varlink

/// Why the control socket could not be set up; each message says what to do about it.
public enum VarlinkSocketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Another process already accepts connections on the path.
    case alreadyServing(path: String)
    /// The path exists and is not a socket, so it is not ours to replace.
    case notASocket(path: String)
    /// Creating the socket's directory failed.
    case directory(path: String, errno: Int32)
    /// Binding or listening failed.
    case bind(path: String, reason: String)

    /// The text shown to people.
    public var description: String {
        switch self {
        case .alreadyServing(let path):
            "another concurd is already serving on \(path): stop it first, or start this one with --socket PATH"
        case .notASocket(let path):
            "\(path) exists and is not a socket: remove it or choose another path with --socket"
        case .directory(let path, let code):
            "cannot create directory \(path): \(String(cString: strerror(code))); check its parent's permissions or choose --socket"
        case .bind(let path, let reason):
            "cannot listen on \(path): \(reason)"
        }
    }
}

/// Limits and policy of the control socket.
public struct VarlinkServerConfiguration: Sendable {
    /// The largest message accepted from a client; a longer one closes the connection.
    public var maxMessageSize = VarlinkFraming.defaultMaxMessageSize
    /// Connections beyond this many are closed at once.
    public var maxConnections = 256
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
    public static func bind(
        path: String, service: VarlinkService, configuration: VarlinkServerConfiguration,
        group: any EventLoopGroup, logger: Logger
    ) throws -> VarlinkSocketServer {
        try prepareDirectory(of: path)
        try removeStaleSocket(at: path)
        let connections = ConnectionRegistry()
        let previousMask = umask(0o177)
        defer { umask(previousMask) }
        let channel: any Channel
        do {
            channel = try makeBootstrap(
                service: service, configuration: configuration, group: group, logger: logger, connections: connections
            )
            .bind(unixDomainSocketPath: path).wait()
        } catch {
            throw VarlinkSocketError.bind(path: path, reason: "\(error)")
        }
        if chmod(path, mode_t(configuration.socketMode)) != 0 {
            logger.warning("cannot set the socket's mode: \(String(cString: strerror(errno)))")
        }
        return VarlinkSocketServer(serverChannel: channel, connections: connections, path: path, ownsPath: true)
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
                service: service, configuration: configuration, group: group, logger: logger, connections: connections
            )
            .withBoundSocket(fileDescriptor).wait()
        } catch {
            throw VarlinkSocketError.bind(path: path ?? "fd \(fileDescriptor)", reason: "\(error)")
        }
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
        connections: ConnectionRegistry
    ) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelInitializer { channel in
                let activity = ConnectionActivity()
                switch connections.add(channel, activity: activity, limit: configuration.maxConnections) {
                case .admitted: break
                case .admittedEvicting(let idle):
                    // Full: the connection that has gone longest without a call gives way, so a
                    // flood of idle connections cannot lock out a client that calls.
                    idle.close(promise: nil)
                    connections.noteRefusal(
                        logger: logger, "closed an idle connection to make room: \(configuration.maxConnections) open")
                case .refused:
                    connections.noteRefusal(
                        logger: logger, "refusing a connection: \(configuration.maxConnections) open, every one running a call")
                    return channel.eventLoop.makeFailedFuture(ChannelError.inappropriateOperationForState)
                }
                channel.closeFuture.whenComplete { _ in connections.remove(channel) }
                return peerCredentials(of: channel).flatMapThrowing { peer in
                    let authorized = configuration.authorize(peer)
                    try channel.pipeline.syncOperations.addHandler(
                        IdleStateHandler(readTimeout: .nanoseconds(Int64(configuration.idleTimeout * 1e9))))
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(NULFrameDecoder(maxMessageSize: configuration.maxMessageSize)))
                    try channel.pipeline.syncOperations.addHandler(
                        VarlinkConnectionHandler(
                            service: service, peer: peer, authorized: authorized, logger: logger,
                            stalledClientTimeout: configuration.stalledClientTimeout, activity: activity))
                }
            }
            .childChannelOption(.allowRemoteHalfClosure, value: false)
    }

    private static func peerCredentials(of channel: any Channel) -> EventLoopFuture<VarlinkPeer> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeSucceededFuture(VarlinkPeer(pid: 0, uid: UInt32.max, gid: UInt32.max))
        }
        let future: EventLoopFuture<concur_ucred> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(concur_so_peercred()))
        return future.map { VarlinkPeer(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
    }

    private static func prepareDirectory(of path: String) throws(VarlinkSocketError) {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
        let directory = String(path[..<slash])
        var components: [Substring] = []
        for component in directory.split(separator: "/") {
            components.append(component)
            let partial = "/" + components.joined(separator: "/")
            if mkdir(partial, 0o700) != 0 && errno != EEXIST {
                throw .directory(path: partial, errno: errno)
            }
        }
    }

    private static func removeStaleSocket(at path: String) throws(VarlinkSocketError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket(path: path) }
        do {
            let probe = try VarlinkConnection(unixPath: path)
            probe.close()
        } catch .connectFailed(_, let code) where code == ECONNREFUSED {
            unlink(path)  // nobody listens: a leftover of a daemon that did not exit cleanly
            return
        } catch {
            throw .bind(path: path, reason: "cannot check the existing socket: \(error)")
        }
        throw .alreadyServing(path: path)
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

    private let channels = Mutex<[ObjectIdentifier: (channel: any Channel, activity: ConnectionActivity)]>([:])
    private let refusals = Mutex<(count: Int, lastLog: UInt64)>((0, 0))

    var count: Int { channels.withLock { $0.count } }

    func add(_ channel: any Channel, activity: ConnectionActivity, limit: Int) -> Admission {
        channels.withLock { open in
            var admission = Admission.admitted
            if open.count >= limit {
                let idlest = open.compactMap { key, entry in entry.activity.idleSince.map { (key, entry.channel, $0) } }
                    .min { $0.2 < $1.2 }
                guard let (key, idle, _) = idlest else { return .refused }
                open[key] = nil
                admission = .admittedEvicting(idle)
            }
            open[ObjectIdentifier(channel)] = (channel, activity)
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
