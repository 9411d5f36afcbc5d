/// Where a worker was in its jobs, from its progress page.
public struct ProgressReport: Sendable, Equatable {
    /// The job it was running, if any.
    public var running: JobID?
    /// Since when it runs (monotonic nanoseconds).
    public var since: UInt64?
    /// The last job it finished (its result may not have reached the daemon).
    public var lastFinished: JobID?

    /// A report with the given fields.
    public init(running: JobID?, since: UInt64? = nil, lastFinished: JobID?) {
        self.running = running
        self.since = since
        self.lastFinished = lastFinished
    }
}
