/// A value that can be read out of a JSON parameter, reporting the parameter's path on failure.
public protocol JSONDecodable {
    /// Reads the value; `path` names the parameter for the error (`jobs[3].size`).
    init(json: JSON, path: String) throws(VarlinkError)
}

/// A value that can be written as a JSON parameter.
public protocol JSONEncodable {
    /// The value as JSON.
    var json: JSON { get }
}

/// Reads typed fields out of a parameters object and refuses fields nobody asked for.
///
/// Every failure is `org.varlink.service.InvalidParameter` naming the field by its full path,
/// as the Varlink specification asks for unknown fields and wrong types.
public struct ParameterReader {
    private let object: JSONObject
    private let path: String
    private var consumed: Set<String> = []

    /// A reader over `object`, whose fields are named `path` + field (`path` may be empty).
    public init(_ object: JSONObject, path: String = "") {
        self.object = object
        self.path = path
    }

    /// A reader over a nested JSON value that must be an object.
    public init(json: JSON, path: String) throws(VarlinkError) {
        guard case .object(let object) = json else { throw .invalidParameter(path) }
        self.init(object, path: path.isEmpty ? "" : path + ".")
    }

    /// The full name of `field` for error messages.
    public func name(_ field: String) -> String {
        path.isEmpty || path.hasSuffix(".") ? path + field : path + "." + field
    }

    /// The field's value; a missing field or `null` is an error.
    public mutating func required<T: JSONDecodable>(_ field: String, as type: T.Type = T.self)
        throws(VarlinkError) -> T
    {
        guard let value = try optional(field, as: type) else { throw .invalidParameter(name(field)) }
        return value
    }

    /// The field's value, or nil when it is missing or `null`.
    public mutating func optional<T: JSONDecodable>(_ field: String, as type: T.Type = T.self)
        throws(VarlinkError) -> T?
    {
        consumed.insert(field)
        guard let value = object[field], value != .null else { return nil }
        return try T(json: value, path: name(field))
    }

    /// Fails if the object has a field that was not read: the caller misspelled a parameter or
    /// speaks a newer interface.
    public func finish() throws(VarlinkError) {
        for key in object.keys where !consumed.contains(key) {
            throw .invalidParameter(name(key))
        }
    }
}

extension Bool: JSONDecodable, JSONEncodable {
    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        guard case .bool(let value) = json else { throw .invalidParameter(path) }
        self = value
    }
    /// The value as JSON.
    public var json: JSON { .bool(self) }
}

extension Int64: JSONDecodable, JSONEncodable {
    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        switch json {
        case .int(let value): self = value
        // A float with an integral value is accepted: some clients send every number as a double.
        case .double(let value) where value.rounded() == value && abs(value) < 9.0e15: self = Int64(value)
        default: throw .invalidParameter(path)
        }
    }
    /// The value as JSON.
    public var json: JSON { .int(self) }
}

extension Int: JSONDecodable, JSONEncodable {
    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        let value = try Int64(json: json, path: path)
        self = Int(value)
    }
    /// The value as JSON.
    public var json: JSON { .int(Int64(self)) }
}

extension UInt64: JSONDecodable, JSONEncodable {
    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        let value = try Int64(json: json, path: path)
        guard value >= 0 else { throw .invalidParameter(path) }
        self = UInt64(value)
    }
    /// Values above `Int64.max` cannot be carried by Varlink's `int` and are clamped.
    public var json: JSON { .int(Int64(clamping: self)) }
}

extension Double: JSONDecodable, JSONEncodable {
    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        switch json {
        case .double(let value): self = value
        case .int(let value): self = Double(value)
        default: throw .invalidParameter(path)
        }
    }
    /// The value as JSON.
    public var json: JSON { .double(self) }
}

extension String: JSONDecodable, JSONEncodable {
    /// The longest string parameter accepted, in bytes: no name, path or argument of ours comes
    /// near it, and a longer one would only be echoed back or stored.
    public static let maxParameterBytes = 4096

    /// Reads the value from JSON; an error names the parameter by `path` (also for a string
    /// longer than ``maxParameterBytes``).
    public init(json: JSON, path: String) throws(VarlinkError) {
        guard case .string(let value) = json, value.utf8.count <= Self.maxParameterBytes else {
            throw .invalidParameter(path)
        }
        self = value
    }
    /// The value as JSON.
    public var json: JSON { .string(self) }
}

extension JSON: JSONDecodable, JSONEncodable {
    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) { self = json }
    /// The value as JSON.
    public var json: JSON { self }
}

extension JSONObject: JSONDecodable, JSONEncodable {
    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        guard case .object(let value) = json else { throw .invalidParameter(path) }
        self = value
    }
    /// The value as JSON.
    public var json: JSON { .object(self) }
}

extension Array: JSONDecodable where Element: JSONDecodable {
    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        guard case .array(let elements) = json else { throw .invalidParameter(path) }
        var result: [Element] = []
        result.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            result.append(try Element(json: element, path: "\(path)[\(index)]"))
        }
        self = result
    }
}

extension Array: JSONEncodable where Element: JSONEncodable {
    /// The value as JSON. (A closure, not `map(\.json)`: a key path in this generic context is
    /// instantiated at run time on every call, a tenth of a Status reply's cost.)
    public var json: JSON { .array(map { $0.json }) }
}

extension Optional: JSONEncodable where Wrapped: JSONEncodable {
    /// The value as JSON.
    public var json: JSON { self?.json ?? .null }
}

extension JSONObject {
    /// Sets `key` to the value's JSON, or leaves it out when the value is nil (Varlink's
    /// optional fields are omitted rather than sent as null).
    public mutating func set(_ key: String, _ value: (some JSONEncodable)?) {
        if let value { self[key] = value.json }
    }
}

extension JSONDecodable where Self: RawRepresentable, RawValue == String {
    /// Reads a string-valued enumeration (a Varlink enum); an unknown case is an invalid parameter.
    public init(json: JSON, path: String) throws(VarlinkError) {
        guard case .string(let text) = json, let value = Self(rawValue: text) else { throw .invalidParameter(path) }
        self = value
    }
}

extension JSONEncodable where Self: RawRepresentable, RawValue == String {
    /// Writes a string-valued enumeration as its raw value.
    public var json: JSON { .string(rawValue) }
}
