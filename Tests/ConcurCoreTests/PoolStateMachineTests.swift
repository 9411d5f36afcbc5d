import ConcurCore
import ConcurProtocol
import Testing

@Suite("The pool state machine")
struct PoolStateMachineTests {
    func makePool(workers: Int = 0, maxQueue: Int = 100) throws -> PoolStateMachine {
        var pool = PoolStateMachine(
            model: .threads, configuration: .init(maxQueue: maxQueue, maxWorkers: 8, retainFinished: 1000))
        if workers > 0 { _ = try pool.resize(to: workers) }
        return pool
    }

    @Test("growing starts workers at once, with new ids")
    func grow() throws {
        var pool = try makePool()
        let (previous, actions) = try pool.resize(to: 3)
        #expect(previous == 0)
        #expect(actions == [.startWorker(1, .threads), .startWorker(2, .threads), .startWorker(3, .threads)])
        #expect(pool.workerCounts == WorkerCounts(target: 3, live: 3, busy: 0, idle: 3, retiring: 0))
        #expect(try pool.resize(to: 4).actions == [.startWorker(4, .threads)])
        #expect(pool.resizes == 1)
    }

    @Test("refuses worker counts outside 1...max, and any resize once shutdown began", arguments: [0, -1, 9])
    func invalidResize(count: Int) throws {
        var pool = try makePool(workers: 2)
        #expect(throws: ResizeError.invalidWorkers(min: 1, max: 8)) { try pool.resize(to: count) }
        #expect(pool.target == 2)
        _ = pool.beginDrain(now: 0)
        #expect(throws: ResizeError.shuttingDown) { try pool.resize(to: 3) }
    }

    @Test("hands out jobs in order and wakes only as many idle workers as there are jobs")
    func assignment() throws {
        var pool = try makePool(workers: 2)
        #expect(pool.nextAssignment(for: 1, now: 0) == .wait)
        #expect(pool.nextAssignment(for: 2, now: 0) == .wait)
        let (ids, _, actions) = try pool.submit([.fail, .fail, .fail], now: 10)
        #expect(ids == 1..<4)
        #expect(actions == [.wakeWorkers(count: 2)])
        guard case .run(let first) = pool.nextAssignment(for: 2, now: 20) else {
            Issue.record("no job")
            return
        }
        #expect(first.id == 1 && first.attempts == 1)
        guard case .run(let second) = pool.nextAssignment(for: 1, now: 20) else {
            Issue.record("no job")
            return
        }
        #expect(second.id == 2)
        #expect(pool.workerCounts.busy == 2)
        #expect(pool.jobs(state: .running, limit: 10).map(\.id) == [1, 2])
        _ = pool.finish(worker: 2, job: first, outcome: .done(JobResult(summary: "ok")), now: 30)
        #expect(pool.totals.done == 1)
        #expect(pool.jobs(state: .queued, limit: 10).map(\.id) == [3])
    }

    @Test("refuses a batch that does not fit, whole")
    func queueFull() throws {
        var pool = try makePool(workers: 1, maxQueue: 3)
        _ = try pool.submit([.fail, .fail], now: 0)
        #expect(throws: SubmitError.queueFull(limit: 3, queued: 2)) { try pool.submit([.fail, .fail], now: 0) }
        #expect(pool.queuedCount == 2)
        #expect(pool.totals.submitted == 2)
        _ = try pool.submit([.fail], now: 0)
        #expect(pool.queuedCount == 3)
    }

    @Test("shrinking retires idle workers first, then busy ones after their job")
    func shrink() throws {
        var pool = try makePool(workers: 4)
        _ = try pool.submit([.fail, .fail], now: 0)
        guard case .run(let jobA) = pool.nextAssignment(for: 1, now: 1), case .run(let jobB) = pool.nextAssignment(for: 2, now: 1)
        else {
            Issue.record("no jobs")
            return
        }
        #expect(pool.nextAssignment(for: 3, now: 1) == .wait)
        #expect(pool.nextAssignment(for: 4, now: 1) == .wait)
        // 4 -> 1: both idle workers (3, 4) and one busy worker (the newest, 2) retire.
        let (_, actions) = try pool.resize(to: 1)
        #expect(actions == [.wakeIdleWorkers])
        #expect(pool.workerCounts == WorkerCounts(target: 1, live: 4, busy: 2, idle: 0, retiring: 3))
        #expect(pool.nextAssignment(for: 3, now: 2) == .retire)
        #expect(pool.nextAssignment(for: 4, now: 2) == .retire)
        _ = pool.workerExited(3)
        _ = pool.workerExited(4)
        // The busy retiring worker keeps its job until it is done.
        #expect(pool.workers[2]?.job == jobB.id)
        _ = pool.finish(worker: 2, job: jobB, outcome: .done(JobResult(summary: "ok")), now: 3)
        #expect(pool.nextAssignment(for: 2, now: 3) == .retire)
        _ = pool.workerExited(2)
        _ = pool.finish(worker: 1, job: jobA, outcome: .done(JobResult(summary: "ok")), now: 3)
        #expect(pool.totals.done == 2)
        #expect(pool.workerCounts == WorkerCounts(target: 1, live: 1, busy: 0, idle: 1, retiring: 0))
    }

    @Test("growing again keeps busy retiring workers before starting new ones")
    func growKeepsRetiring() throws {
        var pool = try makePool(workers: 2)
        _ = try pool.submit([.fail, .fail], now: 0)
        _ = pool.nextAssignment(for: 1, now: 0)
        _ = pool.nextAssignment(for: 2, now: 0)
        _ = try pool.resize(to: 1)
        #expect(pool.workerCounts.retiring == 1)
        let (_, actions) = try pool.resize(to: 3)
        #expect(actions == [.startWorker(3, .threads)])
        #expect(pool.workerCounts == WorkerCounts(target: 3, live: 3, busy: 2, idle: 1, retiring: 0))
    }

    @Test("a worker that exits while busy gives its job back to the head of the queue")
    func exitWhileBusy() throws {
        var pool = try makePool(workers: 1)
        _ = try pool.submit([.cpu(size: 1), .fail], now: 0)
        guard case .run(let job) = pool.nextAssignment(for: 1, now: 0) else {
            Issue.record("no job")
            return
        }
        let actions = pool.workerExited(1)
        #expect(actions == [.startWorker(2, .threads)])
        #expect(pool.jobs(state: .queued, limit: 10).map(\.id) == [job.id, 2])
        guard case .run(let again) = pool.nextAssignment(for: 2, now: 1) else {
            Issue.record("no job")
            return
        }
        #expect(again.id == job.id && again.attempts == 2)
        #expect(pool.totals.retried == 1)
    }

    @Test("a drain closes intake, cancels queued jobs and retires every worker")
    func drain() throws {
        var pool = try makePool(workers: 2)
        _ = try pool.submit([.fail, .fail, .fail], now: 0)
        guard case .run(let job) = pool.nextAssignment(for: 1, now: 0) else {
            Issue.record("no job")
            return
        }
        let actions = pool.beginDrain(now: 5)
        #expect(actions == [.wakeIdleWorkers])
        #expect(pool.phase == .draining)
        #expect(throws: SubmitError.shuttingDown) { try pool.submit([.fail], now: 6) }
        #expect(pool.totals.cancelled == 2)
        #expect(try pool.jobs(ids: [2])[0].error == PoolStateMachine.notStartedReason)
        #expect(pool.nextAssignment(for: 2, now: 6) == .retire)
        _ = pool.workerExited(2)
        #expect(!pool.isDrained)
        _ = pool.finish(worker: 1, job: job, outcome: .done(JobResult(summary: "ok")), now: 7)
        #expect(pool.nextAssignment(for: 1, now: 7) == .retire)
        _ = pool.workerExited(1)
        #expect(pool.isDrained)
        #expect(pool.totals == JobTotals(submitted: 3, done: 1, failed: 0, cancelled: 2, retried: 0))
    }

    @Test("cancelling interrupts running jobs and records why")
    func cancel() throws {
        var pool = try makePool(workers: 2)
        _ = try pool.submit([.cpu(size: 9)], now: 0)
        guard case .run(let job) = pool.nextAssignment(for: 1, now: 0) else {
            Issue.record("no job")
            return
        }
        let actions = pool.cancelRunning(reason: "interrupted: test", now: 1)
        #expect(actions.contains(.interrupt(1)))
        #expect(!actions.contains(.interrupt(2)))
        #expect(pool.phase == .stopping)
        _ = pool.finish(worker: 1, job: job, outcome: .cancelled(Workload.cancelReason), now: 2)
        let record = try pool.jobs(ids: [job.id])[0]
        #expect(record.state == .cancelled)
        #expect(record.error == "interrupted: test")
        #expect(pool.latency.run.totalCount == 0)
    }

    @Test("a watch started with a submit reports each job once, the last one ending it")
    func submitWatch() throws {
        var pool = try makePool(workers: 1)
        let (ids, watch, _) = try pool.submit([.fail, .fail], now: 0, watch: true)
        let watchID = try #require(watch)
        var notified: [(JobID, Bool)] = []
        for _ in ids {
            guard case .run(let job) = pool.nextAssignment(for: 1, now: 1) else { continue }
            for action in pool.finish(worker: 1, job: job, outcome: .failed("x"), now: 2) {
                if case .notify(let id, let info, let last) = action, id == watchID { notified.append((info.id, last)) }
            }
        }
        #expect(notified.map(\.0) == [1, 2])
        #expect(notified.map(\.1) == [false, true])
    }

    @Test("a watch without ids sees every job that finishes and never ends by itself")
    func watchEverything() throws {
        var pool = try makePool(workers: 1)
        let watch = try pool.addWatch(ids: [])
        #expect(!watch.complete && watch.finished.isEmpty)
        _ = try pool.submit([.fail, .fail], now: 0)
        var seen: [(JobID, Bool)] = []
        for _ in 0..<2 {
            guard case .run(let job) = pool.nextAssignment(for: 1, now: 1) else { continue }
            for case .notify(let id, let info, let last) in pool.finish(worker: 1, job: job, outcome: .failed("x"), now: 2)
            where id == watch.id {
                seen.append((info.id, last))
            }
        }
        #expect(seen.map(\.0) == [1, 2] && seen.allSatisfy { !$0.1 })
        pool.removeWatch(watch.id)
        _ = try pool.submit([.fail], now: 3)
        guard case .run(let job) = pool.nextAssignment(for: 1, now: 4) else { return }
        #expect(pool.finish(worker: 1, job: job, outcome: .failed("x"), now: 5).isEmpty)
    }

    @Test("a watch of finished jobs completes at once; unknown ids are refused")
    func idWatch() throws {
        var pool = try makePool(workers: 1)
        _ = try pool.submit([.fail, .fail], now: 0)
        guard case .run(let job) = pool.nextAssignment(for: 1, now: 1) else {
            Issue.record("no job")
            return
        }
        _ = pool.finish(worker: 1, job: job, outcome: .failed("x"), now: 2)
        let done = try pool.addWatch(ids: [1])
        #expect(done.complete && done.finished.map(\.id) == [1])
        let pending = try pool.addWatch(ids: [1, 2])
        #expect(!pending.complete && pending.finished.map(\.id) == [1])
        #expect(throws: NoSuchJobError(id: 3)) { try pool.addWatch(ids: [3]) }
        #expect(throws: NoSuchJobError(id: 99)) { try pool.jobs(ids: [99]) }
    }
}

/// Drives the state machine with a seeded random sequence of submits, resizes, worker steps
/// and exits, checking the invariants after every step.
@Suite("The pool state machine under random sequences")
struct PoolInvariantTests {
    /// The workers' side of the simulation: what each runs, who left, how often each job finished.
    struct Workers {
        var running: [WorkerID: Job] = [:]
        var retired: Set<WorkerID> = []
        var finishes: [JobID: Int] = [:]

        /// Worker `id` finishes its job, if it has one, and asks for the next.
        mutating func step(_ id: WorkerID, in pool: inout PoolStateMachine) {
            if let job = running.removeValue(forKey: id) {
                _ = pool.finish(worker: id, job: job, outcome: .done(JobResult(summary: "ok")), now: 1)
                finishes[job.id, default: 0] += 1
            }
            switch pool.nextAssignment(for: id, now: 1) {
            case .run(let job): running[id] = job
            case .retire:
                retired.insert(id)
                _ = pool.workerExited(id)
            case .wait: break
            }
        }

        func live(in pool: PoolStateMachine) -> [WorkerID] {
            pool.workers.keys.sorted().filter { !retired.contains($0) }
        }
    }

    @Test(
        "every job reaches one final state and runs once; live non-retiring workers match the target",
        arguments: 1...20 as ClosedRange<UInt64>)
    func randomSequences(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        var pool = PoolStateMachine(
            model: .threads, configuration: .init(maxQueue: 10_000, maxWorkers: 8, retainFinished: 100_000))
        var workers = Workers()
        var submitted = 0
        _ = try pool.resize(to: 3)
        for _ in 0..<2_000 {
            switch random.next() % 10 {
            case 0, 1:
                let count = Int(random.next() % 5) + 1
                _ = try pool.submit(Array(repeating: .fail, count: count), now: 0)
                submitted += count
            case 2:
                _ = try pool.resize(to: Int(random.next() % 8) + 1)
                #expect(pool.workers.values.filter { !$0.retiring }.count == pool.target)
            default:
                let live = workers.live(in: pool)
                guard !live.isEmpty else { continue }
                workers.step(live[Int(random.next() % UInt64(live.count))], in: &pool)
            }
            #expect(pool.workerCounts.busy == workers.running.count)
        }
        // Let every worker run the queue dry.
        while pool.queuedCount > 0 || !workers.running.isEmpty {
            for id in workers.live(in: pool) { workers.step(id, in: &pool) }
        }
        #expect(workers.finishes.count == submitted)
        #expect(workers.finishes.values.allSatisfy { $0 == 1 })
        #expect(pool.totals == JobTotals(submitted: submitted, done: submitted, failed: 0, cancelled: 0, retried: 0))
    }
}
