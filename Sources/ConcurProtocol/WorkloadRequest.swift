public import Varlink

/// The kind of jobs `Generate` creates.
public enum GeneratedKind: String, Sendable, Hashable, CaseIterable, JSONDecodable, JSONEncodable {
    /// `cpu(size)` with size uniform in [0.5, 1.5) times the scale, like the seed demo.
    case cpu
    /// `prime(n)` with n uniform among 16-digit numbers, like the classic preset.
    case prime
    /// `sleep(ms)` with ms uniform in [50, 150) times the scale.
    case sleep
    /// Each job picks cpu, prime or sleep at random.
    case mixed
}

/// A seeded, randomly generated workload: the parameters of `Generate` and `concurd run`.
public struct WorkloadRequest: Sendable, Hashable {
    /// How many jobs.
    public var count: Int
    /// Their kind.
    public var kind: GeneratedKind
    /// The seed; the same seed gives the same jobs under every model. Nil: the daemon picks one.
    public var seed: UInt64?
    /// Multiplies cpu sizes and sleep times; 0 makes no-op jobs.
    public var scale: Double
    /// Seconds each job may run before it is stopped and failed; nil: the daemon's default.
    public var timeout: Double?
    /// The priority, earliest start and the jobs to run after, the same for every job.
    public var placement = JobPlacement()
    /// The pool the jobs go to; nil: the default.
    public var pool: PoolName?

    /// The accepted range of `scale`.
    public static let scaleRange: ClosedRange<Double> = 0...100

    /// A request with the given parameters.
    public init(count: Int, kind: GeneratedKind = .cpu, seed: UInt64? = nil, scale: Double = 1, timeout: Double? = nil) {
        self.count = count
        self.kind = kind
        self.seed = seed
        self.scale = scale
        self.timeout = timeout
    }

    /// Reads `Generate`'s parameters and checks their ranges.
    public init(parameters: JSONObject) throws(VarlinkError) {
        var reader = ParameterReader(parameters)
        count = try reader.required("count")
        kind = try reader.optional("kind") ?? .cpu
        seed = try reader.optional("seed")
        scale = try reader.optional("scale") ?? 1
        timeout = try reader.optional("timeout")
        placement = try JobPlacement(reading: &reader)
        pool = try reader.poolName()
        try reader.finish()
        guard (1...JobLimits.jobsPerGenerate).contains(count) else {
            throw SupervisorError.invalidValue(
                parameter: "count", reason: "count must be between 1 and \(JobLimits.jobsPerGenerate)")
        }
        guard Self.scaleRange.contains(scale) else {
            throw SupervisorError.invalidValue(parameter: "scale", reason: "scale must be between 0 and 100")
        }
        if let timeout, !JobLimits.timeout.contains(timeout) {
            throw SupervisorError.invalidValue(parameter: "timeout", reason: "timeout must be between 0.001 and 86400 seconds")
        }
    }

    /// `Generate`'s parameters.
    public var parameters: JSONObject {
        var object: JSONObject = ["count": count.json, "kind": kind.json]
        object.set("seed", seed)
        if scale != 1 { object["scale"] = scale.json }
        object.set("timeout", timeout)
        placement.write(into: &object)
        if let pool { object["pool"] = .string(pool.rawValue) }
        return object
    }
}
