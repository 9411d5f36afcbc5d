/// A JSON value as Varlink carries it.
///
/// Integers are kept apart from floating-point numbers so that 64-bit values (job ids, the
/// 16-digit primes of the `primes` preset) survive a round trip exactly; a JSON `double`
/// loses integers above 2^53.
public enum JSON: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object(JSONObject)

    /// A short name of the value's type, used in error messages ("expected int, got string").
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "bool"
        case .int: "int"
        case .double: "float"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

/// A JSON object that remembers the order its keys were inserted in.
///
/// Order matters only to people reading `--json` output; lookups are by hash.
public struct JSONObject: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    private var orderedKeys: [String] = []
    private var values: [String: JSON] = [:]

    /// An empty object.
    public init() {}

    /// An object with the given members, in the given order; a repeated key keeps its last value.
    public init(dictionaryLiteral elements: (String, JSON)...) {
        for (key, value) in elements { self[key] = value }
    }

    /// The number of members.
    public var count: Int { orderedKeys.count }

    /// Whether the object has no members.
    public var isEmpty: Bool { orderedKeys.isEmpty }

    /// The keys in insertion order.
    public var keys: [String] { orderedKeys }

    /// The member called `key`; setting `nil` removes it.
    public subscript(key: String) -> JSON? {
        get { values[key] }
        set {
            if let newValue {
                if values.updateValue(newValue, forKey: key) == nil { orderedKeys.append(key) }
            } else if values.removeValue(forKey: key) != nil {
                orderedKeys.removeAll { $0 == key }
            }
        }
    }

    /// Inserts a member that must not exist yet; returns false (and changes nothing) if it does.
    @discardableResult
    public mutating func insertNew(_ key: String, _ value: JSON) -> Bool {
        guard values[key] == nil else { return false }
        values[key] = value
        orderedKeys.append(key)
        return true
    }

    /// Iterates the members in insertion order.
    public func makeIterator() -> some IteratorProtocol<(key: String, value: JSON)> {
        var index = 0
        return AnyIterator<(key: String, value: JSON)> {
            guard index < orderedKeys.count else { return nil }
            let key = orderedKeys[index]
            index += 1
            return (key, values[key]!)
        }
    }

    /// Whether the two hold the same members.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.values == rhs.values
    }

    /// Hashes the members.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(values)
    }
}

extension JSON: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    /// JSON `null`.
    public init(nilLiteral: ()) { self = .null }
    /// A JSON boolean.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// A JSON integer.
    public init(integerLiteral value: Int64) { self = .int(value) }
    /// A JSON float.
    public init(floatLiteral value: Double) { self = .double(value) }
    /// A JSON string.
    public init(stringLiteral value: String) { self = .string(value) }
    /// A JSON array.
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    /// A JSON object with these members, in this order.
    public init(dictionaryLiteral elements: (String, JSON)...) {
        var object = JSONObject()
        for (key, value) in elements { object[key] = value }
        self = .object(object)
    }
}
