import ConcurCore
import Synchronization

/// A worker's "stop what you are doing" signal, checked by workloads between chunks of work.
///
/// One flag belongs to one worker and is re-armed (under the pool's lock) each time the worker
/// takes a job, so a cancel meant for one job can never hit the next. Waiting workloads
/// (`sleep`) block on it, so a cancel wakes them at once.
package final class CancellationFlag: Sendable {
    private let raised = Atomic<Bool>(false)
    private let wakeup = ConditionLock()

    /// A lowered flag.
    package init() {}

    /// Whether a cancel has been requested.
    @inline(__always)
    package var isRaised: Bool { raised.load(ordering: .relaxed) }

    /// Requests a cancel and wakes a waiting workload.
    package func raise() {
        wakeup.withLock {
            raised.store(true, ordering: .relaxed)
            wakeup.broadcast()
        }
    }

    /// Lowers the flag for the next job.
    package func reset() {
        raised.store(false, ordering: .relaxed)
    }

    /// Blocks for `nanoseconds` or until raised; returns true if it was raised.
    package func sleep(nanoseconds: UInt64) -> Bool {
        let deadline = MonotonicClock.now() &+ nanoseconds
        return wakeup.withLock {
            while !raised.load(ordering: .relaxed) {
                if !wakeup.wait(untilMonotonic: deadline) { return raised.load(ordering: .relaxed) }
            }
            return true
        }
    }
}
