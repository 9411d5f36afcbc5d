import ConcurProtocol
import ConcurTestSupport
import Testing

@testable import ConcurCore

@Suite("The pool's lifecycle")
struct PoolLifecycleTests {
    @Test("pause and resume move between serving and paused, and say when they change nothing")
    func pauseResume() throws {
        var pool = try PoolFixture.pool(workers: 1)
        #expect(pool.lifecycle == .serving && pool.intakeOpen && !pool.paused)
        #expect(pool.setPaused(false, now: 1).changed == false)
        #expect(pool.setPaused(true, now: 1).changed && pool.lifecycle == .paused && pool.intakeOpen)
        #expect(pool.setPaused(true, now: 2).changed == false && pool.lifecycle == .paused)
        #expect(pool.setPaused(false, now: 3).changed && pool.lifecycle == .serving)
    }

    @Test("a drain of a paused pool ends the pause for good: workers retire, pause and resume change nothing")
    func drainWhilePaused() throws {
        var pool = try PoolFixture.pool(workers: 2)
        _ = pool.setPaused(true, now: 1)
        let actions = pool.beginDrain(now: 2)
        #expect(pool.lifecycle == .draining && !pool.intakeOpen && !pool.paused && pool.phase == .draining)
        #expect(actions.filter { if case .wake = $0 { true } else { false } }.count == 2)
        #expect(pool.setPaused(false, now: 3).changed == false && pool.setPaused(true, now: 3).changed == false)
        #expect(pool.lifecycle == .draining)
        #expect(throws: SubmitError.shuttingDown) { try pool.submit(PoolFixture.specs(1), now: 4) }
        #expect(pool.beginDrain(now: 5).isEmpty && pool.lifecycle == .draining)
    }

    @Test("cancelling moves on to stopping, from serving or from a drain, and never back")
    func stopping() throws {
        var serving = try PoolFixture.pool(workers: 1)
        _ = serving.cancelRunning(reason: "SIGINT", now: 1)
        #expect(serving.lifecycle == .stopping && serving.phase == .stopping && serving.stopping)
        var draining = try PoolFixture.pool(workers: 1)
        _ = draining.beginDrain(now: 1)
        _ = draining.cancelRunning(reason: "drain timeout", now: 2)
        #expect(draining.lifecycle == .stopping)
        _ = draining.beginDrain(now: 3)
        #expect(draining.lifecycle == .stopping)
    }

    @Test("a journal that cannot record degrades serving and paused pools, and is not a lifecycle stage")
    func degraded() throws {
        var pool = try PoolFixture.pool(workers: 1)
        _ = pool.setJournalFailure("disk full", now: 1)
        #expect(pool.phase == .degraded && pool.lifecycle == .serving)
        _ = pool.setPaused(true, now: 2)
        #expect(pool.phase == .degraded && pool.lifecycle == .paused)
        _ = pool.beginDrain(now: 3)
        #expect(pool.phase == .draining)
        _ = pool.setJournalFailure(nil, now: 4)
        #expect(pool.phase == .draining && pool.journalFailure == nil)
    }
}
