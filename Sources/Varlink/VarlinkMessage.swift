/// A method call as it travels from a client to a service.
public struct VarlinkCall: Sendable, Equatable {
    /// The fully qualified method name, such as `io.concur.Supervisor.Status`.
    public var method: String
    /// The call's input fields.
    public var parameters: JSONObject
    /// The client wants no reply at all.
    public var oneway: Bool
    /// The client accepts several replies (a stream ending with `continues: false`).
    public var more: Bool
    /// After the reply, the connection leaves the Varlink protocol.
    public var upgrade: Bool

    /// A call of `method` with the given fields and flags.
    public init(
        method: String, parameters: JSONObject = [:], oneway: Bool = false, more: Bool = false,
        upgrade: Bool = false
    ) {
        self.method = method
        self.parameters = parameters
        self.oneway = oneway
        self.more = more
        self.upgrade = upgrade
    }

    /// Reads a call out of a decoded message, refusing anything that is not a well-formed call.
    public init(json: JSON) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: "")
        method = try reader.required("method")
        parameters = try reader.optional("parameters") ?? [:]
        oneway = try reader.optional("oneway") ?? false
        more = try reader.optional("more") ?? false
        upgrade = try reader.optional("upgrade") ?? false
        // Unknown top-level keys are tolerated: the specification reserves them for extensions.
    }

    /// The interface part of `method` (everything before the last dot).
    public var interface: String {
        guard let dot = method.lastIndex(of: ".") else { return "" }
        return String(method[..<dot])
    }

    /// The method's name without its interface.
    public var memberName: String {
        guard let dot = method.lastIndex(of: ".") else { return method }
        return String(method[method.index(after: dot)...])
    }

    /// The call as a JSON message.
    public var json: JSON {
        var object: JSONObject = ["method": .string(method)]
        if !parameters.isEmpty { object["parameters"] = .object(parameters) }
        if oneway { object["oneway"] = true }
        if more { object["more"] = true }
        if upgrade { object["upgrade"] = true }
        return .object(object)
    }
}

/// A reply from a service: output fields, or an error, and whether more replies follow.
public struct VarlinkReply: Sendable, Equatable {
    /// The reply's output fields (or the error's fields).
    public var parameters: JSONObject
    /// More replies to the same call follow.
    public var continues: Bool
    /// The fully qualified error name when the call failed.
    public var error: String?
    /// The transport may skip it when the client is not reading (it is not sent on the wire).
    public var droppable = false
    /// The parameters already serialized (a JSON object's text), sent instead of
    /// ``parameters``: a reply many callers share (a statistics frame) is encoded once.
    public var encodedParameters: [UInt8]?

    /// A successful reply; a `droppable` one is skipped while the client is not reading.
    public init(parameters: JSONObject = [:], continues: Bool = false, droppable: Bool = false) {
        self.parameters = parameters
        self.continues = continues
        self.error = nil
        self.droppable = droppable
    }

    /// An error reply.
    public init(error: VarlinkError) {
        self.parameters = error.parameters
        self.continues = false
        self.error = error.name
    }

    /// Reads a reply out of a decoded message.
    public init(json: JSON) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: "")
        parameters = try reader.optional("parameters") ?? [:]
        continues = try reader.optional("continues") ?? false
        error = try reader.optional("error")
    }

    /// A successful reply whose parameters are already serialized (`encoded` must be the text
    /// of a JSON object).
    public init(encodedParameters encoded: [UInt8], continues: Bool = false, droppable: Bool = false) {
        self.parameters = [:]
        self.continues = continues
        self.error = nil
        self.droppable = droppable
        self.encodedParameters = encoded
    }

    /// Appends the reply as a framed message (with its NUL) to `output`.
    public func frame(into output: inout [UInt8]) {
        guard let encodedParameters else {
            VarlinkFraming.frame(json, into: &output)
            return
        }
        output.append(contentsOf: #"{"parameters":"#.utf8)
        output.append(contentsOf: encodedParameters)
        if continues { output.append(contentsOf: #","continues":true"#.utf8) }
        output.append(contentsOf: "}".utf8)
        output.append(0)
    }

    /// The reply as a JSON message.
    public var json: JSON {
        var object = JSONObject()
        if let error { object["error"] = .string(error) }
        object["parameters"] = .object(parameters)
        if continues { object["continues"] = true }
        return .object(object)
    }

    /// The error this reply carries, if it is an error reply.
    public var varlinkError: VarlinkError? {
        error.map { VarlinkError($0, parameters) }
    }
}
