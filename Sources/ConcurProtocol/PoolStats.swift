public import Varlink

/// Percentiles of one latency, in seconds.
public struct Percentiles: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// Samples recorded.
    public var count: Int
    /// Median.
    public var p50: Double
    /// 90th percentile.
    public var p90: Double
    /// 99th percentile.
    public var p99: Double
    /// Largest sample.
    public var max: Double
    /// The samples added up (what a Prometheus summary's `_sum` is); nil from a daemon older
    /// than it.
    public var sum: Double?

    /// Percentiles with the given values.
    public init(count: Int, p50: Double, p90: Double, p99: Double, max: Double, sum: Double? = nil) {
        self.count = count
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.max = max
        self.sum = sum
    }

    /// No samples yet.
    public static let empty = Percentiles(count: 0, p50: 0, p90: 0, p99: 0, max: 0, sum: 0)

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        count = try reader.required("count")
        p50 = try reader.required("p50")
        p90 = try reader.required("p90")
        p99 = try reader.required("p99")
        max = try reader.required("max")
        sum = try reader.optional("sum")
        if let sum, !(sum.isFinite && sum >= 0) { throw VarlinkError.invalidParameter(reader.name("sum")) }
    }

    /// The value as JSON.
    public var json: JSON {
        var object: JSONObject = ["count": count.json, "p50": p50.json, "p90": p90.json, "p99": p99.json, "max": max.json]
        object.set("sum", sum)
        return .object(object)
    }
}

/// The three latencies of a job: waiting in the queue, running, and both together.
public struct LatencySummary: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// From submission to start.
    public var queueWait: Percentiles
    /// From start to finish.
    public var run: Percentiles
    /// From submission to finish.
    public var endToEnd: Percentiles

    /// A summary with the given percentiles.
    public init(queueWait: Percentiles, run: Percentiles, endToEnd: Percentiles) {
        self.queueWait = queueWait
        self.run = run
        self.endToEnd = endToEnd
    }

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        queueWait = try reader.required("queueWait")
        run = try reader.required("run")
        endToEnd = try reader.required("endToEnd")
    }

    /// The value as JSON.
    public var json: JSON { ["queueWait": queueWait.json, "run": run.json, "endToEnd": endToEnd.json] }
}

/// Jobs finished per second over the last 1, 10 and 60 seconds.
public struct Throughput: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// Over the last second.
    public var last1s: Double
    /// Over the last 10 seconds.
    public var last10s: Double
    /// Over the last 60 seconds.
    public var last60s: Double
    /// Jobs finished per second in each second of the last minute (as sampled), oldest first.
    public var history: [Double]

    /// Rates with the given values.
    public init(last1s: Double, last10s: Double, last60s: Double, history: [Double] = []) {
        self.last1s = last1s
        self.last10s = last10s
        self.last60s = last60s
        self.history = history
    }

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        last1s = try reader.required("last1s")
        last10s = try reader.required("last10s")
        last60s = try reader.required("last60s")
        history = try reader.optional("history") ?? []
    }

    /// The value as JSON.
    public var json: JSON {
        ["last1s": last1s.json, "last10s": last10s.json, "last60s": last60s.json, "history": history.json]
    }
}

/// One worker of the pool.
public struct WorkerInfo: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// The worker's id, unique for the daemon's lifetime.
    public var id: Int
    /// The model it belongs to.
    public var model: ConcurrencyModel
    /// What it is doing.
    public var state: WorkerState
    /// Its kernel thread id (threads model).
    public var thread: Int?
    /// Its process id (processes model).
    public var pid: Int?
    /// The job it runs.
    public var job: UInt64?
    /// For how long it has been running that job, in seconds.
    public var jobSeconds: Double?
    /// Jobs it has finished.
    public var jobsDone: Int
    /// The share of its life spent running jobs (0 to 1).
    public var busyFraction: Double
    /// The share of the last 10 s (of its life, if shorter) spent running jobs (0 to 1): what
    /// `top` shows. Nil from a daemon older than it.
    public var recentBusyFraction: Double?
    /// Jobs handed to it and not finished: the running one and those prefetched behind it.
    public var held: Int
    /// A child process's resident memory, in bytes.
    public var rssBytes: Int?
    /// Seconds from its creation until it served (a thread started, a child said hello).
    public var startupSeconds: Double?
    /// Its place among the pool's workers (1 up to the target), which a replacement takes over:
    /// what per-worker series are labelled by. Nil from a daemon older than places.
    public var slot: Int?

    /// A worker row with the given fields.
    public init(
        id: Int, model: ConcurrencyModel, state: WorkerState, thread: Int? = nil, pid: Int? = nil, job: UInt64? = nil,
        jobSeconds: Double? = nil, jobsDone: Int, busyFraction: Double, recentBusyFraction: Double? = nil, held: Int = 0,
        rssBytes: Int? = nil, startupSeconds: Double? = nil, slot: Int? = nil
    ) {
        self.recentBusyFraction = recentBusyFraction
        self.slot = slot
        self.id = id
        self.model = model
        self.state = state
        self.thread = thread
        self.pid = pid
        self.job = job
        self.jobSeconds = jobSeconds
        self.jobsDone = jobsDone
        self.busyFraction = busyFraction
        self.held = held
        self.rssBytes = rssBytes
        self.startupSeconds = startupSeconds
    }

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        id = try reader.required("id")
        model = try reader.required("model")
        state = try reader.required("state")
        thread = try reader.optional("thread")
        pid = try reader.optional("pid")
        job = try reader.optional("job")
        jobSeconds = try reader.optional("jobSeconds")
        jobsDone = try reader.required("jobsDone")
        busyFraction = try reader.required("busyFraction")
        recentBusyFraction = try reader.optional("recentBusyFraction")
        for (name, value) in [("busyFraction", busyFraction), ("recentBusyFraction", recentBusyFraction ?? 0)]
        where !(0...1).contains(value) {
            throw VarlinkError.invalidParameter(reader.name(name))
        }
        held = try reader.optional("held") ?? 0
        rssBytes = try reader.optional("rssBytes")
        startupSeconds = try reader.optional("startupSeconds")
        slot = try reader.optional("slot")
        if let slot, slot < 1 { throw VarlinkError.invalidParameter(reader.name("slot")) }
    }

    /// The value as JSON.
    public var json: JSON {
        var object: JSONObject = ["id": id.json, "model": model.json, "state": state.json]
        object.set("thread", thread)
        object.set("pid", pid)
        object.set("job", job)
        object.set("jobSeconds", jobSeconds)
        object["jobsDone"] = jobsDone.json
        object["busyFraction"] = busyFraction.json
        object.set("recentBusyFraction", recentBusyFraction)
        object["held"] = held.json
        object.set("rssBytes", rssBytes)
        object.set("startupSeconds", startupSeconds)
        object.set("slot", slot)
        return .object(object)
    }
}

/// The daemon process's own resource use.
public struct ProcessUsage: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// User CPU time, seconds.
    public var cpuUserSeconds: Double
    /// System CPU time, seconds.
    public var cpuSystemSeconds: Double
    /// Resident memory, bytes.
    public var rssBytes: Int
    /// Threads in the process.
    public var threads: Int
    /// CPU used over the last second by the daemon and its child workers together, in percent
    /// of one core (200 is two cores busy).
    public var cpuPercent: Double

    /// Usage with the given values.
    public init(cpuUserSeconds: Double, cpuSystemSeconds: Double, rssBytes: Int, threads: Int, cpuPercent: Double = 0) {
        self.cpuUserSeconds = cpuUserSeconds
        self.cpuSystemSeconds = cpuSystemSeconds
        self.rssBytes = rssBytes
        self.threads = threads
        self.cpuPercent = cpuPercent
    }

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        cpuUserSeconds = try reader.required("cpuUserSeconds")
        cpuSystemSeconds = try reader.required("cpuSystemSeconds")
        rssBytes = try reader.required("rssBytes")
        threads = try reader.required("threads")
        cpuPercent = try reader.optional("cpuPercent") ?? 0
    }

    /// The value as JSON.
    public var json: JSON {
        [
            "cpuUserSeconds": cpuUserSeconds.json, "cpuSystemSeconds": cpuSystemSeconds.json,
            "rssBytes": rssBytes.json, "threads": threads.json, "cpuPercent": cpuPercent.json,
        ]
    }
}

/// The last model switch: when it was asked for and how long after that the new model served,
/// ran its first job, and the last worker of another model left (nil: not yet).
public struct ModelSwitch: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// The model switched from.
    public var from: ConcurrencyModel
    /// The model switched to.
    public var to: ConcurrencyModel
    /// Whether running jobs were interrupted and queued again.
    public var preempt: Bool
    /// When it was asked for, Unix seconds.
    public var requestedAt: Double
    /// Seconds until a worker of the new model served.
    public var servingAfter: Double?
    /// Seconds until a worker of the new model started a job.
    public var firstJobAfter: Double?
    /// Seconds until the last worker of another model left.
    public var oldRetiredAfter: Double?

    /// A switch record with the given fields.
    public init(
        from: ConcurrencyModel, to: ConcurrencyModel, preempt: Bool, requestedAt: Double, servingAfter: Double? = nil,
        firstJobAfter: Double? = nil, oldRetiredAfter: Double? = nil
    ) {
        self.from = from
        self.to = to
        self.preempt = preempt
        self.requestedAt = requestedAt
        self.servingAfter = servingAfter
        self.firstJobAfter = firstJobAfter
        self.oldRetiredAfter = oldRetiredAfter
    }

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        from = try reader.required("from")
        to = try reader.required("to")
        preempt = try reader.required("preempt")
        requestedAt = try reader.required("requestedAt")
        servingAfter = try reader.optional("servingAfter")
        firstJobAfter = try reader.optional("firstJobAfter")
        oldRetiredAfter = try reader.optional("oldRetiredAfter")
    }

    /// The value as JSON.
    public var json: JSON {
        var object: JSONObject = [
            "from": from.json, "to": to.json, "preempt": .bool(preempt), "requestedAt": requestedAt.json,
        ]
        object.set("servingAfter", servingAfter)
        object.set("firstJobAfter", firstJobAfter)
        object.set("oldRetiredAfter", oldRetiredAfter)
        return .object(object)
    }
}

/// Everything the daemon measures: the `Stats` reply.
public struct PoolStats: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// The same figures as `Status`.
    public var status: PoolStatus
    /// Jobs finished per second.
    public var throughput: Throughput
    /// Latency percentiles since start.
    public var latency: LatencySummary
    /// Latency percentiles over the last 10 seconds.
    public var recentLatency: LatencySummary
    /// One row per live worker.
    public var workers: [WorkerInfo]
    /// The daemon's CPU time and memory.
    public var process: ProcessUsage
    /// Resizes applied since start.
    public var resizes: Int
    /// Workers that died unexpectedly since start.
    public var workerDeaths: Int
    /// Workers started to replace dead ones.
    public var workerRestarts: Int
    /// The last model switch, if there was one.
    public var lastSwitch: ModelSwitch?
    /// The most recent events (switches, resizes, deaths, pauses), oldest first.
    public var events: [PoolEvent]
    /// Every pool at a glance, the default first (empty from a daemon older than named pools).
    public var pools: [PoolStatus] = []

    /// Statistics with the given parts.
    public init(
        status: PoolStatus, throughput: Throughput, latency: LatencySummary, recentLatency: LatencySummary? = nil,
        workers: [WorkerInfo], process: ProcessUsage, resizes: Int, workerDeaths: Int = 0, workerRestarts: Int = 0,
        lastSwitch: ModelSwitch? = nil, events: [PoolEvent] = []
    ) {
        self.status = status
        self.throughput = throughput
        self.latency = latency
        self.recentLatency = recentLatency ?? latency
        self.events = events
        self.workers = workers
        self.process = process
        self.resizes = resizes
        self.workerDeaths = workerDeaths
        self.workerRestarts = workerRestarts
        self.lastSwitch = lastSwitch
    }

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        status = try reader.required("status")
        throughput = try reader.required("throughput")
        latency = try reader.required("latency")
        recentLatency = try reader.optional("recentLatency") ?? latency
        workers = try reader.required("workers")
        process = try reader.required("process")
        resizes = try reader.required("resizes")
        workerDeaths = try reader.optional("workerDeaths") ?? 0
        workerRestarts = try reader.optional("workerRestarts") ?? 0
        lastSwitch = try reader.optional("lastSwitch")
        events = try reader.optional("events") ?? []
        pools = try reader.optional("pools") ?? []
    }

    /// The value as JSON.
    public var json: JSON {
        var object: JSONObject = [
            "status": status.json, "throughput": throughput.json, "latency": latency.json,
            "recentLatency": recentLatency.json, "events": events.json, "workers": workers.json, "process": process.json,
            "resizes": resizes.json,
            "workerDeaths": workerDeaths.json, "workerRestarts": workerRestarts.json, "pools": pools.json,
        ]
        object.set("lastSwitch", lastSwitch)
        return .object(object)
    }
}
