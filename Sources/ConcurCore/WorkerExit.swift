import ConcurProtocol

/// How a worker left.
package enum WorkerExit: Sendable, Equatable {
    /// It retired when asked (a thread returning, a child exiting with status 0).
    case retired
    /// It died unexpectedly; `reason` says how (`worker 4 (pid 1234) killed by SIGKILL`).
    /// `progress` says which job it was running, when the worker could tell (a child's progress
    /// page); without it the pool assumes the first job it handed over.
    case died(reason: String, progress: ProgressReport? = nil)
    /// The pool had it stopped (its running job was interrupted); `reason` says how.
    case stopped(reason: String, progress: ProgressReport? = nil)
}
