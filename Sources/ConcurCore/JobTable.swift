public import ConcurProtocol
import DequeModule

/// Everything the pool remembers about one job.
public struct JobRecord: Sendable, Equatable {
    /// The job's id.
    public let id: JobID
    /// What it does.
    public let kind: JobKind
    /// Its state.
    public var state: JobState
    /// Attempts started.
    public var attempts: Int
    /// When it was accepted (monotonic nanoseconds).
    public let submittedAt: UInt64
    /// When its last attempt started.
    public var startedAt: UInt64?
    /// When it reached its final state.
    public var finishedAt: UInt64?
    /// The worker of its last attempt.
    public var worker: WorkerID?
    /// That worker's model.
    public var model: ConcurrencyModel?
    /// What it produced.
    public var result: JobResult?
    /// Why it failed or was cancelled.
    public var error: String?

    /// The record as the control interface shows it.
    public func info(clock: MonotonicClock) -> JobInfo {
        JobInfo(
            id: id, kind: kind, state: state, attempts: attempts, submittedAt: clock.unixTime(submittedAt),
            startedAt: startedAt.map(clock.unixTime), finishedAt: finishedAt.map(clock.unixTime), worker: worker,
            model: model, result: result, error: error)
    }
}

/// The records of queued, running and recently finished jobs.
///
/// Finished records are kept up to `retainFinished`, oldest pruned first, so memory stays
/// bounded however many jobs pass through.
public struct JobTable: Sendable {
    private var records: [JobID: JobRecord] = [:]
    private var finishedOrder: Deque<JobID> = []
    /// How many finished records are kept.
    public var retainFinished: Int

    /// An empty table keeping `retainFinished` finished records.
    public init(retainFinished: Int) {
        self.retainFinished = retainFinished
    }

    /// Records held (queued, running and retained finished ones).
    public var count: Int { records.count }

    /// The record of `id`, if it is still held.
    public subscript(id: JobID) -> JobRecord? { records[id] }

    /// Records a newly accepted job.
    public mutating func insert(_ job: Job) {
        records[job.id] = JobRecord(
            id: job.id, kind: job.kind, state: .queued, attempts: job.attempts, submittedAt: job.submittedAt)
    }

    /// Marks a job as started by `worker`.
    public mutating func markRunning(_ id: JobID, attempts: Int, worker: WorkerID, model: ConcurrencyModel, at now: UInt64) {
        records[id]?.state = .running
        records[id]?.attempts = attempts
        records[id]?.startedAt = now
        records[id]?.worker = worker
        records[id]?.model = model
    }

    /// Puts a started job back to `queued` (preempted, or its worker died).
    public mutating func markRequeued(_ id: JobID) {
        records[id]?.state = .queued
    }

    /// Moves a job to its final state and returns the record; older finished records beyond
    /// the retention are pruned.
    @discardableResult
    public mutating func markFinished(_ id: JobID, outcome: JobOutcome, at now: UInt64) -> JobRecord? {
        guard var record = records[id] else { return nil }
        switch outcome {
        case .done(let result):
            record.state = .done
            record.result = result
        case .failed(let reason):
            record.state = .failed
            record.error = reason
        case .cancelled(let reason):
            record.state = .cancelled
            record.error = reason
        }
        record.finishedAt = now
        records[id] = record
        finishedOrder.append(id)
        while finishedOrder.count > retainFinished, let oldest = finishedOrder.popFirst() {
            records.removeValue(forKey: oldest)
        }
        return record
    }

    /// The most recently finished records (optionally only in `state`), newest first.
    public func recentlyFinished(state: JobState?, limit: Int) -> [JobRecord] {
        var found: [JobRecord] = []
        for id in finishedOrder.reversed() {
            guard found.count < limit else { break }
            if let record = records[id], state == nil || record.state == state { found.append(record) }
        }
        return found
    }

    /// Records of the highest ids held, newest first.
    public func newest(limit: Int, below nextID: JobID) -> [JobRecord] {
        var found: [JobRecord] = []
        var id = nextID
        // Pruned ids leave gaps; the scan is bounded by the number of records held.
        var looked = 0
        while id > 1, found.count < limit, looked < records.count + limit {
            id -= 1
            looked += 1
            if let record = records[id] { found.append(record) }
        }
        return found
    }
}
