public import Varlink

/// How often a job that fails on its own (a command that exits non-zero or passes its time
/// limit, a job that reports failure) is run again, and how long the pool waits first.
///
/// Separate from the attempts a job gets when the worker running it dies (`max_attempts`). The
/// wait before retry k is `delay * 2^(k-1)`, capped at ``maxDelay``, times a jitter between
/// 0.75 and 1.25 that depends only on the job and k (so that jobs failing together do not all
/// come back at once, and a test can tell what to expect).
public struct RetryPolicy: Sendable, Hashable {
    /// Runs after the first failed one (1 to 100).
    public var retries: Int
    /// Seconds before the first retry (0 to 3600).
    public var delay: Double

    /// A policy of `retries` retries, the first after `delay` seconds.
    public init(retries: Int, delay: Double = 1) {
        self.retries = retries
        self.delay = delay
    }

    /// The accepted retries.
    public static let retryRange = 1...100
    /// The accepted first delays, in seconds.
    public static let delayRange: ClosedRange<Double> = 0...3600
    /// The longest wait before a retry, in seconds (before jitter).
    public static let maxDelay = 3600.0

    /// Seconds to wait before retry `number` (1 for the first) of job `id`.
    public func wait(beforeRetry number: Int, of id: UInt64) -> Double {
        let doubled = delay * Double(1 << min(max(number - 1, 0), 20))
        return min(doubled, Self.maxDelay) * Self.jitter(id: id, retry: number)
    }

    /// A factor in [0.75, 1.25) from SplitMix64 of the job and the retry.
    static func jitter(id: UInt64, retry: Int) -> Double {
        var z = id &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(retry)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return 0.75 + Double(z >> 11) / Double(1 << 53) * 0.5
    }

    /// Reads `retries` and `retryDelay` of a `JobSpec`: nil when `retries` is absent or 0.
    init?(reading reader: inout ParameterReader) throws(VarlinkError) {
        let retries: Int = try reader.optional("retries") ?? 0
        let delay: Double? = try reader.optional("retryDelay")
        guard retries == 0 || Self.retryRange.contains(retries) else {
            throw SupervisorError.invalidValue(parameter: reader.name("retries"), reason: "retries must be between 0 and 100")
        }
        if let delay, !Self.delayRange.contains(delay) {
            throw SupervisorError.invalidValue(
                parameter: reader.name("retryDelay"), reason: "retryDelay must be between 0 and 3600 seconds")
        }
        guard retries > 0 else {
            if delay != nil {
                throw SupervisorError.invalidValue(parameter: reader.name("retryDelay"), reason: "retryDelay needs retries")
            }
            return nil
        }
        self.init(retries: retries, delay: delay ?? 1)
    }

    /// Writes its fields into a `JobSpec` object.
    func write(into object: inout JSONObject) {
        object["retries"] = retries.json
        object["retryDelay"] = delay.json
    }
}

/// One run of a job that ended and was followed by another (its retry): how and when it ended.
public struct JobAttempt: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// Which run it was (1 for the first).
    public var attempt: Int
    /// When it started (Unix seconds), if it did.
    public var startedAt: Double?
    /// When it ended.
    public var finishedAt: Double
    /// For a command: its exit code, if it exited.
    public var exitCode: Int?
    /// For a command: the signal that ended it, if one did.
    public var signal: Int?
    /// Why it failed.
    public var error: String

    /// An attempt with the given fields.
    public init(attempt: Int, startedAt: Double?, finishedAt: Double, exitCode: Int? = nil, signal: Int? = nil, error: String) {
        self.attempt = attempt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.exitCode = exitCode
        self.signal = signal
        self.error = error
    }

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        attempt = try reader.required("attempt")
        startedAt = try reader.optional("startedAt")
        finishedAt = try reader.required("finishedAt")
        exitCode = try reader.optional("exitCode")
        signal = try reader.optional("signal")
        error = try reader.required("error")
        try reader.finish()
    }

    /// The value as JSON.
    public var json: JSON {
        var object: JSONObject = ["attempt": attempt.json, "finishedAt": finishedAt.json, "error": .string(error)]
        object.set("startedAt", startedAt)
        object.set("exitCode", exitCode)
        object.set("signal", signal)
        return .object(object)
    }
}
