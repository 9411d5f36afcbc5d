import DequeModule

/// The shared, bounded, first-in first-out queue of jobs waiting for a worker, by id (the
/// ``JobTable`` holds the rest of each job).
///
/// A batch is taken whole or refused whole, so a client never has to guess which part of a
/// submit was accepted. Jobs put back at the head (given back, or their worker died) were
/// accepted before and may exceed the limit.
package struct JobQueue: Sendable {
    private var ids: Deque<JobID> = []
    /// The most jobs the queue accepts from submitters.
    package var limit: Int

    /// An empty queue holding at most `limit` submitted jobs.
    package init(limit: Int) {
        self.limit = limit
    }

    /// Jobs waiting.
    package var count: Int { ids.count }

    /// Whether no job is waiting.
    package var isEmpty: Bool { ids.isEmpty }

    /// Whether `count` more jobs fit under the limit.
    package func canAccept(_ count: Int) -> Bool { ids.count + count <= limit }

    /// Appends the consecutive ids of a batch the caller has checked with ``canAccept(_:)``.
    package mutating func append(contentsOf newIDs: Range<JobID>) {
        ids.append(contentsOf: newIDs)
    }

    /// Appends one job that was accepted before (a retry): it may exceed the limit.
    package mutating func append(_ id: JobID) {
        ids.append(id)
    }

    /// Puts a job back at the head, to run next.
    package mutating func pushFront(_ id: JobID) {
        ids.prepend(id)
    }

    /// The job at the head, left there.
    package var first: JobID? { ids.first }

    /// Takes the job at the head.
    package mutating func popFirst() -> JobID? { ids.popFirst() }

    /// Takes every waiting job, oldest first.
    package mutating func removeAll() -> [JobID] {
        let all = Array(ids)
        ids.removeAll()
        return all
    }

    /// Takes the waiting jobs among `wanted` out of the queue (in one pass over it); returns
    /// those it held.
    package mutating func remove(_ wanted: Set<JobID>) -> Set<JobID> {
        var removed = Set<JobID>()
        ids.removeAll { id in
            guard wanted.contains(id) else { return false }
            removed.insert(id)
            return true
        }
        return removed
    }

    /// The first `count` waiting jobs, next to run first.
    package func prefix(_ count: Int) -> [JobID] { Array(ids.prefix(count)) }
}
