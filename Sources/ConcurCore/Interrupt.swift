import ConcurProtocol

/// A running job's pending interruption.
///
/// A named job's interruption ends with that job's report, whatever its outcome (it may have
/// finished just before it noticed). An unnamed one is for a retiring worker, which starts
/// no other job: it ends with the first job the worker reports `cancelled` (only a job that
/// noticed its flag is), or with the worker. Reports come in batches, so "the job running" as
/// the pool last heard of it may have finished long ago: nothing else could tell them apart.
struct Interrupt: Sendable, Equatable {
    /// The job meant, or nil for whatever the worker runs.
    var job: JobID?
    /// Why.
    var cause: InterruptCause

    /// Whether it is meant for `job`.
    func applies(to job: JobID) -> Bool { self.job == nil || self.job == job }

    /// Whether a report of `job` ending with `outcome` is the interrupted one.
    func matches(_ job: JobID, outcome: JobOutcome) -> Bool {
        if let named = self.job { return named == job }
        if case .cancelled = outcome { return true }
        return false
    }
}

/// Why a running job is being interrupted.
enum InterruptCause: Sendable, Equatable {
    /// Its time limit passed: it fails.
    case timeLimit(seconds: Double)
    /// The daemon is stopping: it is cancelled.
    case shutdown(reason: String)
    /// A model switch with preemption: it goes back to the head of the queue, to run again.
    case preempt
    /// Someone cancelled the job (``PoolStateMachine/cancel(_:reason:now:)``): it is cancelled.
    case cancel(reason: String)

    /// The job's final state after the interruption, or nil when it goes back to the queue.
    func outcome(output: JobOutput?) -> JobOutcome? {
        switch self {
        case .timeLimit(let seconds): .failed("exceeded its time limit of \(formatDecimal(seconds)) s", output: output)
        case .shutdown(let reason), .cancel(let reason): .cancelled(reason)
        case .preempt: nil
        }
    }
}
