import ConcurProtocol
import ConcurTestSupport
import Testing

@testable import ConcurCore

/// The rules of where a job waits before a worker takes it: priorities, start times and the
/// jobs it runs after. No clock: `now` is given, and the fixture's mapping makes Unix seconds
/// equal monotonic nanoseconds / 1e9.
@Suite("Priorities, start times and dependencies")
struct PlacementTests {
    /// An instant in 2027, so that start times are plausible Unix times.
    static let now: UInt64 = 1_800_000_000_000_000_000
    static var unixNow: Double { Double(now) / 1e9 }

    private static func sleep(_ ms: Int, _ placement: JobPlacement = JobPlacement()) -> JobSpec {
        JobSpec(.sleep(milliseconds: ms), placement: placement)
    }

    /// The ids worker 1 is handed, one at a time, finishing each, until it finds none.
    private static func drainOrder(_ pool: inout PoolStateMachine, now: UInt64 = now) -> [JobID] {
        var order: [JobID] = []
        while let job = PoolFixture.take(&pool, 1, now: now).first {
            order.append(job.id)
            _ = pool.finish(worker: 1, job: job.id, outcome: PoolFixture.ok, now: now)
        }
        return order
    }

    @Test("a worker takes the highest priority first, first in first out within one; one given back heads its priority")
    func priorityOrder() throws {
        var pool = try PoolFixture.pool(workers: 1)
        _ = try pool.submit(
            [
                Self.sleep(1), Self.sleep(2, JobPlacement(priority: 5)), Self.sleep(3, JobPlacement(priority: -3)),
                Self.sleep(4, JobPlacement(priority: 5)), Self.sleep(5, JobPlacement(priority: 10)),
            ], now: Self.now)
        #expect(pool.jobs(state: .queued, limit: 10).map(\.id) == [5, 2, 4, 1, 3])
        // Worker 1 takes two (5, then 2) and gives back its second: 2 is next again, ahead of 4.
        let held = PoolFixture.take(&pool, 1, limit: 2, now: Self.now)
        #expect(held.map(\.id) == [5, 2])
        _ = pool.returnJobs(worker: 1, ids: [2], now: Self.now)
        _ = pool.finish(worker: 1, job: 5, outcome: PoolFixture.ok, now: Self.now)
        #expect(Self.drainOrder(&pool) == [2, 4, 1, 3])
    }

    @Test("the queue keeps every priority apart: removal, prefix and emptying keep the order of running")
    func queueLevels() {
        var queue = JobQueue(limit: 10)
        queue.append(contentsOf: 1..<4)
        queue.append(4, priority: 10)
        queue.append(5, priority: -10)
        queue.pushFront(6, priority: 0)
        #expect(queue.count == 6 && queue.first == 4)
        #expect(queue.prefix(3) == [4, 6, 1])
        #expect(queue.remove([6, 5, 99]) == [6, 5])
        #expect(queue.prefix(10) == [4, 1, 2, 3] && queue.count == 4)
        #expect(queue.canAccept(3, others: 3) && !queue.canAccept(3, others: 4))
        #expect(queue.removeAll() == [4, 1, 2, 3] && queue.isEmpty && queue.first == nil && queue.popFirst() == nil)
    }

    @Test("a scheduled job is not handed out before its time and is queued at it; the tick and releaseDue both queue it")
    func scheduledStart() throws {
        var pool = try PoolFixture.pool(workers: 1)
        let at = Self.unixNow + 30
        _ = try pool.submit([Self.sleep(1, JobPlacement(startAt: at)), Self.sleep(2)], now: Self.now)
        #expect(pool.job(1)?.state == .scheduled && pool.scheduledCount == 1 && pool.queuedCount == 1)
        #expect(pool.nextDue() == Self.now + 30_000_000_000)
        #expect(Self.drainOrder(&pool) == [2])
        let due = Self.now + 30_000_000_000
        #expect(pool.releaseDue(now: due - 1).isEmpty && pool.job(1)?.state == .scheduled)
        // The worker waits for work, and the job's time wakes it.
        #expect(pool.releaseDue(now: due) == [.wake(1)])
        #expect(pool.job(1)?.state == .queued && pool.nextDue() == nil)
        #expect(Self.drainOrder(&pool, now: due) == [1])

        _ = try pool.submit([Self.sleep(3, JobPlacement(startAt: Self.unixNow + 60))], now: Self.now)
        _ = pool.tick(now: Self.now + 60_000_000_000)
        #expect(pool.job(3)?.state == .queued)
    }

    @Test("a start time a second or more in the past, or more than a year ahead, is refused with the reason")
    func startTimeBounds() throws {
        var pool = try PoolFixture.pool(workers: 1)
        for startAt in [Self.unixNow - 2, Self.unixNow + JobLimits.furthestStart + 1] {
            #expect {
                _ = try pool.submit([Self.sleep(1), Self.sleep(1, JobPlacement(startAt: startAt))], now: Self.now)
            } throws: { error in
                guard case .badStartTime(1, let reason) = error as? SubmitError else { return false }
                return reason.contains(startAt < Self.unixNow ? "in the past" : "more than a year")
            }
        }
        #expect(pool.totals.submitted == 0)
        // Half a second ago: a client's now, late by its trip to the daemon; it starts at once.
        _ = try pool.submit([Self.sleep(1, JobPlacement(startAt: Self.unixNow - 0.5))], now: Self.now)
        #expect(pool.job(1)?.state == .queued)
    }

    @Test("a job runs once all the jobs it runs after ended done, and is then scheduled if its time has not come")
    func dependenciesInOrder() throws {
        var pool = try PoolFixture.pool(workers: 1)
        _ = try pool.submit([Self.sleep(1), Self.sleep(2)], now: Self.now)
        _ = try pool.submit([Self.sleep(3, JobPlacement(after: [1, 2]))], now: Self.now)
        _ = try pool.submit([Self.sleep(4, JobPlacement(startAt: Self.unixNow + 10, after: [3]))], now: Self.now)
        #expect(pool.job(3)?.state == .waiting && pool.job(3)?.waitingFor == [1, 2] && pool.waitingCount == 2)
        let first = try #require(PoolFixture.take(&pool, 1, now: Self.now).first)
        _ = pool.finish(worker: 1, job: first.id, outcome: PoolFixture.ok, now: Self.now)
        #expect(pool.job(3)?.waitingFor == [2])
        #expect(Self.drainOrder(&pool) == [2, 3])
        // 4 waited for 3; now it waits for its time.
        #expect(pool.job(4)?.state == .scheduled)
        _ = pool.tick(now: Self.now + 10_000_000_000)
        #expect(Self.drainOrder(&pool, now: Self.now + 10_000_000_000) == [4])
    }

    @Test("a job one it runs after fails or is cancelled is cancelled, naming that job, and so on down the chain")
    func cancelCascade() throws {
        var pool = try PoolFixture.pool(workers: 1)
        _ = try pool.submit([JobSpec(.fail)], now: Self.now)
        _ = try pool.submit([Self.sleep(2, JobPlacement(after: [1]))], now: Self.now)
        _ = try pool.submit([Self.sleep(3, JobPlacement(after: [2])), Self.sleep(4)], now: Self.now)
        let job = try #require(PoolFixture.take(&pool, 1, now: Self.now).first)
        _ = pool.finish(worker: 1, job: job.id, outcome: .failed("failed on purpose"), now: Self.now)
        #expect(pool.job(2)?.state == .cancelled && pool.job(2)?.error == "job 1, which it runs after, failed")
        #expect(pool.job(3)?.state == .cancelled && pool.job(3)?.error == "job 2, which it runs after, was cancelled")
        #expect(pool.waitingCount == 0 && pool.totals.cancelled == 2)
        // Submitted after its job failed: cancelled at once, for the same reason.
        _ = try pool.submit([Self.sleep(5, JobPlacement(after: [1]))], now: Self.now)
        #expect(pool.job(5)?.state == .cancelled && pool.job(5)?.error == "job 1, which it runs after, failed")
        // After a job that ended done: queued at once.
        #expect(Self.drainOrder(&pool) == [4])
        _ = try pool.submit([Self.sleep(6, JobPlacement(after: [4]))], now: Self.now)
        #expect(pool.job(6)?.state == .queued)
    }

    @Test("a job may run after existing jobs only: one never submitted, or no longer kept, refuses the batch")
    func unknownDependencies() throws {
        var pool = PoolStateMachine(
            model: .threads, configuration: .init(retainFinished: 1), clock: MonotonicClock(wallMinusMonotonic: 0))
        _ = try pool.resize(to: 1, now: 0)
        for id in pool.workers.keys { pool.workerReady(id, osID: id, now: 0) }
        _ = try pool.submit([Self.sleep(1), Self.sleep(2)], now: Self.now)
        #expect(Self.drainOrder(&pool) == [1, 2])
        #expect(throws: SubmitError.unknownDependency(index: 0, 3)) {
            try pool.submit([Self.sleep(3, JobPlacement(after: [3]))], now: Self.now)
        }
        #expect(throws: SubmitError.forgottenDependency(index: 0, 1)) {
            try pool.submit([Self.sleep(3, JobPlacement(after: [2, 1]))], now: Self.now)
        }
        #expect(pool.totals.submitted == 2)
    }

    @Test("scheduled and waiting jobs can be cancelled by id or with the queued, and a cancel cascades")
    func cancelWaiting() throws {
        var pool = try PoolFixture.pool(workers: 1)
        _ = try pool.submit([Self.sleep(1, JobPlacement(startAt: Self.unixNow + 5))], now: Self.now)
        _ = try pool.submit([Self.sleep(2, JobPlacement(after: [1]))], now: Self.now)
        _ = try pool.submit(
            [Self.sleep(3, JobPlacement(startAt: Self.unixNow + 9)), Self.sleep(4, JobPlacement(after: [1]))], now: Self.now)
        let (outcome, _) = try pool.cancel([1], reason: "cancelled by uid 0", now: Self.now)
        #expect(outcome.cancelled == [1])
        #expect(pool.job(2)?.state == .cancelled && pool.job(2)?.error == "job 1, which it runs after, was cancelled")
        let (rest, _) = pool.cancelQueued(reason: "cancelled by uid 0", now: Self.now)
        #expect(rest.cancelled == [3])
        #expect(pool.scheduledCount == 0 && pool.waitingCount == 0 && pool.nextDue() == nil)
        #expect(pool.releaseDue(now: .max).isEmpty && Self.drainOrder(&pool).isEmpty)
    }

    @Test("the queue's limit counts the jobs waiting for their time or for others")
    func limitCountsWaiting() throws {
        var pool = try PoolFixture.pool(workers: 1, maxQueue: 3)
        _ = try pool.submit([Self.sleep(1, JobPlacement(startAt: Self.unixNow + 5)), Self.sleep(2)], now: Self.now)
        _ = try pool.submit([Self.sleep(3, JobPlacement(after: [2]))], now: Self.now)
        #expect(throws: SubmitError.queueFull(limit: 3, queued: 3)) { try pool.submit([Self.sleep(4)], now: Self.now) }
    }

    @Test("a drain keeps scheduled and waiting jobs in the journal, showing as such, or cancels them without one")
    func drainKeepsWaiting() throws {
        for journaled in [true, false] {
            var pool = try PoolFixture.pool(workers: 1)
            if journaled { pool.startJournal() }
            _ = try pool.submit([Self.sleep(1, JobPlacement(startAt: Self.unixNow + 5))], now: Self.now)
            _ = try pool.submit([Self.sleep(2, JobPlacement(after: [1]))], now: Self.now)
            _ = pool.beginDrain(now: Self.now)
            if journaled {
                #expect(pool.keptForRestart == 2 && pool.job(1)?.state == .scheduled && pool.job(2)?.state == .waiting)
                // Their time comes during the drain: they stay for the next start.
                #expect(pool.releaseDue(now: .max).isEmpty && pool.nextDue() == nil && pool.queuedCount == 0)
                // A cancel still cascades, and both end for good.
                _ = try pool.cancel([1], reason: "cancelled by uid 0", now: Self.now)
                #expect(pool.job(2)?.state == .cancelled && pool.keptForRestart == 0 && pool.waitingCount == 0)
            } else {
                #expect(pool.totals.cancelled == 2 && pool.scheduledCount == 0 && pool.waitingCount == 0)
            }
        }
    }

    @Test("a chain of 50,000 jobs is cancelled down to its end in one step, without recursion")
    func longChain() throws {
        var pool = try PoolFixture.pool(workers: 1, maxQueue: 60_000)
        _ = try pool.submit([Self.sleep(1, JobPlacement(startAt: Self.unixNow + 5))], now: Self.now)
        for id: JobID in 1..<50_000 {
            _ = try pool.submit([Self.sleep(1, JobPlacement(after: [id]))], now: Self.now)
        }
        #expect(pool.waitingCount == 49_999)
        _ = try pool.cancel([1], reason: "cancelled by uid 0", now: Self.now)
        #expect(pool.waitingCount == 0 && pool.totals.cancelled == 50_000)
        #expect(pool.job(50_000)?.error == "job 49999, which it runs after, was cancelled")
    }

    @Test("a job of higher priority than those a worker prefetched makes it give them back, so it runs before them")
    func prefetchYieldsToPriority() throws {
        var pool = try PoolFixture.pool(workers: 1)
        _ = try pool.submit(Array(repeating: Self.sleep(1, JobPlacement(priority: -5)), count: 4), now: Self.now)
        let held = PoolFixture.take(&pool, 1, limit: 4, now: Self.now)
        #expect(held.count == 4)
        // Held and not started, they are listed queued, first: they run next on that worker.
        #expect(pool.jobIDs(state: .queued, limit: 10) == [2, 3, 4])
        let (_, _, actions) = try pool.submit([Self.sleep(2, JobPlacement(priority: 10))], now: Self.now)
        #expect(actions.contains(.release(1)))
        _ = pool.returnJobs(worker: 1, ids: [2, 3, 4], now: Self.now)
        _ = pool.finish(worker: 1, job: 1, outcome: PoolFixture.ok, now: Self.now)
        #expect(pool.jobIDs(state: .queued, limit: 10) == [5, 2, 3, 4])
        #expect(Self.drainOrder(&pool) == [5, 2, 3, 4])
        // One of the same priority or lower does not.
        _ = try pool.submit(Array(repeating: Self.sleep(1), count: 3), now: Self.now)
        _ = PoolFixture.take(&pool, 1, limit: 3, now: Self.now)
        let (_, _, same) = try pool.submit([Self.sleep(3, JobPlacement(priority: -1))], now: Self.now)
        #expect(!same.contains(.release(1)))
    }

    @Test("restored jobs are placed again: scheduled if their time is ahead, queued if it passed, waiting for unfinished ones")
    func restore() throws {
        var pool = try PoolFixture.pool(workers: 1)
        let record = { (id: JobID, state: JobState, placement: JobPlacement) in
            JobRecord(id: id, spec: Self.sleep(Int(id), placement), state: state, attempts: 0, submittedAt: 1)
        }
        pool.restore(
            [
                record(1, .queued, JobPlacement(startAt: Self.unixNow + 5)),
                record(2, .queued, JobPlacement(startAt: Self.unixNow - 3600)),
                record(3, .queued, JobPlacement(after: [1])),
                record(4, .failed, JobPlacement()),
                record(5, .queued, JobPlacement(after: [4])),
                // Job 9 is no longer kept: it ended done, or 6 would have been cancelled with it.
                record(6, .queued, JobPlacement(priority: 2, after: [9])),
            ], nextJobID: 7, now: Self.now)
        #expect(pool.job(1)?.state == .scheduled && pool.job(3)?.state == .waiting)
        #expect(pool.jobs(state: .queued, limit: 10).map(\.id) == [6, 2])
        // The five unfinished count as submitted to this run; the finished one does not.
        #expect(pool.totals.submitted == 5)
        // Job 5 runs after a failed one: cancelled once the journal records.
        pool.startJournal()
        #expect(pool.job(5)?.state == .cancelled && pool.job(5)?.error == "job 4, which it runs after, failed")
        // It ended when concurd started again, not at the clock's origin.
        #expect(pool.job(5)?.finishedAt == Self.unixNow)
        #expect(pool.takeJournalChanges().changes.count == 1)
        #expect(Self.drainOrder(&pool) == [6, 2])
    }
}
