/// The store of `--ephemeral`: the pool's memory is all there is. Nothing is collected or
/// written, every change is durable at once, nothing is restored, and a crash loses the jobs.
public final class MemoryJobStore: JobStore {
    /// A store with nothing in it.
    public init() {}

    /// False: the pool collects no changes for it.
    public var recordsChanges: Bool { false }
    /// Nil: a memory store starts empty.
    public func takeRestored() -> (records: [JobRecord], nextJobID: JobID)? { nil }
    /// Nothing to follow.
    public func follow(_ source: any JobChangeSource) throws(JobStoreStartError) {}
    /// Returns at once.
    public func waitUntilDurable(_ count: UInt64) throws(JournalFailure) {}
    /// Calls `completion` at once, on the caller's thread.
    public func whenDurable(_ count: UInt64, _ completion: @escaping @Sendable (JournalFailure?) -> Void) {
        completion(nil)
    }
    /// Nil: memory always records.
    public var failure: JournalFailure? { nil }
    /// Nothing: the pool's own retention applies.
    public func setRetention(_ retention: JobRetention) {}
    /// Nothing to write.
    public func close() {}
}
