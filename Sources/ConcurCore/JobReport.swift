/// The outcome of one job as a worker reports it.
package struct JobReport: Sendable, Equatable {
    /// The job.
    package var id: JobID
    /// How it ended.
    package var outcome: JobOutcome
    /// When it started and finished (monotonic nanoseconds), if the worker measured it.
    package var startedAt: UInt64?
    /// When it finished.
    package var finishedAt: UInt64

    /// A report with the given fields.
    package init(id: JobID, outcome: JobOutcome, startedAt: UInt64?, finishedAt: UInt64) {
        self.id = id
        self.outcome = outcome
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }
}
