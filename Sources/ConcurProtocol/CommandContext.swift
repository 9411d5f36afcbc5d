import Varlink

/// Where an exec job's command runs and with what environment: its working directory, the
/// variables set for it, and whether it starts from the daemon's environment or an empty one.
///
/// Checked for form here (an absolute path, `NAME=VALUE` entries, no NUL); whether the daemon can
/// enter the directory is checked by the daemon when the job is submitted.
public struct CommandContext: Sendable, Hashable {
    /// The working directory (absolute); nil: the daemon's.
    public var directory: String?
    /// `NAME=VALUE` entries set on top of the starting environment, in order (a later one of the
    /// same name wins).
    public var environment: [String]
    /// Whether the command starts from an empty environment instead of the daemon's.
    public var clearsEnvironment: Bool

    /// A context; every part optional.
    public init(directory: String? = nil, environment: [String] = [], clearsEnvironment: Bool = false) {
        self.directory = directory
        self.environment = environment
        self.clearsEnvironment = clearsEnvironment
    }

    /// Whether it changes nothing from the daemon's own directory and environment.
    public var isDefault: Bool { directory == nil && environment.isEmpty && !clearsEnvironment }

    /// The most environment entries a job may set.
    public static let maxEntries = 256
    /// The most bytes of a working directory's path.
    public static let maxDirectoryBytes = 4096
    /// The most bytes of all entries together.
    public static let maxEnvironmentBytes = 65_536

    /// What is wrong with `path` as a working directory, or nil.
    public static func problem(withDirectory path: String) -> String? {
        guard path.hasPrefix("/") else { return "cwd must be an absolute path, not '\(path.prefix(64))'" }
        guard path.utf8.count <= maxDirectoryBytes, !path.utf8.contains(0) else {
            return "cwd must be at most \(maxDirectoryBytes) bytes, without NUL"
        }
        return nil
    }

    /// What is wrong with `entries` as environment entries, or nil.
    public static func problem(withEnvironment entries: [String]) -> String? {
        guard entries.count <= maxEntries else { return "at most \(maxEntries) env entries" }
        for entry in entries {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                return "env entries are NAME=VALUE with a name before the '=', not '\(entry.prefix(64))'"
            }
            guard !entry.utf8.contains(0) else { return "env entries may not hold NUL" }
        }
        guard entries.reduce(0, { $0 + $1.utf8.count }) <= maxEnvironmentBytes else {
            return "env entries must total at most \(maxEnvironmentBytes) bytes"
        }
        return nil
    }

    /// Reads `cwd`, `env` and `clearEnv` of a `JobSpec`: nil when none is given (or they change
    /// nothing); refused for a job that is not an exec job.
    init?(reading reader: inout ParameterReader, isExec: Bool) throws(VarlinkError) {
        let directory: String? = try reader.optional("cwd")
        let environment: [String] = try reader.optional("env") ?? []
        let clears: Bool = try reader.optional("clearEnv") ?? false
        let context = CommandContext(directory: directory, environment: environment, clearsEnvironment: clears)
        guard !context.isDefault else { return nil }
        guard isExec else {
            let field = directory != nil ? "cwd" : !environment.isEmpty ? "env" : "clearEnv"
            throw SupervisorError.invalidValue(parameter: reader.name(field), reason: "\(field) applies to exec jobs only")
        }
        if let directory, let problem = Self.problem(withDirectory: directory) {
            throw SupervisorError.invalidValue(parameter: reader.name("cwd"), reason: problem)
        }
        if let problem = Self.problem(withEnvironment: environment) {
            throw SupervisorError.invalidValue(parameter: reader.name("env"), reason: problem)
        }
        self = context
    }

    /// Writes the fields that differ from the default into a `JobSpec` object.
    func write(into object: inout JSONObject) {
        object.set("cwd", directory)
        if !environment.isEmpty { object["env"] = .array(environment.map(JSON.string)) }
        if clearsEnvironment { object["clearEnv"] = true }
    }
}
