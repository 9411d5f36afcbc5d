package import ConcurProtocol

/// Why a submit was refused.
package enum SubmitError: Error, Sendable, Equatable {
    /// The daemon is shutting down.
    case shuttingDown
    /// The queue cannot take the batch.
    case queueFull(limit: Int, queued: Int)
    /// The batch holds an `exec` job and the configuration does not allow them.
    case execDisabled
    /// The batch holds an unforced `crash` job and the model would not survive it.
    case crashRefused(model: ConcurrencyModel)
    /// The journal could not record the jobs; the reason says why and what happened to them.
    case notDurable(reason: String)
    /// The job at `index` of the batch has a `startAt` in the past or further ahead than a
    /// year; the reason says which.
    case badStartTime(index: Int, reason: String)
    /// The job at `index` runs after a job that was never submitted (or is in the same batch).
    case unknownDependency(index: Int, JobID)
    /// The job at `index` runs after a job whose record is no longer kept: how it ended is
    /// not known.
    case forgottenDependency(index: Int, JobID)
    /// The job store cannot take jobs now (a shared store whose server is away): the reason
    /// says why; `inDoubt` names the ids whose fate is unknown (the commit was sent, its answer
    /// lost), if any.
    case storeUnavailable(reason: String, inDoubt: Range<JobID>?)
    /// The job at `index` asks for something this job store does not keep (`field` names it).
    case notKept(index: Int, field: String, reason: String)
}

/// Why a resize was refused.
package enum ResizeError: Error, Sendable, Equatable {
    /// The daemon is shutting down.
    case shuttingDown
    /// The count is outside `min...max`.
    case invalidWorkers(min: Int, max: Int)
}

/// Why a model switch was refused.
package enum SwitchError: Error, Sendable, Equatable {
    /// The daemon is shutting down.
    case shuttingDown
    /// This build or this machine cannot run the model; `reason` says why.
    case unavailable(model: ConcurrencyModel, reason: String)
}

/// A job id that the pool does not know (never accepted, or finished and pruned).
package struct NoSuchJobError: Error, Sendable, Equatable {
    /// The unknown id.
    package let id: JobID

    /// The error for `id`.
    package init(id: JobID) { self.id = id }
}
