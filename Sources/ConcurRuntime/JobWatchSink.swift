import ConcurCore
package import ConcurProtocol
import DequeModule
import Synchronization

/// What a watch reports: a job that reached its final state, or an event of the pool.
package enum WatchItem: Sendable, Equatable {
    /// A finished job.
    case job(JobInfo)
    /// Something that happened to the pool.
    case event(PoolEvent)
    /// Jobs that ended while the consumer was too far behind to hold them: counted by how they
    /// ended instead of kept (a watch that ends, of a consumer that still reads).
    case skipped(JobTotals)
}

/// A finished job's record as the watches covering it share it: one copy however many watches
/// hold it until their clients take it.
package final class WatchedJob: Sendable {
    /// The record.
    package let info: JobInfo
    /// About how many bytes a watch holding it is charged (as if it were not shared).
    let estimatedBytes: Int

    /// A shared record of `info`.
    package init(_ info: JobInfo) {
        self.info = info
        estimatedBytes = WatchItem.job(info).estimatedBytes
    }
}

/// Where a watch's finished jobs (and, if it follows them, the pool's events) wait until its
/// client takes them.
///
/// The pool pushes under its own lock, so a watch sees items in the order they happened; the
/// consumer (a control connection) is told once per batch through `onReady` and takes what is
/// pending. A consumer that falls more than `capacity` items behind, or past what its
/// ``WatchBudget`` allows in bytes, is cut off (`overflowed`): what it had not taken is dropped
/// at once, rather than let the daemon's memory grow without bound. A sink that `summarizes`
/// (a watch that ends, such as `wait --all`) counts the jobs it has no room for instead
/// (``WatchItem/skipped(_:)``), so a slow reader still learns how every job ended; one that
/// stops reading is left to the transport's timeout.
package final class JobWatchSink: Sendable {
    private struct Buffer {
        var items: Deque<Entry> = []
        var bytes = 0
        var ended = false
        var overflowed = false
        var scheduled = false
        /// Ends (`last` pushes) seen, and how many end the watch: one per pool it covers.
        var endsSeen = 0
        var endsExpected = 1
    }

    private let buffer = Mutex(Buffer())
    private let onReady: @Sendable () -> Void
    private let onCutOff: (@Sendable () -> Void)?
    /// The most items held for a consumer that does not keep up.
    package let capacity: Int
    /// The memory shared with the other watches, if any.
    package let budget: WatchBudget?
    /// Whether jobs past the room are counted (``WatchItem/skipped(_:)``) rather than the
    /// consumer cut off.
    package let summarizes: Bool

    /// A sink that calls `onReady` when items arrive after the consumer last took them, and
    /// `onCutOff` (under the pool's lock: it must not call the pool) the moment its consumer is
    /// cut off.
    package init(
        capacity: Int = 1_000_000, budget: WatchBudget? = nil, summarizes: Bool = false,
        onCutOff: (@Sendable () -> Void)? = nil, onReady: @escaping @Sendable () -> Void
    ) {
        self.summarizes = summarizes
        self.capacity = capacity
        self.budget = budget
        self.onReady = onReady
        self.onCutOff = onCutOff
        budget?.register()
    }

    deinit {
        budget?.unregister(releasing: buffer.withLock { $0.bytes })
    }

    /// Bytes (estimated) of the items held for the consumer.
    package var heldBytes: Int { buffer.withLock { $0.bytes } }

    /// An item as held: a finished job by reference (shared with the other watches).
    private enum Entry {
        case job(WatchedJob)
        case event(PoolEvent)
        case skipped(JobTotals)

        var item: WatchItem {
            switch self {
            case .job(let job): .job(job.info)
            case .event(let event): .event(event)
            case .skipped(let totals): .skipped(totals)
            }
        }

        /// About how many bytes the item holds in memory for this watch, counted as if it
        /// were not shared (so the budget errs on the safe side).
        var estimatedBytes: Int {
            switch self {
            case .job(let job): job.estimatedBytes
            case .event(let event): WatchItem.event(event).estimatedBytes
            case .skipped: 0
            }
        }
    }

    /// Adds a finished job; `last` marks the end of the watch. False once the consumer was cut
    /// off: the watch wants nothing more.
    @discardableResult
    func push(_ job: JobInfo, last: Bool) -> Bool {
        push(Entry.job(WatchedJob(job)), last: last)
    }

    /// Adds a finished job shared with other watches; `last` marks the end of the watch.
    @discardableResult
    func push(_ job: WatchedJob, last: Bool) -> Bool {
        push(Entry.job(job), last: last)
    }

    /// Adds an item; `last` marks the end of the watch.
    @discardableResult
    func push(_ item: WatchItem, last: Bool = false) -> Bool {
        switch item {
        case .job(let job): push(Entry.job(WatchedJob(job)), last: last)
        case .event(let event): push(Entry.event(event), last: last)
        case .skipped(let totals): push(Entry.skipped(totals), last: last)
        }
    }

    private func push(_ item: Entry, last: Bool) -> Bool {
        let (schedule, cutOff, wanted) = buffer.withLock { buffer -> (Bool, Bool, Bool) in
            guard !buffer.ended else { return (false, false, !buffer.overflowed) }
            var cutOff = false
            let bytes = item.estimatedBytes
            let full = buffer.items.count >= capacity || budget?.reserve(bytes, holding: buffer.bytes) == false
            if full && summarizes {
                // No room: the job is counted by how it ended (an event is let go), next to the
                // count before it if that is the last item held.
                if case .job(let job) = item {
                    var totals = JobTotals()
                    if case .skipped(let before)? = buffer.items.last {
                        totals = before
                        buffer.items.removeLast()
                    }
                    switch job.info.state {
                    case .done: totals.done += 1
                    case .failed: totals.failed += 1
                    default: totals.cancelled += 1
                    }
                    buffer.items.append(.skipped(totals))
                }
                if last { buffer.endsSeen += 1 }
                buffer.ended = buffer.endsSeen >= buffer.endsExpected
            } else if full {
                // Cut off: what the consumer had not taken goes now, not when it hangs up.
                budget?.release(buffer.bytes)
                buffer.items.removeAll()
                buffer.bytes = 0
                buffer.overflowed = true
                buffer.ended = true
                cutOff = true
            } else {
                buffer.items.append(item)
                buffer.bytes += bytes
                if last { buffer.endsSeen += 1 }
                buffer.ended = buffer.endsSeen >= buffer.endsExpected
            }
            guard !buffer.scheduled else { return (false, cutOff, !buffer.overflowed) }
            buffer.scheduled = true
            return (true, cutOff, !buffer.overflowed)
        }
        if cutOff { onCutOff?() }
        if schedule { onReady() }
        return wanted
    }

    /// Makes the watch end once `count` watches pushing to this sink (one per pool it covers)
    /// have each pushed their last item; at most 1 by default. Call it before the consumer takes
    /// anything: ends already pushed count.
    package func expectEnds(_ count: Int) {
        buffer.withLock { buffer in
            guard !buffer.overflowed else { return }
            buffer.endsExpected = count
            buffer.ended = buffer.endsSeen >= count
        }
    }

    /// Takes every pending item and keeps the jobs (for a watch that follows no events).
    package func takeJobs() -> (jobs: [JobInfo], ended: Bool, overflowed: Bool) {
        let (items, ended, overflowed, _) = take()
        return (items.compactMap { if case .job(let job) = $0 { job } else { nil } }, ended, overflowed)
    }

    /// Takes up to `limit` pending items; `ended` says the watch is over once these are sent
    /// (all jobs reported, or `overflowed` because the consumer fell too far behind) and `more`
    /// that items are left (the consumer takes them next, without another `onReady`).
    package func take(limit: Int = .max) -> (items: [WatchItem], ended: Bool, overflowed: Bool, more: Bool) {
        buffer.withLock { buffer in
            let count = min(limit, buffer.items.count)
            let taken = buffer.items.prefix(count)
            if budget != nil {
                let bytes = count == buffer.items.count ? buffer.bytes : taken.reduce(0) { $0 + $1.estimatedBytes }
                budget?.release(bytes)
                buffer.bytes -= bytes
            }
            let items = taken.map(\.item)
            buffer.items.removeFirst(count)
            let more = !buffer.items.isEmpty
            buffer.scheduled = more
            return (items, buffer.ended && !more, buffer.overflowed && !more, more)
        }
    }
}
