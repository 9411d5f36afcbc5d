/// Time as the pool measures it: nanoseconds of CLOCK_MONOTONIC, and their mapping to Unix time.
///
/// Only the mapping lives here: the rules never read a clock, they are given `now:`. Reading
/// the clock (``MonotonicClock/now()``, and a mapping whose offset is taken at start-up) is the
/// runtime's, in ConcurRuntime. Latencies use the monotonic clock, which never jumps; records
/// shown to people are converted to wall-clock time with the offset taken once.
package struct MonotonicClock: Sendable {
    private let wallMinusMonotonic: Double

    /// A mapping whose Unix time is `wallMinusMonotonic` seconds ahead of the monotonic clock.
    package init(wallMinusMonotonic: Double) {
        self.wallMinusMonotonic = wallMinusMonotonic
    }

    /// The Unix time (seconds) of a monotonic instant.
    package func unixTime(_ monotonic: UInt64) -> Double {
        Double(monotonic) / 1e9 + wallMinusMonotonic
    }

    /// The monotonic instant of a Unix time (seconds), for times read back from disk; a time
    /// before this boot is clamped to the clock's start.
    package func monotonic(unixTime: Double) -> UInt64 {
        let seconds = unixTime - wallMinusMonotonic
        return seconds > 0 ? UInt64(seconds * 1e9) : 1
    }
}
