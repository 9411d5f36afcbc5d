package import ConcurProtocol

/// Everything the pool remembers about one job, as read from the ``JobTable``.
package struct JobRecord: Sendable, Equatable {
    /// The job's id.
    package let id: JobID
    /// What it does and its time limit.
    package let spec: JobSpec
    /// Its state.
    package var state: JobState
    /// Attempts started.
    package var attempts: Int
    /// Attempts a preempting model switch interrupted.
    package var preemptions = 0
    /// When it was accepted (monotonic nanoseconds).
    package let submittedAt: UInt64
    /// When its last attempt started.
    package var startedAt: UInt64?
    /// When it reached its final state.
    package var finishedAt: UInt64?
    /// The worker of its last attempt.
    package var worker: WorkerID?
    /// That worker's model.
    package var model: ConcurrencyModel?
    /// What it produced (also kept for a failed `exec` job).
    package var output: JobOutput?
    /// Why it failed or was cancelled.
    package var error: String?
    /// The runs that failed and were retried, oldest first.
    package var history: [AttemptRecord]

    /// A record with the given fields.
    package init(
        id: JobID, spec: JobSpec, state: JobState, attempts: Int, preemptions: Int = 0, submittedAt: UInt64,
        startedAt: UInt64? = nil, finishedAt: UInt64? = nil, worker: WorkerID? = nil, model: ConcurrencyModel? = nil,
        output: JobOutput? = nil, error: String? = nil, history: [AttemptRecord] = []
    ) {
        self.history = history
        self.id = id
        self.spec = spec
        self.state = state
        self.attempts = attempts
        self.preemptions = preemptions
        self.submittedAt = submittedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.worker = worker
        self.model = model
        self.output = output
        self.error = error
    }

    /// The record as the control interface shows it; `retryAt` is when a job waiting out a
    /// retry's delay may run again (the pool knows it, not the record).
    package func info(clock: MonotonicClock, retryAt: UInt64? = nil) -> JobInfo {
        JobInfo(
            id: id, spec: spec, state: state, attempts: attempts, submittedAt: clock.unixTime(submittedAt),
            startedAt: startedAt.map(clock.unixTime), finishedAt: finishedAt.map(clock.unixTime), worker: worker,
            model: model, result: output?.result, error: error, history: history.map { $0.info(clock: clock) },
            retryAt: retryAt.map(clock.unixTime))
    }
}
