/// How many jobs a pool's lane keeps claimed ahead of its workers: the depth of its buffer.
///
/// A claim is a round trip and a commit, so a buffer of a few jobs caps short jobs at a few
/// per commit, while a deep buffer of long jobs keeps them from the other nodes. The depth is
/// what the workers take in ``horizon`` at the pace they took jobs over the last window of
/// at least ``window``, never less than twice the workers (at least 4) nor more than 4,096: a
/// node holds about 0.2 s of work ahead, however long its jobs. The lane claims when the buffer
/// is down to half the depth. A buffer found empty after a claim that brought all it asked
/// for grows the depth fourfold at once (the workers waited, so the pace measured is the
/// lane's, not theirs): a burst of short jobs reaches the full depth in a few claims rather
/// than a few windows. Pure: the lane's thread owns it and tells it the time.
package struct ClaimDepth: Sendable, Equatable {
    /// The deepest buffer a lane keeps.
    package static let maximum = 4096
    /// How much work, at the measured pace, a lane holds ahead of its workers.
    package static let horizon = 0.2
    /// The shortest span the pace is measured over.
    package static let window = 0.05

    /// The depth the lane claims up to now.
    package private(set) var depth: Int
    private var lastBuffered = 0
    private var taken = 0
    private var windowStart: Double?
    private var asked = 0
    private var lastClaimFull = false

    /// The depth for a pool of `workers` workers, before its pace is known.
    package init(workers: Int) {
        depth = Self.floor(workers)
    }

    /// The jobs to claim at `now` (seconds, monotonic) with `buffered` jobs buffered and
    /// `workers` workers, or 0 when the buffer is deep enough.
    package mutating func wanted(buffered: Int, workers: Int, at now: Double) -> Int {
        taken += max(0, lastBuffered - buffered)
        lastBuffered = buffered
        if let start = windowStart {
            if now - start >= Self.window {
                let pace = Double(taken) / (now - start)
                depth = Int(min(pace * Self.horizon, Double(Self.maximum)))
                (taken, windowStart) = (0, now)
            }
        } else {
            windowStart = now
        }
        if buffered == 0 && lastClaimFull {
            depth *= 4
            lastClaimFull = false
        }
        depth = min(max(depth, Self.floor(workers)), Self.maximum)
        asked = buffered <= depth / 2 ? depth - buffered : 0
        return asked
    }

    /// Records that a claim brought `got` jobs into the buffer.
    package mutating func claimed(_ got: Int) {
        lastBuffered += got
        lastClaimFull = got > 0 && got >= asked
    }

    /// Records that `count` jobs left the buffer without being taken (given back to the queue),
    /// so that they do not count as the workers' pace.
    package mutating func gaveBack(_ count: Int) {
        lastBuffered = max(0, lastBuffered - count)
    }

    private static func floor(_ workers: Int) -> Int { min(max(2 * workers, 4), maximum) }
}
