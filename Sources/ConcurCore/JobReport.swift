/// The outcome of one job as a worker reports it.
public struct JobReport: Sendable, Equatable {
    /// The job.
    public var id: JobID
    /// How it ended.
    public var outcome: JobOutcome
    /// When it started and finished (monotonic nanoseconds), if the worker measured it.
    public var startedAt: UInt64?
    /// When it finished.
    public var finishedAt: UInt64

    /// A report with the given fields.
    public init(id: JobID, outcome: JobOutcome, startedAt: UInt64?, finishedAt: UInt64) {
        self.id = id
        self.outcome = outcome
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }
}
