/// The time one worker spent running jobs in the last ten seconds, in one-second buckets.
///
/// What `top` and `stats` show as busy: a share of the worker's whole life would say 10% for a
/// worker fully busy for a minute after an idle hour. A pure value: the times come from the
/// pool's monotonic clock; recording a job costs one bucket for a job shorter than a second.
package struct RecentBusy: Sendable, Hashable {
    /// The seconds the window covers: the current one and those before it.
    package static let seconds = 10
    private static let second: UInt64 = 1_000_000_000

    /// Busy nanoseconds by second, at `second % seconds`.
    private var buckets = [UInt32](repeating: 0, count: seconds)
    /// The second the newest bucket is for.
    private var newest: UInt64 = 0

    /// An empty window.
    package init() {}

    /// Counts a run from `start` to `end` (nanoseconds on the pool's clock); only what falls in
    /// the window ending at `end` is kept.
    package mutating func record(from start: UInt64, to end: UInt64) {
        guard end > start else { return }
        let last = end / Self.second
        roll(to: last)
        // Seconds before the window, or before the newest second's window (a run recorded
        // late), have no bucket of their own any more.
        let window = UInt64(Self.seconds - 1)
        let first = max(start / Self.second, last >= window ? last - window : 0, newest >= window ? newest - window : 0)
        var second = first
        while second <= last {
            let from = max(start, second * Self.second)
            let to = min(end, (second + 1) * Self.second)
            let index = Int(second % UInt64(Self.seconds))
            buckets[index] = UInt32(min(UInt64(Self.second), UInt64(buckets[index]) + (to - from)))
            second += 1
        }
    }

    /// The share of the window ending at `now` spent running jobs: the recorded runs, and the
    /// running one since `runningSince`. The window starts no earlier than `createdAt`.
    package func fraction(now: UInt64, createdAt: UInt64, runningSince: UInt64?) -> Double {
        let current = now / Self.second
        let oldest = current >= UInt64(Self.seconds - 1) ? current - UInt64(Self.seconds - 1) : 0
        let start = max(createdAt, oldest * Self.second)
        guard now > start else { return runningSince == nil ? 0 : 1 }
        var busy: UInt64 = 0
        if newest >= oldest {
            // The buckets for seconds `oldest...newest` (none is newer than `current`).
            for second in oldest...min(newest, current) { busy += UInt64(buckets[Int(second % UInt64(Self.seconds))]) }
        }
        if let runningSince, now > runningSince { busy += now - max(runningSince, start) }
        return min(1, Double(busy) / Double(now - start))
    }

    /// Moves the window on to `second`, emptying the buckets of the seconds it passes.
    private mutating func roll(to second: UInt64) {
        guard second > newest else { return }
        let passed = min(UInt64(Self.seconds), second - newest)
        for step in 1...passed { buckets[Int((newest + step) % UInt64(Self.seconds))] = 0 }
        newest = second
    }
}
