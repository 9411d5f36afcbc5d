public import ConcurProtocol
import Synchronization

/// Where a watch's finished jobs wait until its client takes them.
///
/// The pool pushes under its own lock, so a watch sees jobs in the order they finished; the
/// consumer (a control connection) is told once per batch through `onReady` and takes
/// everything pending in one go. A consumer that falls more than `capacity` jobs behind is cut
/// off (`overflowed`) rather than let the daemon's memory grow without bound.
public final class JobWatchSink: Sendable {
    private struct Buffer {
        var jobs: [JobInfo] = []
        var ended = false
        var overflowed = false
        var scheduled = false
    }

    private let buffer = Mutex(Buffer())
    private let onReady: @Sendable () -> Void
    /// The most jobs held for a consumer that does not keep up.
    public let capacity: Int

    /// A sink that calls `onReady` when jobs arrive after the consumer last took them.
    public init(capacity: Int = 100_000, onReady: @escaping @Sendable () -> Void) {
        self.capacity = capacity
        self.onReady = onReady
    }

    /// Adds a finished job; `last` marks the end of the watch.
    func push(_ job: JobInfo, last: Bool) {
        let schedule = buffer.withLock { buffer -> Bool in
            guard !buffer.ended else { return false }
            if buffer.jobs.count >= capacity {
                buffer.overflowed = true
                buffer.ended = true
            } else {
                buffer.jobs.append(job)
                buffer.ended = last
            }
            guard !buffer.scheduled else { return false }
            buffer.scheduled = true
            return true
        }
        if schedule { onReady() }
    }

    /// Takes the pending jobs; `ended` says the watch is over (all jobs reported, or
    /// `overflowed` because the consumer fell too far behind).
    public func take() -> (jobs: [JobInfo], ended: Bool, overflowed: Bool) {
        buffer.withLock { buffer in
            let taken = (buffer.jobs, buffer.ended, buffer.overflowed)
            buffer.jobs = []
            buffer.scheduled = false
            return taken
        }
    }
}
