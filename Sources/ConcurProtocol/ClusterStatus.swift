public import Varlink

/// One pool of a node, as the node last reported it in its heartbeat.
public struct NodePool: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// The pool's name.
    public var pool: String
    /// Its concurrency model.
    public var model: ConcurrencyModel
    /// Workers asked for.
    public var workers: Int
    /// Workers running a job.
    public var busy: Int
    /// Whether its workers are paused.
    public var paused: Bool

    /// A pool with these values.
    public init(pool: String, model: ConcurrencyModel, workers: Int, busy: Int, paused: Bool = false) {
        self.pool = pool
        self.model = model
        self.workers = workers
        self.busy = busy
        self.paused = paused
    }

    /// The pool as a pool's status shows it.
    public init(_ status: PoolStatus) {
        self.init(
            pool: status.pool, model: status.model, workers: status.workers.target, busy: status.workers.busy,
            paused: status.paused)
    }

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        pool = try reader.required("pool")
        model = try reader.required("model")
        workers = try reader.required("workers")
        busy = try reader.required("busy")
        paused = try reader.optional("paused") ?? false
        guard workers >= 0 else { throw VarlinkError.invalidParameter("\(path).workers") }
        guard busy >= 0 else { throw VarlinkError.invalidParameter("\(path).busy") }
    }

    /// The value as JSON.
    public var json: JSON {
        ["pool": .string(pool), "model": model.json, "workers": workers.json, "busy": busy.json, "paused": .bool(paused)]
    }
}

/// Where a node of a shared queue is in its life, as the queue records it.
public enum NodeState: String, Sendable, Hashable, CaseIterable, JSONDecodable, JSONEncodable {
    /// It heartbeats: it holds its lease.
    case running
    /// Its lease lapsed and no other node has noticed yet: its jobs are rescued soon.
    case silent
    /// It stopped after a drain; it holds nothing.
    case stopped
    /// Another node found it silent past its lease and put its jobs back.
    case lost
}

/// One node of a shared queue, as the queue records it.
public struct ClusterNode: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// Its name.
    public var name: String
    /// The host it runs on.
    public var host: String
    /// Its process id there.
    public var pid: Int
    /// Its concurd's version.
    public var version: String
    /// Running, silent, stopped or lost.
    public var state: NodeState
    /// When it started (Unix seconds).
    public var startedAt: Double
    /// Seconds since its last heartbeat, by the database's clock.
    public var heartbeatAge: Double
    /// Seconds its lease lasts past a heartbeat.
    public var leaseSeconds: Double
    /// Its pools, as of its last heartbeat (this node's own: as of the call).
    public var pools: [NodePool]
    /// Jobs its pools ended done since it started.
    public var done: Int
    /// Jobs its pools ended failed since it started.
    public var failed: Int
    /// Jobs its pools ended cancelled since it started.
    public var cancelled: Int
    /// Why some of what the queue holds for this node could not be read, if it could not.
    public var problem: String?

    /// A node with these values.
    public init(
        name: String, host: String, pid: Int, version: String, state: NodeState, startedAt: Double, heartbeatAge: Double,
        leaseSeconds: Double, pools: [NodePool] = [], done: Int = 0, failed: Int = 0, cancelled: Int = 0,
        problem: String? = nil
    ) {
        self.name = name
        self.host = host
        self.pid = pid
        self.version = version
        self.state = state
        self.startedAt = startedAt
        self.heartbeatAge = heartbeatAge
        self.leaseSeconds = leaseSeconds
        self.pools = pools
        self.done = done
        self.failed = failed
        self.cancelled = cancelled
        self.problem = problem
    }

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        name = try reader.required("name")
        host = try reader.required("host")
        pid = try reader.required("pid")
        version = try reader.required("version")
        state = try reader.required("state")
        startedAt = try reader.required("startedAt")
        heartbeatAge = try reader.required("heartbeatAge")
        leaseSeconds = try reader.required("leaseSeconds")
        pools = try reader.required("pools")
        done = try reader.required("done")
        failed = try reader.required("failed")
        cancelled = try reader.required("cancelled")
        problem = try reader.optional("problem")
    }

    /// The value as JSON.
    public var json: JSON {
        var object: JSONObject = [
            "name": .string(name), "host": .string(host), "pid": pid.json, "version": .string(version), "state": state.json,
            "startedAt": startedAt.json, "heartbeatAge": heartbeatAge.json, "leaseSeconds": leaseSeconds.json,
            "pools": pools.json, "done": done.json, "failed": failed.json, "cancelled": cancelled.json,
        ]
        object.set("problem", problem)
        return .object(object)
    }
}

/// The jobs of one pool in a shared queue, counted by state.
public struct ClusterQueue: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// The pool.
    public var pool: String
    /// Jobs waiting for a node to claim them.
    public var queued = 0
    /// Jobs waiting for their start time.
    public var scheduled = 0
    /// Jobs a node claimed and has not started yet.
    public var claimed = 0
    /// Jobs running on some node.
    public var running = 0
    /// Jobs that ended done.
    public var done = 0
    /// Jobs that ended failed.
    public var failed = 0
    /// Jobs that ended cancelled.
    public var cancelled = 0

    /// An empty count for `pool`.
    public init(pool: String) { self.pool = pool }

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        pool = try reader.required("pool")
        queued = try reader.required("queued")
        scheduled = try reader.required("scheduled")
        claimed = try reader.required("claimed")
        running = try reader.required("running")
        done = try reader.required("done")
        failed = try reader.required("failed")
        cancelled = try reader.required("cancelled")
    }

    /// The value as JSON.
    public var json: JSON {
        [
            "pool": .string(pool), "queued": queued.json, "scheduled": scheduled.json, "claimed": claimed.json,
            "running": running.json, "done": done.json, "failed": failed.json, "cancelled": cancelled.json,
        ]
    }
}

/// The `ClusterStatus` reply: every node a shared queue has seen, and its jobs by pool.
public struct ClusterStatus: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// The node that answered.
    public var answeredBy: String
    /// The nodes, by name.
    public var nodes: [ClusterNode]
    /// The queue's jobs, a row per pool, by name.
    public var queue: [ClusterQueue]

    /// A status with these values.
    public init(answeredBy: String, nodes: [ClusterNode], queue: [ClusterQueue]) {
        self.answeredBy = answeredBy
        self.nodes = nodes
        self.queue = queue
    }

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        answeredBy = try reader.required("answeredBy")
        nodes = try reader.required("nodes")
        queue = try reader.required("queue")
    }

    /// The value as JSON.
    public var json: JSON { .object(object) }

    /// The value as the fields of a reply.
    public var object: JSONObject { ["answeredBy": .string(answeredBy), "nodes": nodes.json, "queue": queue.json] }
}

/// What a node writes of itself into the shared queue with each heartbeat: its pools, and the
/// jobs they ended since it started.
public struct NodeReport: Sendable, Hashable {
    /// Its pools, as of the report.
    public var pools: [NodePool]
    /// Jobs ended done.
    public var done: Int
    /// Jobs ended failed.
    public var failed: Int
    /// Jobs ended cancelled.
    public var cancelled: Int

    /// A report with these values.
    public init(pools: [NodePool], done: Int = 0, failed: Int = 0, cancelled: Int = 0) {
        self.pools = pools
        self.done = done
        self.failed = failed
        self.cancelled = cancelled
    }

    /// The report of a daemon whose pools have these statuses (removed pools left out of the
    /// pools, their jobs still counted).
    public init(_ statuses: [PoolStatus]) {
        let totals = statuses.map(\.totals).reduce(JobTotals(), +)
        self.init(
            pools: statuses.filter { !$0.removed }.map(NodePool.init), done: totals.done, failed: totals.failed,
            cancelled: totals.cancelled)
    }
}
