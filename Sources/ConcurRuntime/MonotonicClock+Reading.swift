import CConcurShims
package import ConcurCore
import Glibc

/// Reading the clock, which the rules in ConcurCore never do.
extension MonotonicClock {
    /// A mapping whose wall-time offset is taken now (one `clock_gettime` of each clock).
    package init() {
        var wall = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        let monotonic = Self.now()
        self.init(wallMinusMonotonic: Double(wall.tv_sec) + Double(wall.tv_nsec) / 1e9 - Double(monotonic) / 1e9)
    }

    /// Nanoseconds on the monotonic clock (a vDSO call, no system call).
    @inline(__always)
    package static func now() -> UInt64 {
        concur_monotonic_nanoseconds()
    }
}
