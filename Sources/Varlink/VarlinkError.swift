/// An error reply: a fully qualified error name and that error's parameters.
///
/// Both sides use it: a service throws one to answer a call with an error, and the client
/// library throws one when the service answered with an error.
public struct VarlinkError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The fully qualified error name, such as `org.varlink.service.InvalidParameter`.
    public let name: String
    /// The error's fields, as declared in the interface definition.
    public let parameters: JSONObject

    /// An error with the given name and fields.
    public init(_ name: String, _ parameters: JSONObject = [:]) {
        self.name = name
        self.parameters = parameters
    }

    /// The error name without its interface, such as `InvalidParameter`.
    public var shortName: String {
        name.split(separator: ".").last.map(String.init) ?? name
    }

    /// The text shown to people.
    public var description: String {
        parameters.isEmpty ? name : "\(name) \(JSON.object(parameters).serialized)"
    }

    /// The interface of the errors every Varlink service shares.
    public static let serviceInterface = "org.varlink.service"

    /// A parameter is missing, unknown, or of the wrong type; `parameter` names it
    /// (a path such as `jobs[3].size` for nested values).
    public static func invalidParameter(_ parameter: String) -> VarlinkError {
        VarlinkError("\(serviceInterface).InvalidParameter", ["parameter": .string(echoed(parameter))])
    }

    /// The call named a method the interface does not have.
    public static func methodNotFound(_ method: String) -> VarlinkError {
        VarlinkError("\(serviceInterface).MethodNotFound", ["method": .string(echoed(method))])
    }

    /// The interface exists but does not implement the method.
    public static func methodNotImplemented(_ method: String) -> VarlinkError {
        VarlinkError("\(serviceInterface).MethodNotImplemented", ["method": .string(echoed(method))])
    }

    /// The call named an interface the service does not offer.
    public static func interfaceNotFound(_ interface: String) -> VarlinkError {
        VarlinkError("\(serviceInterface).InterfaceNotFound", ["interface": .string(echoed(interface))])
    }

    /// The longest name echoed back in an error, in bytes; a longer one (never a real name) is
    /// cut, so an error reply stays small whatever the call held.
    public static let maxEchoedBytes = 256

    /// `name`, cut to ``maxEchoedBytes`` (at a character boundary) with "..." when longer.
    static func echoed(_ name: String) -> String {
        guard name.utf8.count > maxEchoedBytes else { return name }
        var cut = ""
        for character in name {
            guard cut.utf8.count + character.utf8.count <= maxEchoedBytes else { break }
            cut.append(character)
        }
        return cut + "..."
    }

    /// The caller is not allowed to use the service.
    public static let permissionDenied = VarlinkError("\(serviceInterface).PermissionDenied")

    /// The method only streams and was called without `"more": true`.
    public static let expectedMore = VarlinkError("\(serviceInterface).ExpectedMore")
}
