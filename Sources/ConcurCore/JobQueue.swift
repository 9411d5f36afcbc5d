import ConcurProtocol
import DequeModule

/// The shared, bounded queue of jobs waiting for a worker, by id (the ``JobTable`` holds the
/// rest of each job): the highest priority first, first in first out within a priority.
///
/// Strict priority, without ageing: while jobs of a higher priority keep arriving, lower ones
/// wait. One deque per priority and a bit per non-empty one keep taking the next job a few
/// instructions whatever the mix. A batch is taken whole or refused whole, so a client never has
/// to guess which part of a submit was accepted. Jobs put back at the head of their priority
/// (given back, or their worker died) were accepted before and may exceed the limit.
package struct JobQueue: Sendable {
    private var levels: [Deque<JobID>]
    /// Bit `level` is set while `levels[level]` holds a job.
    private var occupied: UInt32 = 0
    /// Jobs waiting, at every priority.
    package private(set) var count = 0
    /// The most jobs the queue accepts from submitters.
    package var limit: Int

    /// An empty queue holding at most `limit` submitted jobs.
    package init(limit: Int) {
        self.limit = limit
        levels = Array(repeating: [], count: JobLimits.priority.count)
    }

    private static func level(_ priority: Int) -> Int {
        min(max(priority, JobLimits.priority.lowerBound), JobLimits.priority.upperBound) - JobLimits.priority.lowerBound
    }

    private var topLevel: Int? { occupied == 0 ? nil : UInt32.bitWidth - 1 - occupied.leadingZeroBitCount }

    /// Whether no job is waiting.
    package var isEmpty: Bool { count == 0 }

    /// Whether `count` more jobs fit under the limit, `others` (waiting elsewhere: for their
    /// time, for other jobs) counted with the queued ones.
    package func canAccept(_ count: Int, others: Int = 0) -> Bool { self.count + others + count <= limit }

    /// Appends the consecutive ids of a batch of one priority, checked with ``canAccept(_:others:)``.
    package mutating func append(contentsOf newIDs: Range<JobID>, priority: Int = 0) {
        let level = Self.level(priority)
        levels[level].append(contentsOf: newIDs)
        occupied |= 1 << level
        count += newIDs.count
    }

    /// Appends one job behind those of its priority (a retry, a job whose time came): it may
    /// exceed the limit.
    package mutating func append(_ id: JobID, priority: Int = 0) {
        let level = Self.level(priority)
        levels[level].append(id)
        occupied |= 1 << level
        count += 1
    }

    /// Puts a job back at the head of its priority, to run next among them.
    package mutating func pushFront(_ id: JobID, priority: Int = 0) {
        let level = Self.level(priority)
        levels[level].prepend(id)
        occupied |= 1 << level
        count += 1
    }

    /// The job to run next, left there.
    package var first: JobID? { topLevel.flatMap { levels[$0].first } }

    /// Takes the job to run next.
    package mutating func popFirst() -> JobID? {
        guard let level = topLevel else { return nil }
        let id = levels[level].removeFirst()
        if levels[level].isEmpty { occupied &= ~(1 << level) }
        count -= 1
        return id
    }

    /// Takes the last `count` waiting jobs (those that would run last: the lowest priority, the
    /// newest within it), the very last first.
    package mutating func popLast(_ count: Int) -> [JobID] {
        var taken: [JobID] = []
        taken.reserveCapacity(min(count, self.count))
        for level in levels.indices where occupied & (1 << level) != 0 && taken.count < count {
            while taken.count < count, let id = levels[level].popLast() { taken.append(id) }
            if levels[level].isEmpty { occupied &= ~(1 << level) }
        }
        self.count -= taken.count
        return taken
    }

    /// Takes every waiting job, in the order they would have run.
    package mutating func removeAll() -> [JobID] {
        let all = prefix(count)
        for level in levels.indices { levels[level].removeAll() }
        occupied = 0
        count = 0
        return all
    }

    /// Takes the waiting jobs among `wanted` out of the queue (in one pass over it); returns
    /// those it held.
    package mutating func remove(_ wanted: Set<JobID>) -> Set<JobID> {
        var removed = Set<JobID>()
        guard !wanted.isEmpty else { return removed }
        for level in levels.indices where occupied & (1 << level) != 0 {
            levels[level].removeAll { id in
                guard wanted.contains(id) else { return false }
                removed.insert(id)
                return true
            }
            if levels[level].isEmpty { occupied &= ~(1 << level) }
        }
        count -= removed.count
        return removed
    }

    /// The first `count` waiting jobs, in the order they will run.
    package func prefix(_ count: Int) -> [JobID] {
        var result: [JobID] = []
        result.reserveCapacity(min(count, self.count))
        for level in levels.indices.reversed() where occupied & (1 << level) != 0 && result.count < count {
            result.append(contentsOf: levels[level].prefix(count - result.count))
        }
        return result
    }
}
