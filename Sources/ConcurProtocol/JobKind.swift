public import Varlink

/// What a job does. Workloads are written once and run unchanged under every model.
public enum JobKind: Sendable, Hashable {
    /// A fixed amount of CPU work proportional to `size` (not a duration, so that results
    /// compare across models and machines).
    case cpu(size: Double)
    /// Trial-division primality test of `n` (odd divisors up to isqrt(n)).
    case prime(n: UInt64)
    /// Waits `milliseconds` without using the CPU: stands for I/O.
    case sleep(milliseconds: Int)
    /// Fails at once: fault injection for tests and demos.
    case fail

    /// The kind's name on the wire and on the command line.
    public var name: String {
        switch self {
        case .cpu: "cpu"
        case .prime: "prime"
        case .sleep: "sleep"
        case .fail: "fail"
        }
    }

    /// The names of every kind, for help texts and errors.
    public static let names = ["cpu", "prime", "sleep", "fail"]

    /// A short human label, such as `prime(97)` or `cpu(1.25)`.
    public var label: String {
        switch self {
        case .cpu(let size): "cpu(\(formatDecimal(size)))"
        case .prime(let n): "prime(\(n))"
        case .sleep(let milliseconds): "sleep(\(milliseconds)ms)"
        case .fail: "fail"
        }
    }
}

/// The accepted range of every job parameter, shared by the daemon's checks and the client's.
public enum JobLimits {
    /// `cpu(size)`: units of work; 1.0 is about 0.1 s of one core on the reference machine.
    public static let cpuSize: ClosedRange<Double> = 0...1000
    /// `prime(n)`: the number to test (Varlink integers are signed 64-bit).
    public static let primeN: ClosedRange<UInt64> = 1...UInt64(Int64.max)
    /// `sleep(ms)`: up to one hour.
    public static let sleepMilliseconds: ClosedRange<Int> = 0...3_600_000
    /// Jobs one `Submit` call may carry.
    public static let jobsPerSubmit = 10_000
    /// Jobs one `Generate` call may create.
    public static let jobsPerGenerate = 10_000_000
}

extension JobKind: JSONDecodable, JSONEncodable {
    /// Reads a `JobSpec` (`{"kind": "prime", "n": 97}`), checking the parameter's range.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        let kindName: String = try reader.required("kind")
        switch kindName {
        case "cpu":
            let size: Double = try reader.required("size")
            guard JobLimits.cpuSize.contains(size) else {
                throw SupervisorError.invalidValue(
                    parameter: reader.name("size"), reason: "cpu size must be between 0 and \(Int(JobLimits.cpuSize.upperBound))")
            }
            self = .cpu(size: size)
        case "prime":
            let n: Int64 = try reader.required("n")
            guard n >= 1 else {
                throw SupervisorError.invalidValue(parameter: reader.name("n"), reason: "prime n must be at least 1")
            }
            self = .prime(n: UInt64(n))
        case "sleep":
            let milliseconds: Int = try reader.required("ms")
            guard JobLimits.sleepMilliseconds.contains(milliseconds) else {
                throw SupervisorError.invalidValue(
                    parameter: reader.name("ms"),
                    reason: "sleep ms must be between 0 and \(JobLimits.sleepMilliseconds.upperBound)")
            }
            self = .sleep(milliseconds: milliseconds)
        case "fail":
            self = .fail
        default:
            throw SupervisorError.invalidValue(
                parameter: reader.name("kind"),
                reason: "unknown job kind '\(kindName)'; use one of \(JobKind.names.joined(separator: ", "))")
        }
        try reader.finish()
    }

    /// The job as a `JobSpec`.
    public var json: JSON {
        switch self {
        case .cpu(let size): ["kind": "cpu", "size": .double(size)]
        case .prime(let n): ["kind": "prime", "n": n.json]
        case .sleep(let milliseconds): ["kind": "sleep", "ms": milliseconds.json]
        case .fail: ["kind": "fail"]
        }
    }
}

extension JobKind {
    /// The 20 numbers of the classic process-pool primality demo (9 of them prime).
    public static let primesPreset: [JobKind] = [
        2, 142_702_110_479_723, 299_593_572_317_531, 3_333_333_333_333_301, 3_333_333_333_333_333,
        3_333_335_652_092_209, 4_444_444_444_444_423, 4_444_444_444_444_444, 4_444_444_488_888_889,
        5_555_553_133_149_889, 5_555_555_555_555_503, 5_555_555_555_555_555, 6_666_666_666_666_666,
        6_666_666_666_666_719, 6_666_667_141_414_921, 7_777_777_536_340_681, 7_777_777_777_777_753,
        7_777_777_777_777_777, 9_999_999_999_999_917, 9_999_999_999_999_999,
    ].map { JobKind.prime(n: $0) }

    /// Parses the command-line form of a job: `cpu:1.5`, `prime:97`, `sleep:250` or `fail`.
    ///
    /// The error text says what was expected, ready to show to a person.
    public init(commandLine text: String) throws(JobSpecParseError) {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(parts[0])
        let argument = parts.count > 1 ? String(parts[1]) : nil
        switch name {
        case "cpu":
            guard let argument, let size = Double(argument), JobLimits.cpuSize.contains(size) else {
                throw JobSpecParseError(text: text, reason: "expected cpu:SIZE with SIZE between 0 and 1000, e.g. cpu:1.5")
            }
            self = .cpu(size: size)
        case "prime":
            guard let argument, let n = UInt64(argument), JobLimits.primeN.contains(n) else {
                throw JobSpecParseError(text: text, reason: "expected prime:N with N between 1 and \(Int64.max), e.g. prime:97")
            }
            self = .prime(n: n)
        case "sleep":
            guard let argument, let milliseconds = Int(argument), JobLimits.sleepMilliseconds.contains(milliseconds) else {
                throw JobSpecParseError(
                    text: text,
                    reason: "expected sleep:MS with MS between 0 and \(JobLimits.sleepMilliseconds.upperBound), e.g. sleep:250")
            }
            self = .sleep(milliseconds: milliseconds)
        case "fail":
            guard argument == nil else { throw JobSpecParseError(text: text, reason: "fail takes no argument") }
            self = .fail
        default:
            throw JobSpecParseError(
                text: text, reason: "unknown job kind '\(name)'; use cpu:SIZE, prime:N, sleep:MS, fail or the preset 'primes'")
        }
    }
}

/// A job written on the command line that could not be understood.
public struct JobSpecParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The text as given.
    public let text: String
    /// What was expected instead.
    public let reason: String

    /// The text shown to people.
    public var description: String { "invalid job '\(text)': \(reason)" }
}
