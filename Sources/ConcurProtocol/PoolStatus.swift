public import Varlink

/// Worker counts of the pool.
public struct WorkerCounts: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// The number of workers asked for.
    public var target: Int
    /// Workers alive, retiring ones included.
    public var live: Int
    /// Workers running a job.
    public var busy: Int
    /// Workers waiting for a job.
    public var idle: Int
    /// Workers that will exit after their current job.
    public var retiring: Int

    /// Counts with the given values.
    public init(target: Int, live: Int, busy: Int, idle: Int, retiring: Int) {
        self.target = target
        self.live = live
        self.busy = busy
        self.idle = idle
        self.retiring = retiring
    }

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        target = try reader.required("target")
        live = try reader.required("live")
        busy = try reader.required("busy")
        idle = try reader.required("idle")
        retiring = try reader.required("retiring")
    }

    /// The value as JSON.
    public var json: JSON {
        ["target": target.json, "live": live.json, "busy": busy.json, "idle": idle.json, "retiring": retiring.json]
    }
}

/// Jobs counted by outcome since the daemon started.
public struct JobTotals: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// Jobs accepted.
    public var submitted: Int
    /// Jobs that ran to the end.
    public var done: Int
    /// Jobs that failed.
    public var failed: Int
    /// Jobs cancelled.
    public var cancelled: Int
    /// Attempts beyond the first (a job put back and run again).
    public var retried: Int

    /// Totals with the given values.
    public init(submitted: Int = 0, done: Int = 0, failed: Int = 0, cancelled: Int = 0, retried: Int = 0) {
        self.submitted = submitted
        self.done = done
        self.failed = failed
        self.cancelled = cancelled
        self.retried = retried
    }

    /// Jobs that reached a final state.
    public var finished: Int { done + failed + cancelled }

    /// The totals of two pools together.
    public static func + (left: JobTotals, right: JobTotals) -> JobTotals {
        JobTotals(
            submitted: left.submitted + right.submitted, done: left.done + right.done, failed: left.failed + right.failed,
            cancelled: left.cancelled + right.cancelled, retried: left.retried + right.retried)
    }

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        submitted = try reader.required("submitted")
        done = try reader.required("done")
        failed = try reader.required("failed")
        cancelled = try reader.required("cancelled")
        retried = try reader.required("retried")
    }

    /// The value as JSON.
    public var json: JSON {
        [
            "submitted": submitted.json, "done": done.json, "failed": failed.json, "cancelled": cancelled.json,
            "retried": retried.json,
        ]
    }
}

/// The daemon at a glance, as one pool sees it: the `Status` reply, and each entry of its
/// `pools`.
public struct PoolStatus: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// The pool's name (`default` from a daemon older than named pools).
    public var pool = "default"
    /// Whether a reload removed the pool (or the configuration no longer names it): it takes no
    /// jobs and no workers run, and the unfinished jobs it holds are kept until it is added back.
    public var removed = false
    /// The node's name on a node of a shared queue (nil otherwise): ``totals`` then counts as
    /// submitted the jobs this node claimed from the queue.
    public var node: String?
    /// The OS threads the tasks model's workers take turns on, when the pool has task workers
    /// (nil otherwise): how many task workers share how many threads.
    public var taskThreads: Int?
    /// Run-time percentiles over the last 10 seconds: in the `pools` of `Stats` only.
    public var recentRun: Percentiles?
    /// The daemon's version.
    public var version: String
    /// The daemon's process id.
    public var pid: Int
    /// Seconds since the daemon started.
    public var uptimeSeconds: Double
    /// The pool's concurrency model.
    public var model: ConcurrencyModel
    /// Serving, draining or stopping.
    public var phase: DaemonPhase
    /// Worker counts.
    public var workers: WorkerCounts
    /// Jobs waiting in the queue (and waiting out a retry's delay).
    public var queued: Int
    /// Jobs waiting for their start time.
    public var scheduled: Int
    /// Jobs waiting for the jobs they run after.
    public var waiting: Int
    /// Jobs running now.
    public var running: Int
    /// The queue's limit; submits beyond it get `QueueFull`.
    public var maxQueue: Int
    /// Jobs counted by outcome.
    public var totals: JobTotals
    /// Problems an operator should know about (a model that keeps dying at start).
    public var warnings: [String]
    /// Model switches since start.
    public var switches: Int
    /// Workers of another model still finishing their job after a switch.
    public var handingOver: Int
    /// Whether workers are paused: they take no new jobs (running ones finish), the queue grows.
    public var paused: Bool

    /// A status with the given fields.
    public init(
        version: String, pid: Int, uptimeSeconds: Double, model: ConcurrencyModel, phase: DaemonPhase,
        workers: WorkerCounts, queued: Int, running: Int, maxQueue: Int, totals: JobTotals, warnings: [String] = [],
        switches: Int = 0, handingOver: Int = 0, paused: Bool = false, scheduled: Int = 0, waiting: Int = 0
    ) {
        self.scheduled = scheduled
        self.waiting = waiting
        self.version = version
        self.pid = pid
        self.uptimeSeconds = uptimeSeconds
        self.model = model
        self.phase = phase
        self.workers = workers
        self.queued = queued
        self.running = running
        self.maxQueue = maxQueue
        self.totals = totals
        self.warnings = warnings
        self.switches = switches
        self.handingOver = handingOver
        self.paused = paused
    }

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        version = try reader.required("version")
        pid = try reader.required("pid")
        uptimeSeconds = try reader.required("uptimeSeconds")
        model = try reader.required("model")
        phase = try reader.required("phase")
        workers = try reader.required("workers")
        queued = try reader.required("queued")
        running = try reader.required("running")
        maxQueue = try reader.required("maxQueue")
        totals = try reader.required("totals")
        warnings = try reader.optional("warnings") ?? []
        switches = try reader.optional("switches") ?? 0
        handingOver = try reader.optional("handingOver") ?? 0
        paused = try reader.optional("paused") ?? false
        scheduled = try reader.optional("scheduled") ?? 0
        waiting = try reader.optional("waiting") ?? 0
        pool = try reader.optional("pool") ?? "default"
        removed = try reader.optional("removed") ?? false
        recentRun = try reader.optional("recentRun")
        node = try reader.optional("node")
        taskThreads = try reader.optional("taskThreads")
        if let taskThreads, taskThreads < 1 { throw VarlinkError.invalidParameter(reader.name("taskThreads")) }
    }

    /// The value as JSON.
    public var json: JSON {
        var object: JSONObject = [
            "version": .string(version), "pid": pid.json, "uptimeSeconds": uptimeSeconds.json, "model": model.json,
            "phase": phase.json, "workers": workers.json, "queued": queued.json, "running": running.json,
            "maxQueue": maxQueue.json, "totals": totals.json, "warnings": warnings.json, "switches": switches.json,
            "handingOver": handingOver.json, "paused": .bool(paused), "scheduled": scheduled.json, "waiting": waiting.json,
            "pool": .string(pool), "removed": .bool(removed),
        ]
        object.set("recentRun", recentRun)
        object.set("node", node)
        object.set("taskThreads", taskThreads)
        return .object(object)
    }
}
