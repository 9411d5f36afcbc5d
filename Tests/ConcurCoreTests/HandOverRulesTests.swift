import ConcurProtocol
import ConcurTestSupport
import Testing

@testable import ConcurCore

/// What the pool decides when it hands a job to a worker: whether an exec job may still run,
/// that a command is never batched behind another job, and that nothing is handed over while
/// the journal cannot record it.
@Suite("Hand-over rules of the pool state machine")
struct HandOverRulesTests {
    static let command = JobKind.exec(argv: ["/bin/true"])

    @Test("an exec job queued while exec was allowed fails at hand-over once it is not, with the reason")
    func execDecidedAtHandOver() throws {
        var pool = try PoolFixture.pool(workers: 1, allowExec: true)
        _ = try pool.submit(PoolFixture.specs(Self.command, .fail), now: 0)
        var configuration = pool.configuration
        configuration.allowExec = false
        try pool.updateConfiguration(configuration)
        let watch = try pool.addWatch(ids: [1])
        let taken = PoolFixture.take(&pool, 1, limit: 10)
        #expect(taken.map(\.id) == [2], "the exec job was handed over")
        #expect(pool.hasDeferredActions)
        let actions = pool.takeDeferredActions()
        #expect(!pool.hasDeferredActions)
        guard case .notify(let watchID, let job, let last) = actions.first else {
            Issue.record("no notification for the failed job: \(actions)")
            return
        }
        #expect(watchID == watch.id && last && job.id == 1)
        #expect(job.state == .failed && job.attempts == 0)
        #expect(job.error == PoolStateMachine.execNotAllowedReason)
        #expect(pool.totals.failed == 1)
    }

    @Test("a journal restored while exec is off: its exec jobs fail when they come up, the rest run")
    func restoredExec() throws {
        var pool = try PoolFixture.pool(workers: 1)
        pool.restore(
            [
                JobRecord(id: 1, spec: JobSpec(Self.command), state: .queued, attempts: 0, submittedAt: 1),
                JobRecord(id: 2, spec: JobSpec(.sleep(milliseconds: 1)), state: .queued, attempts: 0, submittedAt: 1),
            ], nextJobID: 3)
        #expect(PoolFixture.take(&pool, 1, limit: 4).map(\.id) == [2])
        _ = pool.takeDeferredActions()
        #expect(try pool.jobs(ids: [1]).first?.state == .failed)
    }

    @Test("an exec job goes alone to an idle worker: never behind another job, nor with others behind it")
    func execAlone() throws {
        var pool = try PoolFixture.pool(workers: 2, model: .processes, allowExec: true)
        _ = try pool.submit(PoolFixture.specs(.fail, .fail, Self.command, .fail, .fail), now: 0)
        // A batch stops before the command...
        #expect(PoolFixture.take(&pool, 1, limit: 10).map(\.id) == [1, 2])
        // ...a worker that still holds jobs does not get it...
        #expect(PoolFixture.take(&pool, 1, limit: 10).isEmpty)
        // ...an idle one gets it alone...
        #expect(PoolFixture.take(&pool, 2, limit: 10).map(\.id) == [3])
        #expect(pool.jobs(state: .running, limit: 10).map(\.id).contains(3), "its start was not recorded at hand-over")
        // ...and the jobs after it go on as before (an even share of the queue each).
        _ = pool.finish(worker: 1, job: 1, outcome: PoolFixture.ok, now: 2)
        _ = pool.finish(worker: 1, job: 2, outcome: PoolFixture.ok, now: 2)
        #expect(PoolFixture.take(&pool, 1, limit: 10).map(\.id) == [4])
    }

    @Test("while the journal cannot record, workers wait; when it can, they are woken and get the jobs")
    func journalFailure() throws {
        var pool = try PoolFixture.pool(workers: 2)
        #expect(pool.setJournalFailure("disk full", now: 0).isEmpty)
        #expect(pool.phase == .degraded)
        _ = try pool.submit(PoolFixture.specs(3), now: 0)
        #expect(pool.nextAssignment(for: 1, limit: 10, now: 1) == .wait)
        #expect(pool.nextAssignment(for: 2, limit: 10, now: 1) == .wait)
        #expect(pool.setJournalFailure("disk full", now: 2).isEmpty, "the same failure again changes nothing")
        #expect(pool.lastEvents.filter { $0.kind == .journal }.count == 1)
        let actions = pool.setJournalFailure(nil, now: 3)
        #expect(actions == [.wake(1), .wake(2)])
        #expect(pool.phase == .serving)
        #expect(PoolFixture.take(&pool, 1, limit: 10).count == 2)
        #expect(pool.lastEvents.last?.message.contains("records again") == true)
    }

    @Test("a retiring worker is told to retire even while the journal cannot record")
    func retireWhileFailing() throws {
        var pool = try PoolFixture.pool(workers: 2)
        _ = pool.setJournalFailure("disk full", now: 0)
        _ = try pool.resize(to: 1, now: 1)
        let retiring = try #require(pool.workers.values.first { $0.retiring }?.id)
        #expect(pool.nextAssignment(for: retiring, now: 2) == .retire)
    }
}
