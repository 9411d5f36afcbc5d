import ConcurCore
import ConcurProtocol

/// Carries the end of a job that jobs of other pools run after, from its pool to them, on a
/// thread of its own.
///
/// A pool hands an end over with ``announce(_:_:from:)`` while it holds its own lock (the
/// relay's lock is taken last and held only to queue it); the relay's thread delivers it with
/// no pool's lock held, so no two pools' locks are ever held together. A cascade (an end that
/// cancels a job another pool waits for, and so on) goes round the queue, never deeper into the
/// stack.
///
/// `@unchecked Sendable`: `queue` and `started` are guarded by `lock`.
final class DependencyRelay: @unchecked Sendable {
    private let lock = ConditionLock()
    private var queue: [(source: PoolName, id: JobID, state: JobState)] = []
    private var started = false
    private let deliver: @Sendable (PoolName, JobID, JobState) -> Void

    /// A relay that hands each end to `deliver` (the source pool's name, the job, how it ended).
    init(deliver: @escaping @Sendable (PoolName, JobID, JobState) -> Void) {
        self.deliver = deliver
    }

    /// Queues the end of `id` for delivery; starts the relay's thread the first time.
    func announce(_ id: JobID, _ state: JobState, from source: PoolName) {
        let start = lock.withLock { () -> Bool in
            queue.append((source, id, state))
            lock.broadcast()
            defer { started = true }
            return !started
        }
        guard start else { return }
        do {
            try OSThread.start(name: "concur-relay") { [self] in run() }
        } catch {
            // No thread: the end waits in the queue, and the next announcement tries again.
            lock.withLock { started = false }
        }
    }

    private func run() -> Never {
        while true {
            let batch = lock.withLock { () -> [(source: PoolName, id: JobID, state: JobState)] in
                while queue.isEmpty { lock.wait() }
                defer { queue.removeAll(keepingCapacity: true) }
                return queue
            }
            for end in batch { deliver(end.source, end.id, end.state) }
        }
    }
}
