public import Varlink

/// The errors of `io.concur.Supervisor`, as Varlink errors with their declared fields.
public enum SupervisorError {
    /// The interface the errors belong to.
    public static let interface = SupervisorInterface.name

    /// The queue holds `queued` jobs and cannot take the submitted ones without passing `limit`.
    public static func queueFull(limit: Int, queued: Int) -> VarlinkError {
        VarlinkError("\(interface).QueueFull", ["limit": limit.json, "queued": queued.json])
    }

    /// No pool has this name (or it was removed by a reload and only finishes what it holds);
    /// `pools` lists those that take work.
    public static func unknownPool(_ name: String, pools: [String], removed: Bool = false) -> VarlinkError {
        VarlinkError(
            "\(interface).UnknownPool",
            ["pool": .string(name), "pools": .array(pools.map(JSON.string)), "removed": .bool(removed)])
    }

    /// The daemon is shutting down and accepts no new jobs.
    public static let shuttingDown = VarlinkError("\(interface).ShuttingDown")

    /// A worker count outside `min...max` was asked for.
    public static func invalidWorkers(min: Int, max: Int) -> VarlinkError {
        VarlinkError("\(interface).InvalidWorkers", ["min": min.json, "max": max.json])
    }

    /// No job with this id exists (never submitted, or finished and pruned).
    public static func noSuchJob(_ id: UInt64) -> VarlinkError {
        VarlinkError("\(interface).NoSuchJob", ["id": id.json])
    }

    /// The job had already ended, in `state`: there is nothing to cancel.
    public static func jobFinished(_ id: UInt64, state: JobState) -> VarlinkError {
        VarlinkError("\(interface).JobFinished", ["id": id.json, "state": .string(state.rawValue)])
    }

    /// `exec` jobs are refused: the daemon's configuration does not allow them.
    public static let execDisabled = VarlinkError("\(interface).ExecDisabled")

    /// A `crash` job would take the daemon down under `model`; only the processes model
    /// survives it, unless the job is forced.
    public static func crashRefused(model: ConcurrencyModel) -> VarlinkError {
        VarlinkError("\(interface).CrashRefused", ["model": model.json])
    }

    /// The model cannot run in this daemon, or none of its workers could be started.
    public static func modelUnavailable(model: ConcurrencyModel, reason: String) -> VarlinkError {
        VarlinkError("\(interface).ModelUnavailable", ["model": model.json, "reason": .string(reason)])
    }

    /// Another switch, to `model`, was asked for before this one's model served.
    public static func switchSuperseded(by model: ConcurrencyModel) -> VarlinkError {
        VarlinkError("\(interface).SwitchSuperseded", ["model": model.json])
    }

    /// The configuration could not be read again or applied; `reason` says why. The running
    /// configuration stays.
    public static func invalidConfiguration(reason: String) -> VarlinkError {
        VarlinkError("\(interface).InvalidConfiguration", ["reason": .string(reason)])
    }

    /// The job journal could not record the jobs of a call; `reason` says what became of them.
    public static func journalUnavailable(reason: String) -> VarlinkError {
        VarlinkError("\(interface).JournalUnavailable", ["reason": .string(reason)])
    }

    /// The shared job store (PostgreSQL) cannot take jobs now; `reason` says why. `first` and
    /// `last`, when given, bound the ids that may or may not have been queued (the commit was
    /// sent and its answer lost): `concurctl jobs` shows which were.
    public static func storeUnavailable(reason: String, inDoubt: ClosedRange<Int64>? = nil) -> VarlinkError {
        var parameters: JSONObject = ["reason": .string(reason)]
        if let inDoubt {
            parameters["first"] = .int(inDoubt.lowerBound)
            parameters["last"] = .int(inDoubt.upperBound)
        }
        return VarlinkError("\(interface).StoreUnavailable", parameters)
    }

    /// The call needs a node of a shared queue (`--store`), and this daemon keeps its own.
    public static let notShared = VarlinkError("\(interface).NotShared")

    /// The last message was not a Varlink call (not JSON, nested too deep, over the size limit);
    /// the connection is closed after this reply.
    public static func invalidMessage(reason: String) -> VarlinkError {
        VarlinkError("\(interface).InvalidMessage", ["reason": .string(reason)])
    }

    /// A parameter has the right type but a value that is not allowed; `reason` says which are.
    public static func invalidValue(parameter: String, reason: String) -> VarlinkError {
        VarlinkError("\(interface).InvalidValue", ["parameter": .string(parameter), "reason": .string(reason)])
    }
}
