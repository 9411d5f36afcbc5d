/// Where the pool keeps its jobs beyond its own memory, and what it waits on before a change
/// matters outside it: a `Submit` replies, and a worker receives jobs, only once the store
/// holds the change.
///
/// The pool reaches its store through this protocol only. Two stores exist: memory
/// (``MemoryJobStore``, `--ephemeral`) and the SQLite journal (ConcurJournal's `JobJournal`).
/// The protocol does not assume that one process owns the queue: a job is *claimed* by a
/// worker for a while (``JournalChange/claimed(_:by:)``), not handed over for good, so a store
/// shared by several hosts can record whose each claim is and give lapsed claims to others.
///
/// Threads: every requirement may be called from any thread; ``waitUntilDurable(_:)`` blocks
/// its caller (thread workers, the blocking submit), ``whenDurable(_:_:)`` never does (task
/// workers, the control plane).
package protocol JobStore: AnyObject, Sendable {
    /// Whether the pool must collect its changes for this store (false: memory, where a
    /// change matters at once and nothing is written).
    var recordsChanges: Bool { get }

    /// What the store held at start, once: the records to put back (unfinished jobs queued,
    /// retained finished ones) and the id the next accepted job gets; nil if nothing. A second
    /// call returns nil (the records are not kept twice in memory).
    func takeRestored() -> (records: [JobRecord], nextJobID: JobID)?

    /// Starts following `source` (the pool): from now on the store takes its changes and tells
    /// it when it cannot record them, and when it can again.
    func follow(_ source: any JobChangeSource) throws(JobStoreStartError)

    /// Blocks until the first `count` changes the pool recorded are durable; throws at once
    /// while the store cannot record (the caller gives its jobs back rather than wait).
    func waitUntilDurable(_ count: UInt64) throws(JournalFailure)

    /// Calls `completion` once the first `count` changes are durable (with nil), or the store
    /// cannot record them now (with why), from the store's thread or at once.
    func whenDurable(_ count: UInt64, _ completion: @escaping @Sendable (JournalFailure?) -> Void)

    /// Why the store cannot record now, if it cannot: new jobs are refused with this reason.
    var failure: JournalFailure? { get }

    /// Whether a worker given `jobs` waits until their hand-over is durable before it runs
    /// them (true for the journal: a crash then finds every started job started). Called with
    /// the pool's lock held: it must not block or take locks of its own.
    func mustRecordBeforeRunning(_ jobs: [Job]) -> Bool

    /// A worker asked for jobs and the pool had none for it. Called with the pool's lock held:
    /// it must not block or take a lock that is held while the pool's is taken.
    func workerFoundNothing()

    /// What people are told cannot record when ``failure`` is set (the status line's
    /// "degraded, ... cannot record"): "the job journal" unless the store says otherwise.
    var recorderName: String { get }

    /// The node's name when the store is a lane of a queue shared by several nodes (nil for a
    /// store of this daemon's own): the pool's jobs are then those it claimed.
    var sharedNode: String? { get }

    /// How long finished jobs are kept (a reload may change it).
    func setRetention(_ retention: JobRetention)

    /// Writes what is left and stops following the pool (after a drain).
    func close()
}

extension JobStore {
    /// The SQLite journal's name, which memory never needs.
    package var recorderName: String { "the job journal" }

    /// A store of this daemon's own.
    package var sharedNode: String? { nil }

    /// Nothing: the pool's queue is all the jobs there are.
    package func workerFoundNothing() {}

    /// Every hand-over is recorded before its jobs run.
    package func mustRecordBeforeRunning(_ jobs: [Job]) -> Bool { true }
}

/// What a ``JobStore`` follows: the pool's changes, and where it reports that it cannot record.
package protocol JobChangeSource: AnyObject, Sendable {
    /// The changes the store has not taken yet, and how many there were in all.
    func takeJournalChanges() -> (changes: [JournalChange], through: UInt64)
    /// The store cannot record (`failure`), or can again (nil).
    func setJournalFailure(_ failure: JournalFailure?)
}

/// A store could not start following the pool; the reason says why.
package struct JobStoreStartError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    package let reason: String

    /// An error with the given reason.
    package init(reason: String) { self.reason = reason }

    /// The text shown to people.
    package var description: String { reason }
}

/// How long finished jobs are kept: at most `count` of them, for at most `age` seconds.
package struct JobRetention: Sendable, Equatable {
    /// The most finished jobs kept.
    package var count: Int
    /// Seconds a finished job is kept.
    package var age: Double

    /// A retention of `count` jobs for `age` seconds.
    package init(count: Int, age: Double) {
        self.count = count
        self.age = age
    }
}
