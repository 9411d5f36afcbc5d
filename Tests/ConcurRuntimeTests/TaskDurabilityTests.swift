import ConcurCore
import ConcurProtocol
import ConcurRuntime
import ConcurTestSupport
import Foundation
import Synchronization
import Testing

/// A store that commits a moment later on a thread of its own, and counts the callers that
/// blocked on it: the tasks model must never be one of them (a parked cooperative thread is a
/// thread fewer for every other task).
final class SlowCommitGate: JobStore {
    let blockingWaits = Atomic<Int>(0)
    let callbacks = Atomic<Int>(0)

    func waitUntilDurable(_ count: UInt64) throws(JournalFailure) {
        blockingWaits.add(1, ordering: .relaxed)
        usleep(500)
    }

    func whenDurable(_ count: UInt64, _ completion: @escaping @Sendable (JournalFailure?) -> Void) {
        callbacks.add(1, ordering: .relaxed)
        Thread.detachNewThread {
            usleep(500)
            completion(nil)
        }
    }

    var failure: JournalFailure? { nil }
    var recordsChanges: Bool { true }
    func takeRestored() -> (records: [JobRecord], nextJobID: JobID)? { nil }
    func follow(_ source: any JobChangeSource) throws(JobStoreStartError) {}
    func setRetention(_ retention: JobRetention) {}
    func close() {}
}

@Suite("Task workers and the journal")
struct TaskDurabilityTests {
    @Test("task workers suspend while their hand-over is committed, never blocking an executor thread")
    func suspends() throws {
        let gate = SlowCommitGate()
        let state = PoolStateMachine(
            model: .tasks, configuration: .init(maxQueue: 10_000, maxWorkers: 8, retainFinished: 10_000), clock: MonotonicClock())
        let pool = Pool(state: state, models: [InProcessModels.tasks], store: gate)
        _ = try pool.resize(to: 6)
        #expect(pool.waitUntilWorkersStarted(deadline: MonotonicClock.now() + 10_000_000_000))
        _ = try pool.submit(Array(repeating: JobSpec(.sleep(milliseconds: 20)), count: 60)) { _ in }
        #expect(eventually { pool.read { $0.totals.done } == 60 })
        #expect(gate.blockingWaits.load(ordering: .relaxed) == 0)
        #expect(gate.callbacks.load(ordering: .relaxed) > 1)
        pool.beginDrain()
        #expect(pool.waitUntilDrained(deadline: MonotonicClock.now() + 10_000_000_000))
    }
}
