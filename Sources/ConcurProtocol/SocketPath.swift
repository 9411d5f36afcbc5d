/// Where the control socket lives when `--socket` and `CONCUR_SOCKET` do not say.
///
/// The daemon and the client share the rule: `/run/concurd/control.sock` for root,
/// `$XDG_RUNTIME_DIR/concurd/control.sock` for anyone else.
public enum SocketPath {
    /// The environment variable that overrides the default.
    public static let environmentVariable = "CONCUR_SOCKET"

    /// The system-wide socket of a daemon run by root (or by systemd).
    public static let system = "/run/concurd/control.sock"

    /// The socket path: `explicit` if given, else `$CONCUR_SOCKET`, else the default for `uid`.
    ///
    /// - Throws: ``SocketPathError`` when a non-root user has no `XDG_RUNTIME_DIR`.
    public static func resolve(explicit: String?, uid: UInt32, environment: (String) -> String?) throws(SocketPathError) -> String
    {
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnvironment = environment(environmentVariable), !fromEnvironment.isEmpty { return fromEnvironment }
        if uid == 0 { return system }
        guard let runtime = environment("XDG_RUNTIME_DIR"), runtime.hasPrefix("/") else { throw SocketPathError() }
        return runtime + "/concurd/control.sock"
    }
}

/// No socket path could be chosen.
public struct SocketPathError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An error.
    public init() {}

    /// The text shown to people.
    public var description: String {
        "no socket path: XDG_RUNTIME_DIR is not set; pass --socket PATH or set CONCUR_SOCKET"
    }
}
