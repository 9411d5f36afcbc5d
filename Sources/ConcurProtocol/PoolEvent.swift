public import Varlink

/// What kind of thing happened to the pool.
public enum PoolEventKind: String, Sendable, Hashable, CaseIterable, JSONDecodable, JSONEncodable {
    /// A model switch was asked for.
    case switchRequested
    /// The new model of a switch serves.
    case switchServing
    /// The number of workers changed.
    case resized
    /// A worker died unexpectedly (a replacement follows unless its model stopped restarting).
    case workerDied
    /// Workers stopped taking jobs.
    case paused
    /// Workers take jobs again.
    case resumed
    /// Shutdown began: intake closed.
    case draining
    /// The job journal stopped recording (workers start no new jobs), or records again.
    case journal
}

/// One thing that happened to the pool, as `Stats` lists it and `WatchJobs` streams it.
public struct PoolEvent: Sendable, Hashable, JSONDecodable, JSONEncodable {
    /// When, in Unix seconds.
    public var time: Double
    /// What kind of thing.
    public var kind: PoolEventKind
    /// A sentence for people.
    public var message: String
    /// The worker concerned, if one is.
    public var worker: Int?
    /// The model concerned, if one is (the new model of a switch).
    public var model: ConcurrencyModel?

    /// An event with the given fields.
    public init(time: Double, kind: PoolEventKind, message: String, worker: Int? = nil, model: ConcurrencyModel? = nil) {
        self.time = time
        self.kind = kind
        self.message = message
        self.worker = worker
        self.model = model
    }

    /// Reads the value from JSON; an error names the parameter by `path`.
    public init(json: JSON, path: String) throws(VarlinkError) {
        var reader = try ParameterReader(json: json, path: path)
        time = try reader.required("time")
        kind = try reader.required("kind")
        message = try reader.required("message")
        worker = try reader.optional("worker")
        model = try reader.optional("model")
    }

    /// The value as JSON.
    public var json: JSON {
        var object: JSONObject = ["time": time.json, "kind": kind.json, "message": .string(message)]
        object.set("worker", worker)
        object.set("model", model)
        return .object(object)
    }
}
