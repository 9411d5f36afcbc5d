import ConcurProtocol
import ConcurTestSupport
import Testing

@testable import ConcurCore

@Suite("At-least-once and at-most-once delivery")
struct DeliveryTests {
    private static let once = JobSpec(.sleep(milliseconds: 100_000), delivery: .atMostOnce)

    @Test("a worker death retries an at-least-once job but fails an at-most-once one with the reason")
    func workerDeath() throws {
        var pool = try PoolFixture.pool(workers: 2, model: .processes)
        _ = try pool.submit([JobSpec(.sleep(milliseconds: 100_000)), Self.once], now: 1)
        _ = PoolFixture.take(&pool, 1)
        _ = PoolFixture.take(&pool, 2)
        _ = pool.workerExited(1, exit: .died(reason: "worker 1 was killed by SIGKILL"), now: 2)
        _ = pool.workerExited(2, exit: .died(reason: "worker 2 was killed by SIGKILL"), now: 2)
        #expect(pool.job(1)?.state == .queued)
        #expect(pool.job(2)?.state == .failed)
        #expect(pool.job(2)?.error == "worker 2 was killed by SIGKILL while it ran; it is at-most-once, so it is not run again")
    }

    @Test("a job a dead child finished without reporting runs again, unless it is at-most-once")
    func unreportedFinish() throws {
        var pool = try PoolFixture.pool(workers: 1, model: .processes)
        _ = try pool.submit([Self.once, JobSpec(.fail), JobSpec(.fail)], now: 1)
        #expect(PoolFixture.take(&pool, 1, limit: 3).count == 3)
        // The child had finished job 1 and was running job 2 when it died.
        _ = pool.workerExited(
            1, exit: .died(reason: "killed", progress: ProgressReport(running: 2, since: 1, lastFinished: 1)), now: 2)
        #expect(pool.job(1)?.state == .failed && pool.job(1)?.error?.contains("at-most-once") == true)
        #expect(pool.job(2)?.state == .queued && pool.job(3)?.state == .queued)
    }

    @Test("a preempting switch lets an at-most-once job finish where it runs")
    func preemptSpares() throws {
        var pool = try PoolFixture.pool(workers: 2)
        _ = try pool.submit([JobSpec(.sleep(milliseconds: 100_000)), Self.once], now: 1)
        _ = PoolFixture.take(&pool, 1)
        _ = PoolFixture.take(&pool, 2)
        let (_, actions) = try pool.setModel(.tasks, preempt: true, now: 2)
        #expect(actions.contains(.interrupt(1, job: nil)))
        #expect(!actions.contains(.interrupt(2, job: nil)))
    }

    @Test(
        "with a journal, a shutdown that interrupts an at-most-once job ends it cancelled instead of keeping it for the next start"
    )
    func shutdownWithJournal() throws {
        var pool = try PoolFixture.pool(workers: 2)
        pool.startJournal()
        _ = try pool.submit([JobSpec(.sleep(milliseconds: 100_000)), Self.once], now: 1)
        _ = PoolFixture.take(&pool, 1)
        _ = PoolFixture.take(&pool, 2)
        _ = pool.cancelRunning(reason: "interrupted: SIGTERM during shutdown", now: 2)
        _ = pool.finish(worker: 1, job: 1, outcome: .cancelled(JobOutcome.interruptedReason), now: 3)
        _ = pool.finish(worker: 2, job: 2, outcome: .cancelled(JobOutcome.interruptedReason), now: 3)
        #expect(pool.job(1)?.state == .queued && pool.keptForRestart == 1)
        #expect(pool.job(2)?.state == .cancelled && pool.job(2)?.error == "interrupted: SIGTERM during shutdown")
    }
}
