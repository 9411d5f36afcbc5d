public import ArgumentParser
public import ConcurProtocol

// The protocol's vocabulary as command-line values, shared by concurd and concurctl.

extension ConcurrencyModel: ExpressibleByArgument {
    /// Parses a command-line argument.
    public init?(argument: String) { self.init(rawValue: argument) }
    /// The values the command line accepts.
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

extension GeneratedKind: ExpressibleByArgument {
    /// Parses a command-line argument.
    public init?(argument: String) { self.init(rawValue: argument) }
    /// The values the command line accepts.
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

extension JobState: ExpressibleByArgument {
    /// Parses a command-line argument.
    public init?(argument: String) { self.init(rawValue: argument) }
    /// The values the command line accepts.
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}
