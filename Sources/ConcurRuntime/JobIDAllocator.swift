package import ConcurCore
import Synchronization

/// The daemon's one id space, shared by its pools: a job's id names it whichever pool holds
/// it. A pool takes its ids here under its own lock, once a submit's checks passed, so ids rise
/// within each pool and are unique, and in submission order, across all of them.
package final class JobIDAllocator: Sendable {
    private let next: Atomic<UInt64>

    /// An allocator whose first id is `first` (one past the highest id any journal holds).
    package init(first: JobID = 1) {
        next = Atomic(max(1, first))
    }

    /// The first of `count` consecutive ids, none of them given before.
    package func take(_ count: Int) -> JobID {
        next.wrappingAdd(UInt64(count), ordering: .relaxed).oldValue
    }

    /// One past the highest id given so far: every id below it was given to some pool (or never
    /// used by a refused submit of an older daemon).
    package var allocatedBelow: JobID { next.load(ordering: .relaxed) }

    /// Moves the next id up to `id` if it is lower (a pool restored from its journal).
    package func raise(to id: JobID) {
        var current = next.load(ordering: .relaxed)
        while current < id {
            let (exchanged, original) = next.compareExchange(expected: current, desired: id, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}
