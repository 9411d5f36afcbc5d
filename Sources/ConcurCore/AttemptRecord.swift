package import ConcurProtocol

/// One run of a job that failed and was retried, as the pool keeps it (monotonic times).
package struct AttemptRecord: Sendable, Equatable {
    /// Which run it was (1 for the first).
    package var attempt: Int
    /// When it started, if the pool knows.
    package var startedAt: UInt64?
    /// When it ended.
    package var finishedAt: UInt64
    /// For a command: its exit code, if it exited.
    package var exitCode: Int?
    /// For a command: the signal that ended it, if one did.
    package var signal: Int?
    /// Why it failed.
    package var error: String

    /// An attempt with the given fields.
    package init(attempt: Int, startedAt: UInt64?, finishedAt: UInt64, exitCode: Int? = nil, signal: Int? = nil, error: String) {
        self.attempt = attempt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.exitCode = exitCode
        self.signal = signal
        self.error = error
    }

    /// The attempt as the control interface shows it.
    package func info(clock: MonotonicClock) -> JobAttempt {
        JobAttempt(
            attempt: attempt, startedAt: startedAt.map(clock.unixTime), finishedAt: clock.unixTime(finishedAt),
            exitCode: exitCode, signal: signal, error: error)
    }
}
