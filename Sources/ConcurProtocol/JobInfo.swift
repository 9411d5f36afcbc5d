public import Varlink

/// What a finished job produced.
public struct JobResult: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// One line for people: `prime`, `composite (divisible by 3)`, `checksum 0x…`, `slept 100 ms`.
    public var summary: String
    /// For `prime` jobs: whether n is prime.
    public var prime: Bool?
    /// For composite `prime` jobs: the smallest factor found.
    public var factor: UInt64?
    /// For `cpu` jobs: the checksum of the work, identical under every model.
    public var checksum: UInt64?
    /// For `exec` jobs: the exit code, if the command exited.
    public var exitCode: Int?
    /// For `exec` jobs: the signal that ended the command, if one did.
    public var signal: Int?
    /// For `exec` jobs: the last lines of the command's output (stdout and stderr together).
    public var output: String?
    /// For `exec` jobs: how long the command ran, in seconds.
    public var seconds: Double?

    /// A result with the given fields.
    public init(
        summary: String, prime: Bool? = nil, factor: UInt64? = nil, checksum: UInt64? = nil, exitCode: Int? = nil,
        signal: Int? = nil, output: String? = nil, seconds: Double? = nil
    ) {
        self.summary = summary
        self.prime = prime
        self.factor = factor
        self.checksum = checksum
        self.exitCode = exitCode
        self.signal = signal
        self.output = output
        self.seconds = seconds
    }

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        summary = try reader.required("summary")
        prime = try reader.optional("prime")
        factor = try reader.optional("factor")
        checksum = try reader.optional("checksum", as: Int64.self).map { UInt64(bitPattern: $0) }
        exitCode = try reader.optional("exitCode")
        signal = try reader.optional("signal")
        output = try reader.optional("output")
        seconds = try reader.optional("seconds")
    }

    /// The value as JSON.
    public var json: JSON {
        var object: JSONObject = ["summary": .string(summary)]
        object.set("prime", prime)
        object.set("factor", factor)
        object.set("checksum", checksum.map { Int64(bitPattern: $0) })
        object.set("exitCode", exitCode)
        object.set("signal", signal)
        object.set("output", output)
        object.set("seconds", seconds)
        return .object(object)
    }
}

/// A job as the control interface shows it (`Job` in the interface definition).
public struct JobInfo: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// The job's id, unique for the daemon's lifetime.
    public var id: UInt64
    /// What the job does and its time limit.
    public var spec: JobSpec
    /// Its state.
    public var state: JobState
    /// How many times a worker started it.
    public var attempts: Int
    /// When it was accepted (Unix time, seconds).
    public var submittedAt: Double
    /// When its last attempt started.
    public var startedAt: Double?
    /// When it reached its final state.
    public var finishedAt: Double?
    /// The worker that ran (or runs) it.
    public var worker: Int?
    /// The model of that worker.
    public var model: ConcurrencyModel?
    /// What it produced, once done.
    public var result: JobResult?
    /// Why it failed or was cancelled.
    public var error: String?
    /// The runs that failed and were retried, oldest first (only for a job with retries).
    public var history: [JobAttempt]
    /// When its next run may start (Unix seconds), while it waits out a retry's delay.
    public var retryAt: Double?
    /// The jobs it still waits for (state `waiting`), by id.
    public var waitingFor: [UInt64] = []
    /// The pool it was submitted to.
    public var pool = "default"
    /// In a shared queue: the node that holds or ran it (nil: none yet, or a queue of one
    /// daemon's own).
    public var node: String?

    /// A job record with the given fields.
    public init(
        id: UInt64, spec: JobSpec, state: JobState, attempts: Int, submittedAt: Double, startedAt: Double? = nil,
        finishedAt: Double? = nil, worker: Int? = nil, model: ConcurrencyModel? = nil, result: JobResult? = nil,
        error: String? = nil, history: [JobAttempt] = [], retryAt: Double? = nil
    ) {
        self.history = history
        self.retryAt = retryAt
        self.id = id
        self.spec = spec
        self.state = state
        self.attempts = attempts
        self.submittedAt = submittedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.worker = worker
        self.model = model
        self.result = result
        self.error = error
    }

    /// What the job does.
    public var kind: JobKind { spec.kind }

    /// Seconds from submission to start, once started.
    public var waitSeconds: Double? { startedAt.map { $0 - submittedAt } }

    /// Seconds from start to finish, once finished after starting.
    public var runSeconds: Double? {
        guard let startedAt, let finishedAt else { return nil }
        return finishedAt - startedAt
    }

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        id = try reader.required("id")
        spec = try reader.required("spec")
        state = try reader.required("state")
        attempts = try reader.required("attempts")
        submittedAt = try reader.required("submittedAt")
        startedAt = try reader.optional("startedAt")
        finishedAt = try reader.optional("finishedAt")
        worker = try reader.optional("worker")
        model = try reader.optional("model")
        result = try reader.optional("result")
        error = try reader.optional("error")
        history = try reader.optional("history") ?? []
        retryAt = try reader.optional("retryAt")
        waitingFor = try reader.optional("waitingFor") ?? []
        pool = try reader.optional("pool") ?? "default"
        node = try reader.optional("node")
    }

    /// The value as JSON.
    public var json: JSON {
        var object: JSONObject = [
            "id": id.json, "spec": spec.json, "label": .string(spec.kind.label), "state": state.json,
            "attempts": attempts.json, "submittedAt": submittedAt.json, "pool": .string(pool),
        ]
        object.set("startedAt", startedAt)
        object.set("finishedAt", finishedAt)
        object.set("worker", worker)
        object.set("model", model)
        object.set("result", result)
        object.set("error", error)
        if !history.isEmpty { object["history"] = .array(history.map(\.json)) }
        object.set("retryAt", retryAt)
        if !waitingFor.isEmpty { object["waitingFor"] = .array(waitingFor.map(\.json)) }
        object.set("node", node)
        return .object(object)
    }
}
