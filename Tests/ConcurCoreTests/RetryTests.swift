import ConcurProtocol
import ConcurTestSupport
import Testing

@testable import ConcurCore

@Suite("Retries of jobs that fail on their own")
struct RetryTests {
    private static func failing(_ retries: Int, delay: Double = 1) -> JobSpec {
        JobSpec(.fail, retry: RetryPolicy(retries: retries, delay: delay))
    }

    /// Runs job 1 on worker 1 and reports it failed at `now`.
    private func failOnce(_ pool: inout PoolStateMachine, now: UInt64) throws {
        let job = try #require(PoolFixture.take(&pool, 1, now: now).first)
        _ = pool.finish(worker: 1, job: job.id, outcome: .failed("the command exited with status 3", output: nil), now: now + 10)
    }

    @Test("a failed run waits out its delay, then runs again; after the last retry the job fails, every run in its history")
    func retriesThenFails() throws {
        var pool = try PoolFixture.pool(workers: 1)
        _ = try pool.submit([Self.failing(2)], now: 0)
        try failOnce(&pool, now: 1)
        #expect(pool.job(1)?.state == .queued && pool.job(1)?.history.count == 1)
        #expect(pool.queuedCount == 1 && pool.retryingCount == 1)
        let first = RetryPolicy(retries: 2, delay: 1).wait(beforeRetry: 1, of: 1)
        let due = 11 + UInt64(first * 1e9)
        // Not before its delay: a worker finds nothing to run.
        _ = pool.tick(now: due - 1)
        #expect(PoolFixture.take(&pool, 1, now: due - 1).isEmpty)
        _ = pool.tick(now: due)
        try failOnce(&pool, now: due)
        #expect(pool.job(1)?.history.map(\.attempt) == [1, 2])
        let second = RetryPolicy(retries: 2, delay: 1).wait(beforeRetry: 2, of: 1)
        _ = pool.tick(now: due + 10 + UInt64(second * 1e9))
        try failOnce(&pool, now: due + 20 + UInt64(second * 1e9))
        let info = try #require(pool.job(1))
        #expect(info.state == .failed && info.attempts == 3 && info.history.count == 2 && info.retryAt == nil)
        #expect(pool.totals.failed == 1 && pool.totals.retried == 2)
    }

    @Test("a job restored while it waits out a retry's delay waits for the rest of it, not more, not less")
    func restoredRetryWaits() throws {
        var pool = try PoolFixture.pool(workers: 1)
        let failedAt: UInt64 = 5_000_000_000
        let attempt = AttemptRecord(attempt: 1, startedAt: failedAt - 1, finishedAt: failedAt, error: "exit 1")
        pool.restore(
            [
                JobRecord(
                    id: 1, spec: Self.failing(3, delay: 10), state: .queued, attempts: 1, submittedAt: 1, history: [attempt]),
                JobRecord(
                    id: 2, spec: Self.failing(3, delay: 1), state: .queued, attempts: 1, submittedAt: 1, history: [attempt]),
            ], nextJobID: 3, now: failedAt + 3_000_000_000)
        let due = failedAt + UInt64(RetryPolicy(retries: 3, delay: 10).wait(beforeRetry: 1, of: 1) * 1e9)
        // Job 2's delay (at most 1.25 s) passed while the daemon was down: it is queued at once.
        #expect(pool.retryingCount == 1 && pool.job(1)?.retryAt != nil && pool.job(2)?.retryAt == nil)
        #expect(pool.nextDue() == due)
        #expect(PoolFixture.take(&pool, 1, now: due - 1).map(\.id) == [2])
    }

    @Test("the wait doubles, is capped at an hour and jittered between 0.75 and 1.25, the same for the same job")
    func delays() {
        let policy = RetryPolicy(retries: 30, delay: 2)
        for retry in 1...20 {
            let wait = policy.wait(beforeRetry: retry, of: 42)
            let base = min(2 * Double(1 << (retry - 1)), 3600)
            #expect(wait >= base * 0.75 && wait < base * 1.25, "retry \(retry): \(wait)")
            #expect(wait == policy.wait(beforeRetry: retry, of: 42))
        }
        #expect(RetryPolicy(retries: 1, delay: 0).wait(beforeRetry: 1, of: 1) == 0)
    }

    @Test("a job that succeeds, is cancelled, or loses its worker is not retried by its policy")
    func onlyOwnFailures() throws {
        var pool = try PoolFixture.pool(workers: 1, model: .processes, maxAttempts: 1)
        _ = try pool.submit([Self.failing(3), Self.failing(3)], now: 0)
        let job = try #require(PoolFixture.take(&pool, 1).first)
        _ = pool.finish(worker: 1, job: job.id, outcome: PoolFixture.ok, now: 2)
        #expect(pool.job(1)?.state == .done && pool.job(1)?.history.isEmpty == true)
        _ = PoolFixture.take(&pool, 1, now: 3)
        _ = pool.workerExited(1, exit: .died(reason: "killed by SIGKILL"), now: 4)
        #expect(pool.job(2)?.state == .failed && pool.job(2)?.history.isEmpty == true)
    }

    @Test("failed and retried runs do not count against the attempts after worker deaths")
    func separateFromDeaths() throws {
        var pool = try PoolFixture.pool(workers: 1, model: .processes, maxAttempts: 2)
        _ = try pool.submit([Self.failing(3, delay: 0)], now: 0)
        for round in 0..<2 {
            try failOnce(&pool, now: UInt64(100 * round + 1))
            _ = pool.tick(now: UInt64(100 * round + 50))
        }
        // Third run: its worker dies; one death of two allowed, so it runs once more.
        _ = PoolFixture.take(&pool, 1, now: 300)
        _ = pool.workerExited(1, exit: .died(reason: "killed by SIGKILL"), now: 301)
        #expect(pool.job(1)?.state == .queued)
    }

    @Test(
        "a job waiting out its delay can be cancelled, is listed as queued, and a drain keeps it for the next start or cancels it"
    )
    func waitingJob() throws {
        var pool = try PoolFixture.pool(workers: 1)
        _ = try pool.submit([Self.failing(5, delay: 60), Self.failing(5, delay: 60)], now: 0)
        try failOnce(&pool, now: 1)
        #expect(pool.jobIDs(state: .queued, limit: 10) == [2, 1])
        #expect(pool.job(1)?.retryAt != nil)
        let (outcome, _) = try pool.cancel([1], reason: "cancelled by uid 0", now: 20)
        #expect(outcome.cancelled == [1] && pool.retryingCount == 0 && pool.job(1)?.state == .cancelled)

        var journaled = try PoolFixture.pool(workers: 1)
        journaled.startJournal()
        _ = try journaled.submit([Self.failing(5, delay: 60)], now: 0)
        try failOnce(&journaled, now: 1)
        #expect(
            journaled.takeJournalChanges().changes.contains { if case .retrying(1, _, attempts: 1) = $0 { true } else { false } })
        _ = journaled.beginDrain(now: 30)
        #expect(journaled.keptForRestart == 1 && journaled.retryingCount == 1 && journaled.job(1)?.state == .queued)

        // A run that fails during a drain: with a journal its retry waits there for the next start.
        var draining = try PoolFixture.pool(workers: 1)
        draining.startJournal()
        _ = try draining.submit([Self.failing(5, delay: 60)], now: 0)
        let running = try #require(PoolFixture.take(&draining, 1).first)
        _ = draining.beginDrain(now: 5)
        _ = draining.finish(worker: 1, job: running.id, outcome: .failed("exit 1", output: nil), now: 6)
        #expect(draining.job(1)?.state == .queued && draining.job(1)?.history.count == 1 && draining.keptForRestart == 1)

        var memory = try PoolFixture.pool(workers: 1)
        _ = try memory.submit([Self.failing(5, delay: 60)], now: 0)
        try failOnce(&memory, now: 1)
        _ = memory.beginDrain(now: 30)
        #expect(memory.job(1)?.state == .cancelled)
    }
}
