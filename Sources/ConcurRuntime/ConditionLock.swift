import ConcurCore
import Glibc

/// A mutex with condition variables (pthread), waiting on the monotonic clock.
///
/// `Synchronization.Mutex` has no condition variable; blocking worker threads need one.
/// `@unchecked Sendable`: the pthread objects live at stable heap addresses for the lock's
/// lifetime and pthread makes every operation on them thread-safe.
package final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// The condition most users need; more can be made with ``makeCondition()``.
    package let condition: Condition

    /// A new, unlocked lock. It spins briefly before sleeping when contended (glibc's adaptive
    /// mutex): critical sections here are short, and parking a thread in the kernel costs more.
    package init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
        pthread_mutex_init(mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
        condition = Condition()
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Another condition to wait on with this lock, for waiters that must not steal each
    /// other's signals.
    package func makeCondition() -> Condition { Condition() }

    /// Runs `body` holding the lock.
    @inline(__always)
    package func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits for `condition` (the default one if nil); call only while holding the lock.
    package func wait(_ condition: Condition? = nil) {
        pthread_cond_wait((condition ?? self.condition).pointer, mutex)
    }

    /// Waits for `condition` until the monotonic deadline (nanoseconds); false when it passed.
    /// Call only while holding the lock.
    package func wait(_ condition: Condition? = nil, untilMonotonic deadline: UInt64) -> Bool {
        var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        return pthread_cond_timedwait((condition ?? self.condition).pointer, mutex, &time) != ETIMEDOUT
    }

    /// Wakes one waiter of the default condition.
    package func signal() { condition.signal() }

    /// Wakes every waiter of the default condition.
    package func broadcast() { condition.broadcast() }
}

/// A condition variable on the monotonic clock, used with a ``ConditionLock``.
///
/// `@unchecked Sendable` for the same reason as ``ConditionLock``.
package final class Condition: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<pthread_cond_t>

    init() {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(pointer, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(pointer)
        pointer.deallocate()
    }

    /// Wakes one waiter.
    package func signal() { pthread_cond_signal(pointer) }

    /// Wakes every waiter.
    package func broadcast() { pthread_cond_broadcast(pointer) }
}
