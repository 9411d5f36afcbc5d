/// The store of `--ephemeral`: the pool's memory is all there is. Nothing is collected or
/// written, every change is durable at once, nothing is restored, and a crash loses the jobs.
package final class MemoryJobStore: JobStore {
    /// A store with nothing in it.
    package init() {}

    /// False: the pool collects no changes for it.
    package var recordsChanges: Bool { false }
    /// Nil: a memory store starts empty.
    package func takeRestored() -> (records: [JobRecord], nextJobID: JobID)? { nil }
    /// Nothing to follow.
    package func follow(_ source: any JobChangeSource) throws(JobStoreStartError) {}
    /// Returns at once.
    package func waitUntilDurable(_ count: UInt64) throws(JournalFailure) {}
    /// Calls `completion` at once, on the caller's thread.
    package func whenDurable(_ count: UInt64, _ completion: @escaping @Sendable (JournalFailure?) -> Void) {
        completion(nil)
    }
    /// Nil: memory always records.
    package var failure: JournalFailure? { nil }
    /// Nothing: the pool's own retention applies.
    package func setRetention(_ retention: JobRetention) {}
    /// Nothing to write.
    package func close() {}
}
