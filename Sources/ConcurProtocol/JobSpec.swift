public import Varlink

/// A job to run: what it does, how long it may take, how it is delivered, when and after what
/// it may start, how urgent it is and, for a command, where and with what environment it runs
/// (`JobSpec` in the interface).
public struct JobSpec: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// What the job does.
    public var kind: JobKind
    /// Seconds the job may run before it is stopped and failed; nil: the daemon's default.
    public var timeout: Double?
    /// The options most jobs leave at their defaults, behind one reference (nil: all default):
    /// a spec is copied several times on the way of every job, and a plain one must stay as
    /// small and as cheap to copy as a kind and a time limit.
    private var options: JobOptions?

    /// Where an exec job's command runs and with what environment; nil: the daemon's own.
    public var command: CommandContext? {
        get { options?.values.command }
        set { change { $0.command = newValue } }
    }
    /// What a run cut short by a crash means for the job.
    public var delivery: Delivery {
        get { options?.values.delivery ?? .atLeastOnce }
        set { change { $0.delivery = newValue } }
    }
    /// How often a run that fails on its own is followed by another; nil: never.
    public var retry: RetryPolicy? {
        get { options?.values.retry }
        set { change { $0.retry = newValue } }
    }
    /// Its priority, earliest start and the jobs it runs after.
    public var placement: JobPlacement {
        get { options?.values.placement ?? JobPlacement() }
        set { change { $0.placement = newValue } }
    }
    /// How urgent the job is among its pool's queued jobs (``JobLimits/priority``; higher runs first).
    public var priority: Int { options?.values.placement.priority ?? 0 }
    /// The Unix time (seconds) before which the job does not start; nil: as soon as a worker is free.
    public var startAt: Double? { options?.values.placement.startAt }
    /// The jobs that must all end `done` before this one starts, by id; if one fails or is
    /// cancelled, this one is cancelled.
    public var after: [UInt64] { options?.values.placement.after ?? [] }

    private mutating func change(_ body: (inout JobOptions.Values) -> Void) {
        var values = options?.values ?? JobOptions.Values()
        body(&values)
        options = JobOptions.make(values)
    }

    /// A job of `kind`, with an optional time limit, delivered at least once.
    public init(
        _ kind: JobKind, timeout: Double? = nil, command: CommandContext? = nil, delivery: Delivery = .atLeastOnce,
        retry: RetryPolicy? = nil, placement: JobPlacement = JobPlacement()
    ) {
        self.kind = kind
        self.timeout = timeout
        self.options = JobOptions.make(
            JobOptions.Values(command: command, delivery: delivery, retry: retry, placement: placement))
    }

    /// Reads a `JobSpec` (`{"kind": "prime", "n": 97, "timeout": 5}`), checking every range.
    ///
    /// See ``JobPlacement/init(reading:)`` for what is checked of its start time.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        kind = try JobKind(reading: &reader)
        timeout = try reader.optional("timeout")
        if let timeout, !JobLimits.timeout.contains(timeout) {
            throw SupervisorError.invalidValue(
                parameter: reader.name("timeout"), reason: "timeout must be between 0.001 and 86400 seconds")
        }
        var values = JobOptions.Values()
        values.command = try CommandContext(reading: &reader, isExec: kind.isExec)
        values.delivery = try reader.optional("delivery") ?? .atLeastOnce
        values.retry = try RetryPolicy(reading: &reader)
        values.placement = try JobPlacement(reading: &reader)
        options = JobOptions.make(values)
        try reader.finish()
    }

    /// The job as a `JobSpec` object.
    public var json: JSON {
        var object = kind.fields
        object.set("timeout", timeout)
        guard let values = options?.values else { return .object(object) }
        if let command = values.command { command.write(into: &object) }
        if values.delivery != .atLeastOnce { object["delivery"] = values.delivery.json }
        values.retry?.write(into: &object)
        values.placement.write(into: &object)
        return .object(object)
    }
}

/// A job's options that are rarely set, immutable and shared by the copies of its spec.
final class JobOptions: Sendable, Hashable {
    /// The options' values, every one at its default in a fresh value.
    struct Values: Sendable, Hashable {
        var command: CommandContext?
        var delivery = Delivery.atLeastOnce
        var retry: RetryPolicy?
        var placement = JobPlacement()

        /// Whether every option is at its default.
        var isDefault: Bool {
            command == nil && delivery == .atLeastOnce && retry == nil && placement.isDefault
        }
    }

    let values: Values

    private init(_ values: Values) {
        self.values = values
    }

    /// The options, or nil when every one is its default.
    static func make(_ values: Values) -> JobOptions? {
        var values = values
        values.command = values.command.flatMap { $0.isDefault ? nil : $0 }
        return values.isDefault ? nil : JobOptions(values)
    }

    static func == (left: JobOptions, right: JobOptions) -> Bool { left.values == right.values }

    func hash(into hasher: inout Hasher) { hasher.combine(values) }
}
