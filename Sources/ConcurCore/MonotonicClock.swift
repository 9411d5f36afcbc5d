import CConcurShims
import Glibc

/// Time as the pool measures it: nanoseconds of CLOCK_MONOTONIC, and their mapping to Unix time.
///
/// Latencies use the monotonic clock, which never jumps; records shown to people are converted
/// to wall-clock time with the offset taken once at start-up.
public struct MonotonicClock: Sendable {
    private let wallMinusMonotonic: Double

    /// A clock whose wall-time offset is taken now.
    public init() {
        var wall = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        let monotonic = Self.now()
        wallMinusMonotonic = Double(wall.tv_sec) + Double(wall.tv_nsec) / 1e9 - Double(monotonic) / 1e9
    }

    /// Nanoseconds on the monotonic clock.
    @inline(__always)
    public static func now() -> UInt64 {
        concur_monotonic_nanoseconds()
    }

    /// The Unix time (seconds) of a monotonic instant.
    public func unixTime(_ monotonic: UInt64) -> Double {
        Double(monotonic) / 1e9 + wallMinusMonotonic
    }

    /// The monotonic instant of a Unix time (seconds), for times read back from disk; a time
    /// before this boot is clamped to the clock's start.
    public func monotonic(unixTime: Double) -> UInt64 {
        let seconds = unixTime - wallMinusMonotonic
        return seconds > 0 ? UInt64(seconds * 1e9) : 1
    }
}
