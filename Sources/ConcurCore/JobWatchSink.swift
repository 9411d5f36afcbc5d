public import ConcurProtocol
import DequeModule
import Synchronization

/// What a watch reports: a job that reached its final state, or an event of the pool.
public enum WatchItem: Sendable, Equatable {
    /// A finished job.
    case job(JobInfo)
    /// Something that happened to the pool.
    case event(PoolEvent)
}

/// Where a watch's finished jobs (and, if it follows them, the pool's events) wait until its
/// client takes them.
///
/// The pool pushes under its own lock, so a watch sees items in the order they happened; the
/// consumer (a control connection) is told once per batch through `onReady` and takes what is
/// pending. A consumer that falls more than `capacity` items behind, or past what its
/// ``WatchBudget`` allows in bytes, is cut off (`overflowed`): what it had not taken is dropped
/// at once, rather than let the daemon's memory grow without bound.
public final class JobWatchSink: Sendable {
    private struct Buffer {
        var items: Deque<WatchItem> = []
        var bytes = 0
        var ended = false
        var overflowed = false
        var scheduled = false
    }

    private let buffer = Mutex(Buffer())
    private let onReady: @Sendable () -> Void
    /// The most items held for a consumer that does not keep up.
    public let capacity: Int
    /// The memory shared with the other watches, if any.
    public let budget: WatchBudget?

    /// A sink that calls `onReady` when items arrive after the consumer last took them.
    public init(capacity: Int = 1_000_000, budget: WatchBudget? = nil, onReady: @escaping @Sendable () -> Void) {
        self.capacity = capacity
        self.budget = budget
        self.onReady = onReady
        budget?.register()
    }

    deinit {
        budget?.unregister(releasing: buffer.withLock { $0.bytes })
    }

    /// Bytes (estimated) of the items held for the consumer.
    public var heldBytes: Int { buffer.withLock { $0.bytes } }

    /// Adds a finished job; `last` marks the end of the watch.
    func push(_ job: JobInfo, last: Bool) {
        push(.job(job), last: last)
    }

    /// Adds an item; `last` marks the end of the watch.
    func push(_ item: WatchItem, last: Bool = false) {
        let schedule = buffer.withLock { buffer -> Bool in
            guard !buffer.ended else { return false }
            let bytes = item.estimatedBytes
            if buffer.items.count >= capacity || budget?.reserve(bytes, holding: buffer.bytes) == false {
                // Cut off: what the consumer had not taken goes now, not when it hangs up.
                budget?.release(buffer.bytes)
                buffer.items.removeAll()
                buffer.bytes = 0
                buffer.overflowed = true
                buffer.ended = true
            } else {
                buffer.items.append(item)
                buffer.bytes += bytes
                buffer.ended = last
            }
            guard !buffer.scheduled else { return false }
            buffer.scheduled = true
            return true
        }
        if schedule { onReady() }
    }

    /// Takes every pending item and keeps the jobs (for a watch that follows no events).
    public func takeJobs() -> (jobs: [JobInfo], ended: Bool, overflowed: Bool) {
        let (items, ended, overflowed, _) = take()
        return (items.compactMap { if case .job(let job) = $0 { job } else { nil } }, ended, overflowed)
    }

    /// Takes up to `limit` pending items; `ended` says the watch is over once these are sent
    /// (all jobs reported, or `overflowed` because the consumer fell too far behind) and `more`
    /// that items are left (the consumer takes them next, without another `onReady`).
    public func take(limit: Int = .max) -> (items: [WatchItem], ended: Bool, overflowed: Bool, more: Bool) {
        buffer.withLock { buffer in
            let count = min(limit, buffer.items.count)
            let taken = Array(buffer.items.prefix(count))
            buffer.items.removeFirst(count)
            if budget != nil {
                let bytes = buffer.items.isEmpty ? buffer.bytes : taken.reduce(0) { $0 + $1.estimatedBytes }
                budget?.release(bytes)
                buffer.bytes -= bytes
            }
            let more = !buffer.items.isEmpty
            buffer.scheduled = more
            return (taken, buffer.ended && !more, buffer.overflowed && !more, more)
        }
    }
}
