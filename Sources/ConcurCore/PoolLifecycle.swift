/// Where the pool is in its life: stored, and changed by one transition each.
///
/// It moves forward only (serving or paused, then draining, then stopping), except that pause
/// and resume move between serving and paused. Whether the journal can record is a separate
/// condition (``PoolStateMachine/journalFailure``): a pool may be degraded in any of these.
package enum PoolLifecycle: Sendable, Equatable {
    /// Intake open, workers take jobs.
    case serving
    /// Intake open, workers take no new jobs; those running (and those they hold) finish.
    case paused
    /// Intake closed, queued jobs cancelled or kept for the next start, every worker retiring
    /// after its running job (``PoolStateMachine/beginDrain(now:reason:)``).
    case draining
    /// Draining, and the running jobs are being interrupted
    /// (``PoolStateMachine/cancelRunning(reason:queuedReason:now:)``).
    case stopping

    /// Whether submits, resizes and switches are accepted.
    package var acceptsWork: Bool { self == .serving || self == .paused }
}
