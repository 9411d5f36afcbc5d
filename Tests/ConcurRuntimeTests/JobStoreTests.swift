import ConcurCore
import ConcurProtocol
import ConcurRuntime
import ConcurTestSupport
import Synchronization
import Testing

/// The pool reaches its store only through ``JobStore``: what it collects and awaits depends on
/// the store, not on a journal being there.
@Suite("The job store seam")
struct JobStoreTests {
    func pool(_ store: any JobStore) -> Pool {
        let state = PoolStateMachine(
            model: .threads, configuration: .init(maxQueue: 100, maxWorkers: 4, retainFinished: 100), clock: MonotonicClock())
        return Pool(state: state, models: [ThreadModel()], store: store)
    }

    @Test("memory collects nothing and replies at once; a recording store gets every change, claims naming the worker")
    func collects() throws {
        let memory = pool(MemoryJobStore())
        _ = try memory.submit([JobSpec(.fail), JobSpec(.fail)])
        #expect(memory.read { $0.journalChangeCount } == 0 && memory.takeJournalChanges().changes.isEmpty)

        let recording = pool(SlowCommitGate())
        _ = try recording.submit([JobSpec(.sleep(milliseconds: 1)), JobSpec(.sleep(milliseconds: 1))])
        #expect(recording.read { $0.journalChangeCount } == 2)
        _ = try recording.resize(to: 1)
        #expect(eventually { recording.read { $0.totals.done } == 2 })
        let changes = recording.takeJournalChanges().changes
        #expect(changes.contains { if case .accepted(1, _, _) = $0 { true } else { false } })
        #expect(changes.filter { if case .finished = $0 { true } else { false } }.count == 2)
        // A worker that took both claimed the second while running the first.
        let claims = changes.compactMap { if case .claimed(let id, let worker) = $0 { (id, worker) } else { nil } }
        #expect(claims.allSatisfy { $0.1 == 1 }, "\(claims)")
        recording.beginDrain()
        #expect(recording.waitUntilDrained(deadline: MonotonicClock.now() + 5_000_000_000))
    }

    @Test("a store's restored records are put back once, by the supervisor")
    func restores() {
        let store = RestoringStore()
        let supervisor = Supervisor(configuration: .init(workers: 1), models: [ThreadModel()], version: "test", store: store)
        #expect(supervisor.status().queued == 1 && supervisor.pool.read { $0.job(7)?.spec } == JobSpec(.fail))
        #expect(store.takeRestored() == nil)
    }
}

/// A store that held one queued job, 7, at start.
final class RestoringStore: JobStore {
    let restored = Mutex<(records: [JobRecord], nextJobID: JobID)?>(
        ([JobRecord(id: 7, spec: JobSpec(.fail), state: .queued, attempts: 0, submittedAt: 1)], 8))
    var recordsChanges: Bool { false }
    func takeRestored() -> (records: [JobRecord], nextJobID: JobID)? {
        restored.withLock { held in
            defer { held = nil }
            return held
        }
    }
    func follow(_ source: any JobChangeSource) throws(JobStoreStartError) {}
    func waitUntilDurable(_ count: UInt64) throws(JournalFailure) {}
    func whenDurable(_ count: UInt64, _ completion: @escaping @Sendable (JournalFailure?) -> Void) { completion(nil) }
    var failure: JournalFailure? { nil }
    func setRetention(_ retention: JobRetention) {}
    func close() {}
}
