package import ConcurProtocol

/// A change to a job's record that the durable journal makes, in the order the pool made it.
///
/// The pool only collects them (see ``PoolStateMachine/takeJournalChanges()``) for its
/// ``JobStore``, which writes them (the journal in group commits). Times are monotonic
/// nanoseconds.
package enum JournalChange: Sendable, Equatable {
    /// A job was accepted.
    case accepted(JobID, JobSpec, submittedAt: UInt64)
    /// A job was claimed by a worker, which may start it at any moment. The claim is the
    /// worker's for a while: a store that one process owns (the journal) records only that the
    /// job may have started; one shared by several hosts also records whose it is and until
    /// when, and may give a job whose claim lapsed to someone else.
    case claimed(JobID, by: WorkerID)
    /// A job started (as far as the pool can tell): its attempt is counted.
    case started(JobID, attempts: Int, preemptions: Int, worker: WorkerID, model: ConcurrencyModel, at: UInt64)
    /// A job went back to the queue (given back unstarted, its worker died, preempted, or a
    /// shutdown interrupted it and it waits for the next start).
    case requeued(JobID, attempts: Int, preemptions: Int)
    /// A job's run failed and its retry policy runs it again: it is queued again (after the
    /// policy's delay), with the failed run kept in its history.
    case retrying(JobID, AttemptRecord, attempts: Int)
    /// A job a worker holds was cancelled, with the reason, and is being stopped: should the
    /// daemon stop before the job ends, it is not run again but ends cancelled at the next start.
    case cancelRequested(JobID, reason: String)
    /// A job reached its final state.
    case finished(JobRecord)
}

/// The journal could not record what the pool did: the reason, for the log and the caller.
package struct JournalFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong and what to do.
    package let reason: String

    /// A failure with the given reason.
    package init(reason: String) { self.reason = reason }

    /// The text shown to people.
    package var description: String { reason }
}
