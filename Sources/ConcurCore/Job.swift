public import ConcurProtocol

/// A job's id: consecutive from 1, unique for the daemon's lifetime.
public typealias JobID = UInt64

/// A worker's id: consecutive from 1, never reused, whatever the model.
public typealias WorkerID = Int

/// A job on its way through the queue to a worker.
public struct Job: Sendable, Equatable {
    /// The job's id.
    public let id: JobID
    /// What it does.
    public let kind: JobKind
    /// Attempts already started (0 for a fresh job).
    public var attempts: Int
    /// When it was accepted (monotonic nanoseconds).
    public let submittedAt: UInt64

    /// A job with the given fields.
    public init(id: JobID, kind: JobKind, attempts: Int = 0, submittedAt: UInt64) {
        self.id = id
        self.kind = kind
        self.attempts = attempts
        self.submittedAt = submittedAt
    }
}
