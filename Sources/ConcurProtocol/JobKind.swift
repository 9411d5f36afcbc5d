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
    /// Aborts the process that runs it: fault injection that only the processes model survives.
    /// Under threads or tasks it is refused unless `forced`, because it would take the daemon down.
    case crash(forced: Bool)
    /// Runs a real command (no shell), as the daemon's user, in a process group of its own.
    case exec(argv: [String])

    /// The kind's name on the wire and on the command line.
    public var name: String {
        switch self {
        case .cpu: "cpu"
        case .prime: "prime"
        case .sleep: "sleep"
        case .fail: "fail"
        case .crash: "crash"
        case .exec: "exec"
        }
    }

    /// The names of every kind, for help texts and errors.
    public static let names = ["cpu", "prime", "sleep", "fail", "crash", "exec"]

    /// A short human label, such as `prime(97)`, `cpu(1.25)` or `exec(make test)`.
    public var label: String {
        switch self {
        case .cpu(let size): "cpu(\(formatDecimal(size)))"
        case .prime(let n): "prime(\(n))"
        case .sleep(let milliseconds): "sleep(\(milliseconds)ms)"
        case .fail: "fail"
        case .crash(let forced): forced ? "crash(forced)" : "crash"
        case .exec(let argv):
            "exec(\(argv.joined(separator: " ").prefix(40))\(argv.joined(separator: " ").count > 40 ? "..." : ""))"
        }
    }

    /// Whether it runs a command.
    public var isExec: Bool {
        if case .exec = self { return true }
        return false
    }

    /// Whether running this job in the daemon's own process would take the daemon down.
    public var crashesItsProcess: Bool {
        if case .crash = self { return true }
        return false
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
    /// `exec(argv)`: arguments per command.
    public static let execArguments = 1...256
    /// `exec(argv)`: bytes per argument.
    public static let execArgumentBytes = 1...4096
    /// `exec(argv)`: bytes of all arguments together.
    public static let execTotalBytes = 65_536
    /// A job's `timeout`, in seconds.
    public static let timeout: ClosedRange<Double> = 0.001...86_400
    /// Jobs one `Submit` call may carry.
    public static let jobsPerSubmit = 10_000
    /// Jobs one `Generate` call may create.
    public static let jobsPerGenerate = 10_000_000
    /// A job's `priority`: higher runs first, 0 by default.
    public static let priority = -10...10
    /// The jobs one job may wait for (`after`).
    public static let dependencies = 1000
    /// The Unix times a job's `startAt` may hold at all (2000 to 2100); the daemon accepts only
    /// times from now to ``furthestStart`` ahead.
    public static let unixTime: ClosedRange<Double> = 946_684_800...4_102_444_800
    /// How far ahead a job may be scheduled, in seconds (a year, leap years included: 366 days).
    public static let furthestStart = 366.0 * 86_400
}

extension JobKind {
    /// Reads the kind and its parameters from a `JobSpec` object, checking their ranges; the
    /// caller reads the other fields and calls `finish()`.
    public init(reading reader: inout ParameterReader) throws(VarlinkError) {
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
        case "crash":
            self = .crash(forced: try reader.optional("force") ?? false)
        case "exec":
            let argv: [String] = try reader.required("argv")
            if let problem = Self.problem(withArguments: argv) {
                throw SupervisorError.invalidValue(parameter: reader.name("argv"), reason: problem)
            }
            self = .exec(argv: argv)
        default:
            throw SupervisorError.invalidValue(
                parameter: reader.name("kind"),
                reason: "unknown job kind '\(kindName)'; use one of \(JobKind.names.joined(separator: ", "))")
        }
    }

    /// What is wrong with a command line for `exec`, or nil if it is acceptable.
    public static func problem(withArguments argv: [String]) -> String? {
        guard JobLimits.execArguments.contains(argv.count) else {
            return "exec needs 1 to \(JobLimits.execArguments.upperBound) arguments (the command first)"
        }
        guard argv.allSatisfy({ JobLimits.execArgumentBytes.contains($0.utf8.count) && !$0.utf8.contains(0) }) else {
            return "each exec argument must be 1 to \(JobLimits.execArgumentBytes.upperBound) bytes, without NUL"
        }
        guard argv.reduce(0, { $0 + $1.utf8.count }) <= JobLimits.execTotalBytes else {
            return "exec arguments must total at most \(JobLimits.execTotalBytes) bytes"
        }
        return nil
    }

    /// The kind's fields of a `JobSpec`.
    public var fields: JSONObject {
        switch self {
        case .cpu(let size): ["kind": "cpu", "size": .double(size)]
        case .prime(let n): ["kind": "prime", "n": n.json]
        case .sleep(let milliseconds): ["kind": "sleep", "ms": milliseconds.json]
        case .fail: ["kind": "fail"]
        case .crash(let forced): forced ? ["kind": "crash", "force": true] : ["kind": "crash"]
        case .exec(let argv): ["kind": "exec", "argv": .array(argv.map(JSON.string))]
        }
    }
}

/// What a run cut short by a crash (of the daemon, or of the worker running it) means for a job.
public enum Delivery: String, Sendable, Hashable, CaseIterable, JSONDecodable, JSONEncodable {
    /// The run counts for nothing: the job runs again (up to its attempts).
    case atLeastOnce
    /// The run may have done its work: the job fails with the reason and never runs again.
    case atMostOnce
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

    /// Parses the command-line form of a job: `cpu:1.5`, `prime:97`, `sleep:250`, `fail` or
    /// `crash` (exec jobs come from `--exec -- CMD ARGS...`).
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
        case "crash":
            guard argument == nil else {
                throw JobSpecParseError(
                    text: text, reason: "crash takes no argument; --force allows it outside the processes model")
            }
            self = .crash(forced: false)
        default:
            throw JobSpecParseError(
                text: text,
                reason:
                    "unknown job kind '\(name)'; use cpu:SIZE, prime:N, sleep:MS, fail, crash, the preset 'primes', or --exec -- CMD"
            )
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
