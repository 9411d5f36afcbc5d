public import Varlink

/// How the pool runs its workers.
public enum ConcurrencyModel: String, Sendable, Hashable, CaseIterable, JSONDecodable, JSONEncodable {
    /// N operating-system threads blocking on the shared queue.
    case threads
    /// N supervised child processes, each with its own channel to the daemon.
    case processes
    /// N child tasks of a task group.
    case tasks
}

/// Where a job is in its life: `queued -> running -> done | failed | cancelled`.
public enum JobState: String, Sendable, Hashable, CaseIterable, JSONDecodable, JSONEncodable {
    /// Accepted and waiting for a worker.
    case queued
    /// Accepted and waiting for its `startAt` time; then it is queued.
    case scheduled
    /// Accepted and waiting for the jobs it runs after (`after`) to end `done`; then it is queued.
    case waiting
    /// A worker is running it.
    case running
    /// It ran to the end.
    case done
    /// It ran and failed, or could not be run.
    case failed
    /// It was cancelled before it could finish.
    case cancelled

    /// Whether the job has reached one of its final states.
    public var isFinal: Bool { self == .done || self == .failed || self == .cancelled }
}

/// What a worker is doing.
public enum WorkerState: String, Sendable, Hashable, CaseIterable, JSONDecodable, JSONEncodable {
    /// Created, not yet asking for jobs.
    case starting
    /// Waiting for a job.
    case idle
    /// Running a job.
    case busy
    /// Asked to leave: it finishes its current job (if any) and exits.
    case retiring
}

/// The daemon's life cycle as seen from the control socket.
public enum DaemonPhase: String, Sendable, Hashable, CaseIterable, JSONDecodable, JSONEncodable {
    /// Accepting and running jobs.
    case serving
    /// Running, but the job journal cannot record: new jobs are refused and workers start none
    /// until it can (running ones finish); `warnings` says why.
    case degraded
    /// Shutting down: intake is closed and running jobs are finishing.
    case draining
    /// Shutting down: running jobs are being cancelled.
    case stopping
}

/// One of an exec job's output streams, for `Logs`.
public enum LogStream: String, Sendable, Hashable, CaseIterable, JSONDecodable, JSONEncodable {
    /// What the command wrote to its standard output.
    case stdout
    /// What it wrote to its standard error.
    case stderr
}

/// How far a `Shutdown` call takes the daemon.
public enum ShutdownMode: String, Sendable, Hashable, CaseIterable, JSONDecodable, JSONEncodable {
    /// Intake closes; running jobs finish; queued ones stay in the journal for the next start.
    case drain
    /// As drain, and running jobs are interrupted (they end cancelled).
    case interrupt
}
