import DequeModule

/// The shared, bounded, first-in first-out queue of jobs waiting for a worker.
///
/// A batch is taken whole or refused whole, so a client never has to guess which part of a
/// submit was accepted. Jobs put back at the head (a preempted or retried job) were accepted
/// before and may exceed the limit.
public struct JobQueue: Sendable {
    private var jobs: Deque<Job> = []
    /// The most jobs the queue accepts from submitters.
    public var limit: Int

    /// An empty queue holding at most `limit` submitted jobs.
    public init(limit: Int) {
        self.limit = limit
    }

    /// Jobs waiting.
    public var count: Int { jobs.count }

    /// Whether no job is waiting.
    public var isEmpty: Bool { jobs.isEmpty }

    /// Whether `count` more jobs fit under the limit.
    public func canAccept(_ count: Int) -> Bool { jobs.count + count <= limit }

    /// Appends jobs the caller has checked with ``canAccept(_:)``.
    public mutating func append(contentsOf newJobs: some Sequence<Job>) {
        jobs.append(contentsOf: newJobs)
    }

    /// Puts a job back at the head, to run next.
    public mutating func pushFront(_ job: Job) {
        jobs.prepend(job)
    }

    /// Takes the job at the head.
    public mutating func popFirst() -> Job? { jobs.popFirst() }

    /// Takes every waiting job, oldest first.
    public mutating func removeAll() -> [Job] {
        let all = Array(jobs)
        jobs.removeAll()
        return all
    }

    /// The first `count` waiting jobs, next to run first.
    public func prefix(_ count: Int) -> [Job] { Array(jobs.prefix(count)) }
}
