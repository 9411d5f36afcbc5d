public import ConcurProtocol

/// A change to a job's record that the durable journal makes, in the order the pool made it.
///
/// The pool only collects them (see ``PoolStateMachine/takeJournalChanges()``); the journal
/// writes them in group commits. Times are monotonic nanoseconds.
public enum JournalChange: Sendable, Equatable {
    /// A job was accepted.
    case accepted(JobID, JobSpec, submittedAt: UInt64)
    /// A job was handed to a worker, which may start it at any moment.
    case handedOver(JobID)
    /// A job started (as far as the pool can tell): its attempt is counted.
    case started(JobID, attempts: Int, preemptions: Int, worker: WorkerID, model: ConcurrencyModel, at: UInt64)
    /// A job went back to the queue (given back unstarted, its worker died, preempted, or a
    /// shutdown interrupted it and it waits for the next start).
    case requeued(JobID, attempts: Int, preemptions: Int)
    /// A job reached its final state.
    case finished(JobRecord)
}

/// The journal could not record what the pool did: the reason, for the log and the caller.
public struct JournalFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong and what to do.
    public let reason: String

    /// A failure with the given reason.
    public init(reason: String) { self.reason = reason }

    /// The text shown to people.
    public var description: String { reason }
}

/// What the pool waits on before it lets a change matter to anyone outside it: a `Submit`
/// replies, and a worker receives jobs, only once the journal holds the change.
public protocol DurabilityGate: AnyObject, Sendable {
    /// Blocks until the first `count` changes the pool recorded are durable; throws if the
    /// journal failed (the pool then carries on in memory).
    func waitUntilDurable(_ count: UInt64) throws(JournalFailure)

    /// Calls `completion` once the first `count` changes are durable (with nil), or the journal
    /// failed (with why), from the journal's thread or at once.
    func whenDurable(_ count: UInt64, _ completion: @escaping @Sendable (JournalFailure?) -> Void)

    /// Why the journal stopped recording, if it did: new jobs are refused with this reason.
    var failure: JournalFailure? { get }
}
