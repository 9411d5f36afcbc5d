/// Where a worker was in its jobs, from its progress page.
package struct ProgressReport: Sendable, Equatable {
    /// The job it was running, if any.
    package var running: JobID?
    /// Since when it runs (monotonic nanoseconds).
    package var since: UInt64?
    /// The last job it finished (its result may not have reached the daemon).
    package var lastFinished: JobID?

    /// A report with the given fields.
    package init(running: JobID?, since: UInt64? = nil, lastFinished: JobID?) {
        self.running = running
        self.since = since
        self.lastFinished = lastFinished
    }
}
