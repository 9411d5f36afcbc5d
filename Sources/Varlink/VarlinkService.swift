/// Who is on the other end of a connection, from the kernel's SO_PEERCRED.
public struct VarlinkPeer: Sendable, Equatable, CustomStringConvertible {
    /// The peer's process id at connect time.
    public let pid: Int32
    /// The peer's effective user id.
    public let uid: UInt32
    /// The peer's effective group id.
    public let gid: UInt32

    /// A peer with the given credentials.
    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// The text shown to people.
    public var description: String { "pid \(pid) uid \(uid) gid \(gid)" }
}

/// The way a method handler answers one call: once, or (for `more` calls) several times.
///
/// Safe to use from any thread; the transport delivers replies in order on its own thread.
/// Anything sent after the final reply (one without `continues`) is dropped.
public struct VarlinkResponder: Sendable {
    /// The call asked for several replies.
    public let more: Bool
    /// The call asked for no reply; replies are dropped but still end the call.
    public let oneway: Bool
    private let deliver: @Sendable (VarlinkReply) -> Void
    private let registerOnClose: @Sendable (@escaping @Sendable () -> Void) -> Void
    private let schedule: @Sendable (@escaping @Sendable () -> Void) -> Void
    private let registerWhenWritable: @Sendable (@escaping @Sendable () -> Void) -> Void

    /// A responder that hands replies to `deliver`, runs close handlers registered through
    /// `onClose` when the connection goes away before the call ends, runs deferred work through
    /// `schedule` on the connection's own serial context, and runs work registered through
    /// `whenWritable` there once the client has read what it was sent (at once by default).
    ///
    /// `deliver` receives droppable replies (``offer(_:)``) too; the transport drops them while
    /// the client is not reading.
    public init(
        more: Bool, oneway: Bool, deliver: @escaping @Sendable (VarlinkReply) -> Void,
        onClose: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void,
        schedule: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void,
        whenWritable: (@Sendable (@escaping @Sendable () -> Void) -> Void)? = nil
    ) {
        self.more = more
        self.oneway = oneway
        self.deliver = deliver
        self.registerOnClose = onClose
        self.schedule = schedule
        self.registerWhenWritable = whenWritable ?? { body in schedule(body) }
    }

    /// Sends a successful reply; `continues: true` (only valid for `more` calls) keeps the call open.
    public func reply(_ parameters: JSONObject = [:], continues: Bool = false) {
        deliver(VarlinkReply(parameters: parameters, continues: continues && more))
    }

    /// Sends a continuing reply that may be dropped: if the client has not read the replies
    /// before it (its connection's output is backed up), this one is skipped. For streams where
    /// the latest reply supersedes the earlier ones, such as periodic statistics.
    public func offer(_ parameters: JSONObject) {
        deliver(VarlinkReply(parameters: parameters, continues: more, droppable: true))
    }

    /// Sends a reply whose parameters are already serialized (the text of a JSON object).
    public func reply(encoded parameters: [UInt8], continues: Bool = false) {
        deliver(VarlinkReply(encodedParameters: parameters, continues: continues && more))
    }

    /// ``offer(_:)`` with parameters already serialized.
    public func offer(encoded parameters: [UInt8]) {
        deliver(VarlinkReply(encodedParameters: parameters, continues: more, droppable: true))
    }

    /// Runs `body` on the connection's serial context once the client has read enough of what
    /// it was sent to take more (at once if it has): how a stream that must not drop replies
    /// keeps pace with its reader.
    public func whenWritable(_ body: @escaping @Sendable () -> Void) {
        registerWhenWritable(body)
    }

    /// Ends the call with an error reply.
    public func fail(_ error: VarlinkError) {
        deliver(VarlinkReply(error: error))
    }

    /// Runs `body` later on the connection's serial context (its event loop), never inline:
    /// for work announced from a thread that must not block, such as a lock holder.
    public func enqueue(_ body: @escaping @Sendable () -> Void) {
        schedule(body)
    }

    /// Runs `body` if the client disconnects before the call has ended: streaming handlers use
    /// it to stop producing.
    public func onClose(_ body: @escaping @Sendable () -> Void) {
        registerOnClose(body)
    }
}

/// One interface a service implements: its definition text and the handler of its methods.
public protocol VarlinkInterface: Sendable {
    /// The reverse-domain interface name, such as `io.concur.Supervisor`.
    var name: String { get }
    /// The interface definition, returned verbatim by `GetInterfaceDescription`.
    var definition: String { get }
    /// Handles a call of `method` (the member name, without the interface); must answer through
    /// `responder` exactly once with a final reply, now or later.
    func handle(method: String, parameters: JSONObject, peer: VarlinkPeer, responder: VarlinkResponder)
}

/// A Varlink service: `org.varlink.service` plus the interfaces it is given.
///
/// Transport-independent: the socket server decodes a call and hands it to ``dispatch(_:peer:responder:)``.
public struct VarlinkService: Sendable {
    /// `GetInfo`'s vendor field.
    public let vendor: String
    /// `GetInfo`'s product field.
    public let product: String
    /// `GetInfo`'s version field.
    public let version: String
    /// `GetInfo`'s url field.
    public let url: String
    private let interfaces: [String: any VarlinkInterface]
    private let interfaceOrder: [String]

    /// A service offering `interfaces` besides `org.varlink.service`.
    public init(vendor: String, product: String, version: String, url: String, interfaces: [any VarlinkInterface]) {
        self.vendor = vendor
        self.product = product
        self.version = version
        self.url = url
        self.interfaces = Dictionary(uniqueKeysWithValues: interfaces.map { ($0.name, $0) })
        self.interfaceOrder = [Self.serviceInterfaceName] + interfaces.map(\.name)
    }

    /// The name of the interface every service implements.
    public static let serviceInterfaceName = "org.varlink.service"

    /// The definition of `org.varlink.service`, as published by the Varlink specification.
    public static let serviceInterfaceDefinition = """
        # The Varlink Service Interface is provided by every varlink service. It
        # describes the service and the interfaces it implements.
        interface org.varlink.service

        # Get a list of all the interfaces a service provides and information
        # about the implementation.
        method GetInfo() -> (
          vendor: string,
          product: string,
          version: string,
          url: string,
          interfaces: []string
        )

        # Get the description of an interface that is implemented by this service.
        method GetInterfaceDescription(interface: string) -> (description: string)

        # The requested interface was not found.
        error InterfaceNotFound (interface: string)

        # The requested method was not found
        error MethodNotFound (method: string)

        # The interface defines the requested method, but the service does not
        # implement it.
        error MethodNotImplemented (method: string)

        # One of the passed parameters is invalid.
        error InvalidParameter (parameter: string)

        # Client is denied access
        error PermissionDenied ()

        # Method is expected to be called with 'more' set to true, but wasn't
        error ExpectedMore ()

        """

    /// Routes one call to its interface and answers the standard errors itself.
    public func dispatch(_ call: VarlinkCall, peer: VarlinkPeer, responder: VarlinkResponder) {
        let interfaceName = call.interface
        if interfaceName == Self.serviceInterfaceName {
            handleServiceCall(call, responder: responder)
            return
        }
        guard let interface = interfaces[interfaceName] else {
            responder.fail(.interfaceNotFound(interfaceName))
            return
        }
        interface.handle(method: call.memberName, parameters: call.parameters, peer: peer, responder: responder)
    }

    private func handleServiceCall(_ call: VarlinkCall, responder: VarlinkResponder) {
        switch call.memberName {
        case "GetInfo":
            do {
                try ParameterReader(call.parameters).finish()
            } catch {
                responder.fail(error)
                return
            }
            responder.reply([
                "vendor": .string(vendor), "product": .string(product), "version": .string(version),
                "url": .string(url), "interfaces": .array(interfaceOrder.map(JSON.string)),
            ])
        case "GetInterfaceDescription":
            var reader = ParameterReader(call.parameters)
            let name: String
            do {
                name = try reader.required("interface")
                try reader.finish()
            } catch {
                responder.fail(error)
                return
            }
            if name == Self.serviceInterfaceName {
                responder.reply(["description": .string(Self.serviceInterfaceDefinition)])
            } else if let interface = interfaces[name] {
                responder.reply(["description": .string(interface.definition)])
            } else {
                responder.fail(.interfaceNotFound(name))
            }
        default:
            responder.fail(.methodNotFound(call.method))
        }
    }
}
