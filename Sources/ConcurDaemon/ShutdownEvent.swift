import ConcurCore
import ConcurRuntime

/// The one shutdown event every part of the daemon observes, set by signals, the `Shutdown`
/// call (or a test).
///
/// It only escalates: nothing -> drain (first SIGTERM/SIGINT) -> cancel (a second one, or
/// SIGQUIT). Waiters are woken at every step.
package final class ShutdownEvent: Sendable {
    /// How far shutdown has gone.
    package enum Level: Int, Sendable, Comparable {
        /// Serving.
        case none
        /// Intake closed; running jobs finish.
        case drain
        /// Running jobs are interrupted.
        case cancel

        /// Orders levels from none to cancel.
        package static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    private let lock = ConditionLock()
    // Guarded by `lock`.
    nonisolated(unsafe) private var current = Level.none

    /// An event that has not happened.
    package init() {}

    /// The level reached so far.
    package var level: Level { lock.withLock { current } }

    /// Raises the level one step (or to `atLeast`, if higher) and returns the new level.
    @discardableResult
    package func escalate(atLeast minimum: Level = .drain) -> Level {
        lock.withLock {
            let next = Level(rawValue: min(current.rawValue + 1, Level.cancel.rawValue)) ?? .cancel
            current = max(next, minimum)
            lock.broadcast()
            return current
        }
    }

    /// Raises the level to `level` if it is lower (never one step further, as a signal does);
    /// returns the level and whether it changed.
    package func raise(to level: Level) -> (level: Level, changed: Bool) {
        lock.withLock {
            guard current < level else { return (current, false) }
            current = level
            lock.broadcast()
            return (current, true)
        }
    }

    /// Blocks until shutdown has begun; returns the level.
    package func wait() -> Level {
        lock.withLock {
            while current == .none { lock.wait() }
            return current
        }
    }
}
