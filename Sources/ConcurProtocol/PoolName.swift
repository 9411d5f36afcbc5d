public import Varlink

/// The name of one of the daemon's pools: 1 to 32 of `a-z`, `0-9`, `_` and `-`, starting with a
/// letter or digit, so that it can be a TOML key, a file name and a Prometheus label as it
/// stands. `default` always exists: calls that name no pool go to it.
public struct PoolName: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The name as written.
    public let rawValue: String

    /// The pool that calls naming no pool address; it cannot be removed.
    public static let `default` = PoolName(checked: "default")
    /// The most pools one daemon runs.
    public static let maxPools = 64
    /// The rule, as error messages say it.
    public static let rule = "a pool's name is 1 to 32 of a-z, 0-9, _ and -, starting with a letter or digit"

    /// The name, if `text` follows ``rule``.
    public init?(_ text: String) {
        guard Self.problem(with: text) == nil else { return nil }
        rawValue = text
    }

    private init(checked: String) { rawValue = checked }

    /// What is wrong with `text` as a pool's name, if anything.
    public static func problem(with text: String) -> String? {
        let bytes = Array(text.utf8)
        guard (1...32).contains(bytes.count) else {
            return bytes.isEmpty ? "a pool's name cannot be empty" : "'\(text)' is longer than 32 characters; \(rule)"
        }
        func allowed(_ byte: UInt8, first: Bool) -> Bool {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
            case UInt8(ascii: "_"), UInt8(ascii: "-"): !first
            default: false
            }
        }
        for (index, byte) in bytes.enumerated() where !allowed(byte, first: index == 0) {
            return "'\(text)' is not a pool name: \(rule)"
        }
        return nil
    }

    /// The name as written.
    public var description: String { rawValue }

    /// The default pool first, the others by name: the order every list shows them in.
    public static func < (left: PoolName, right: PoolName) -> Bool {
        if left == .default || right == .default { return left == .default && right != .default }
        return left.rawValue < right.rawValue
    }
}

extension ParameterReader {
    /// Reads an optional `pool` parameter; a value that is not a pool's name is `InvalidValue`.
    public mutating func poolName(_ key: String = "pool") throws(VarlinkError) -> PoolName? {
        guard let text: String = try optional(key) else { return nil }
        guard let name = PoolName(text) else {
            throw SupervisorError.invalidValue(
                parameter: self.name(key), reason: PoolName.problem(with: text) ?? PoolName.rule)
        }
        return name
    }
}
