import HeapModule

/// Jobs waiting until a time before they are queued: those scheduled (`startAt`) and those
/// waiting out a retry's delay.
///
/// A heap by time gives the next due job in O(log n) whatever the number waiting (a hundred
/// thousand scheduled jobs cost the tick nothing until one is due); a job taken off early (a
/// cancel, a shutdown) leaves its heap entry behind, skipped when it surfaces.
package struct JobTimetable: Sendable {
    /// Why a job waits.
    package enum Reason: Sendable, Equatable {
        /// Its `startAt` has not come.
        case scheduled
        /// A run failed and its retry policy's delay has not passed.
        case retry
    }

    /// When a job may be queued, and why it waits.
    package struct Entry: Sendable, Equatable {
        /// The monotonic instant it may be queued.
        package var at: UInt64
        /// Why it waits.
        package var reason: Reason
    }

    private struct Due: Comparable, Sendable {
        let at: UInt64
        let id: JobID
        static func < (left: Due, right: Due) -> Bool { (left.at, left.id) < (right.at, right.id) }
    }

    private var entries: [JobID: Entry] = [:]
    private var heap = Heap<Due>()
    /// Jobs waiting out a retry's delay.
    package private(set) var retryCount = 0

    /// No job waiting.
    package init() {}

    /// Jobs waiting, for any reason.
    package var count: Int { entries.count }

    /// Whether no job waits.
    package var isEmpty: Bool { entries.isEmpty }

    /// Jobs waiting for their `startAt`.
    package var scheduledCount: Int { entries.count - retryCount }

    /// When and why `id` waits, if it does.
    package subscript(id: JobID) -> Entry? { entries[id] }

    /// Makes `id` wait until `at` (replacing any earlier wait of it).
    package mutating func add(_ id: JobID, at: UInt64, reason: Reason) {
        if let old = entries.updateValue(Entry(at: at, reason: reason), forKey: id), old.reason == .retry { retryCount -= 1 }
        if reason == .retry { retryCount += 1 }
        heap.insert(Due(at: at, id: id))
    }

    /// Takes `id` off its wait; returns whether it waited.
    @discardableResult
    package mutating func remove(_ id: JobID) -> Bool {
        guard let old = entries.removeValue(forKey: id) else { return false }
        if old.reason == .retry { retryCount -= 1 }
        return true
    }

    /// The earliest instant a job is due, if one waits.
    package mutating func nextDue() -> UInt64? {
        dropStale()
        return heap.min?.at
    }

    /// Takes up to `limit` of the jobs due by `now`, the earliest first (by id among equals).
    package mutating func takeDue(now: UInt64, limit: Int = .max) -> [JobID] {
        var due: [JobID] = []
        while due.count < limit, let next = nextDue(), next <= now {
            let entry = heap.removeMin()
            remove(entry.id)
            due.append(entry.id)
        }
        return due
    }

    /// Takes every waiting job, the earliest first.
    package mutating func removeAll() -> [JobID] {
        let all = ids(reason: nil)
        entries.removeAll()
        heap = Heap()
        retryCount = 0
        return all
    }

    /// The waiting jobs (for `reason`, or all), the earliest due first.
    package func ids(reason: Reason?) -> [JobID] {
        entries.filter { reason == nil || $0.value.reason == reason }
            .sorted { ($0.value.at, $0.key) < ($1.value.at, $1.key) }.map(\.key)
    }

    /// Drops heap entries whose job no longer waits, or waits until another time.
    private mutating func dropStale() {
        while let top = heap.min, entries[top.id]?.at != top.at {
            heap.removeMin()
        }
    }
}
