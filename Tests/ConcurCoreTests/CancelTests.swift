import ConcurProtocol
import ConcurTestSupport
import Testing

@testable import ConcurCore

@Suite("Cancelling jobs")
struct CancelTests {
    private let reason = "cancelled by uid 1000"

    private func state(_ pool: PoolStateMachine, _ id: JobID) -> JobState? { pool.job(id)?.state }

    @Test("a queued job ends cancelled at once with the reason, and no worker is handed it")
    func queued() throws {
        var pool = try PoolFixture.pool(workers: 1)
        _ = try pool.submit(PoolFixture.specs(3, .sleep(milliseconds: 1)), now: 1)
        let (outcome, _) = try pool.cancel([2], reason: reason, now: 2)
        #expect(outcome.cancelled == [2] && outcome.stopping.isEmpty)
        #expect(state(pool, 2) == .cancelled && pool.job(2)?.error == reason)
        #expect(pool.queuedCount == 2 && pool.totals.cancelled == 1)
        #expect(PoolFixture.take(&pool, 1, limit: 8).map(\.id) == [1, 3])
    }

    @Test("an unknown id or a job that already ended refuses the whole call: nothing is cancelled")
    func allOrNone() throws {
        var pool = try PoolFixture.pool(workers: 1)
        _ = try pool.submit(PoolFixture.specs(2, .sleep(milliseconds: 1)), now: 1)
        #expect(throws: CancelError.noSuchJob(9)) { try pool.cancel([1, 9], reason: reason, now: 2) }
        let job = try #require(PoolFixture.take(&pool, 1).first)
        _ = pool.finish(worker: 1, job: job.id, outcome: PoolFixture.ok, now: 3)
        #expect(throws: CancelError.alreadyFinished(1, .done)) { try pool.cancel([2, 1], reason: reason, now: 4) }
        #expect(state(pool, 2) == .queued && pool.totals.cancelled == 0)
    }

    @Test("a running job is interrupted; it ends cancelled with the reason, or as it ended if it ended first")
    func running() throws {
        var pool = try PoolFixture.pool(workers: 2)
        _ = try pool.submit(PoolFixture.specs(2, .sleep(milliseconds: 1000)), now: 1)
        _ = PoolFixture.take(&pool, 1)
        _ = PoolFixture.take(&pool, 2)
        let (outcome, actions) = try pool.cancel([1, 2], reason: reason, now: 2)
        #expect(outcome.stopping == [1, 2] && outcome.cancelled.isEmpty)
        #expect(actions.contains(.interrupt(1, job: 1)) && actions.contains(.interrupt(2, job: 2)))
        #expect(state(pool, 1) == .running)
        // Cancelled again while it stops: still stopping, nothing told twice.
        let (again, more) = try pool.cancel([1], reason: reason, now: 3)
        #expect(again.stopping == [1] && more.isEmpty)
        _ = pool.finish(worker: 1, job: 1, outcome: .cancelled(JobOutcome.interruptedReason), now: 4)
        _ = pool.finish(worker: 2, job: 2, outcome: PoolFixture.ok, now: 4)
        #expect(state(pool, 1) == .cancelled && pool.job(1)?.error == reason)
        #expect(state(pool, 2) == .done)
        #expect(pool.cancellingCount == 0)
    }

    @Test("a job a worker holds and has not started is taken back from it and ends cancelled; the others return")
    func held() throws {
        var pool = try PoolFixture.pool(workers: 1, model: .processes)
        _ = try pool.submit(PoolFixture.specs(4, .sleep(milliseconds: 1)), now: 1)
        #expect(PoolFixture.take(&pool, 1, limit: 4).map(\.id) == [1, 2, 3, 4])
        let (outcome, actions) = try pool.cancel([2], reason: reason, now: 2)
        #expect(outcome.stopping == [2] && actions == [.release(1)])
        // The child gives back every job it had not started.
        _ = pool.returnJobs(worker: 1, ids: [2, 3, 4], now: 3)
        #expect(state(pool, 2) == .cancelled && pool.job(2)?.error == reason)
        #expect(pool.queuedCount == 2 && state(pool, 1) == .running)
    }

    @Test("a held job the worker started before it could give it back is interrupted once the pool sees it run")
    func heldThenStarted() throws {
        var pool = try PoolFixture.pool(workers: 1, model: .processes)
        _ = try pool.submit(PoolFixture.specs(4, .sleep(milliseconds: 1)), now: 1)
        _ = PoolFixture.take(&pool, 1, limit: 4)
        _ = try pool.cancel([2], reason: reason, now: 2)
        // The child had already moved on: job 1's report comes, then job 2 runs.
        let after = pool.finish(worker: 1, job: 1, outcome: PoolFixture.ok, now: 3)
        #expect(after.contains(.interrupt(1, job: 2)))
        _ = pool.finish(worker: 1, job: 2, outcome: .cancelled(JobOutcome.interruptedReason), now: 4)
        #expect(state(pool, 2) == .cancelled && pool.job(2)?.error == reason)
    }

    @Test("a progress page showing a cancelled job running gets it interrupted at the next tick")
    func tickCatchesUp() throws {
        var pool = try PoolFixture.pool(workers: 1, model: .processes)
        _ = try pool.submit(PoolFixture.specs(2, .sleep(milliseconds: 1)), now: 1)
        _ = PoolFixture.take(&pool, 1, limit: 2)
        _ = try pool.cancel([2], reason: reason, now: 2)
        let actions = pool.tick(now: 3, running: [1: ProgressReport(running: 2, since: 2, lastFinished: 1)])
        #expect(actions.contains(.interrupt(1, job: 2)))
        #expect(pool.tick(now: 4, running: [1: ProgressReport(running: 2, since: 2, lastFinished: 1)]).isEmpty)
    }

    @Test("a cancel overtakes a time limit, and ends a job a preemption would have put back")
    func otherInterrupts() throws {
        var pool = try PoolFixture.pool(workers: 1)
        _ = try pool.submit([JobSpec(.sleep(milliseconds: 100_000), timeout: 1)], now: 0)
        _ = PoolFixture.take(&pool, 1, now: 0)
        #expect(pool.tick(now: 2_000_000_000).contains(.interrupt(1, job: 1)))
        #expect(try pool.cancel([1], reason: reason, now: 2_000_000_001).1 == [.interrupt(1, job: 1)])
        _ = pool.finish(worker: 1, job: 1, outcome: .cancelled(JobOutcome.interruptedReason), now: 2_000_000_002)
        #expect(state(pool, 1) == .cancelled && pool.job(1)?.error == reason)

        var switching = try PoolFixture.pool(workers: 1)
        _ = try switching.submit(PoolFixture.specs(1, .sleep(milliseconds: 100_000)), now: 1)
        _ = PoolFixture.take(&switching, 1)
        _ = try switching.requestSwitch(to: .tasks, preempt: true, now: 2)
        #expect(try switching.cancel([1], reason: reason, now: 3).1.isEmpty)
        _ = switching.finish(worker: 1, job: 1, outcome: .cancelled(JobOutcome.interruptedReason), now: 4)
        #expect(state(switching, 1) == .cancelled && switching.job(1)?.error == reason)
        #expect(switching.queuedCount == 0)
    }

    @Test("a worker that dies while its job is being cancelled does not get the job retried")
    func deathWhileCancelling() throws {
        var pool = try PoolFixture.pool(workers: 1, model: .processes)
        _ = try pool.submit(PoolFixture.specs(2, .sleep(milliseconds: 100_000)), now: 1)
        _ = PoolFixture.take(&pool, 1, limit: 2)
        _ = try pool.cancel([1, 2], reason: reason, now: 2)
        _ = pool.workerExited(1, exit: .died(reason: "killed by SIGKILL"), now: 3)
        #expect(state(pool, 1) == .cancelled && state(pool, 2) == .cancelled)
        #expect(pool.queuedCount == 0 && pool.job(1)?.error == reason)
    }

    @Test("cancelQueued ends what waits (queued and held), not what runs")
    func everyQueued() throws {
        var pool = try PoolFixture.pool(workers: 1, model: .processes)
        _ = try pool.submit(PoolFixture.specs(5, .sleep(milliseconds: 1)), now: 1)
        _ = PoolFixture.take(&pool, 1, limit: 2)
        let (outcome, actions) = pool.cancelQueued(reason: reason, now: 2)
        #expect(outcome.cancelled == [3, 4, 5] && outcome.stopping == [2] && actions.contains(.release(1)))
        #expect(state(pool, 1) == .running && pool.queuedCount == 0)
    }

    @Test("with a journal: a running job's cancel is recorded; one a drain kept for the next start ends for good")
    func journaled() throws {
        var pool = try PoolFixture.pool(workers: 1)
        pool.startJournal()
        _ = try pool.submit(PoolFixture.specs(3, .sleep(milliseconds: 1)), now: 1)
        _ = PoolFixture.take(&pool, 1)
        _ = pool.takeJournalChanges()
        _ = try pool.cancel([1], reason: reason, now: 2)
        #expect(pool.takeJournalChanges().changes == [.cancelRequested(1, reason: reason)])
        _ = pool.beginDrain(now: 3)
        #expect(pool.keptForRestart == 2)
        let (outcome, _) = pool.cancelQueued(reason: reason, now: 4)
        #expect(outcome.cancelled == [2, 3] && pool.keptForRestart == 0)
        #expect(state(pool, 2) == .cancelled && state(pool, 3) == .cancelled)
        let finished = pool.takeJournalChanges().changes.filter { if case .finished = $0 { true } else { false } }
        #expect(finished.count == 2)
    }
}
