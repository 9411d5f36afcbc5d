import ConcurProtocol
import Testing

@testable import ConcurCore

/// Helpers shared by the state machine tests.
enum Fixture {
    static func specs(_ kinds: JobKind...) -> [JobSpec] { kinds.map { JobSpec($0) } }
    static func specs(_ count: Int, _ kind: JobKind = .fail) -> [JobSpec] { Array(repeating: JobSpec(kind), count: count) }

    static func pool(
        workers: Int = 0, model: ConcurrencyModel = .threads, maxQueue: Int = 100, maxAttempts: Int = 3, allowExec: Bool = false
    ) throws -> PoolStateMachine {
        var pool = PoolStateMachine(
            model: model,
            configuration: .init(
                maxQueue: maxQueue, maxWorkers: 8, retainFinished: 1000, maxAttempts: maxAttempts, allowExec: allowExec),
            clock: MonotonicClock())
        if workers > 0 {
            _ = try pool.resize(to: workers, now: 0)
            for id in pool.workers.keys { pool.workerReady(id, osID: id, now: 0) }
        }
        return pool
    }

    /// The jobs `worker` is handed (none if it must wait or retire).
    static func take(_ pool: inout PoolStateMachine, _ worker: WorkerID, limit: Int = 1, now: UInt64 = 1) -> [Job] {
        if case .run(let jobs) = pool.nextAssignment(for: worker, limit: limit, now: now) { return jobs }
        return []
    }

    static let ok = JobOutcome.done(.checksum(0))
}

@Suite("The pool state machine")
struct PoolStateMachineTests {
    @Test("growing starts workers at once, with new ids")
    func grow() throws {
        var pool = try Fixture.pool()
        let (previous, actions) = try pool.resize(to: 3, now: 0)
        #expect(previous == 0)
        #expect(
            actions == [
                .startWorker(1, .threads, delay: 0), .startWorker(2, .threads, delay: 0), .startWorker(3, .threads, delay: 0),
            ])
        #expect(pool.workerCounts == WorkerCounts(target: 3, live: 3, busy: 0, idle: 3, retiring: 0))
        #expect(try pool.resize(to: 4, now: 0).actions == [.startWorker(4, .threads, delay: 0)])
        #expect(pool.resizes == 1)
    }

    @Test("refuses worker counts outside 1...max, and any resize once shutdown began", arguments: [0, -1, 9])
    func invalidResize(count: Int) throws {
        var pool = try Fixture.pool(workers: 2)
        #expect(throws: ResizeError.invalidWorkers(min: 1, max: 8)) { try pool.resize(to: count, now: 0) }
        #expect(pool.target == 2)
        _ = pool.beginDrain(now: 0)
        #expect(throws: ResizeError.shuttingDown) { try pool.resize(to: 3, now: 0) }
    }

    @Test("hands out jobs in order and wakes only as many waiting workers as there are jobs")
    func assignment() throws {
        var pool = try Fixture.pool(workers: 3)
        #expect(pool.nextAssignment(for: 1, now: 0) == .wait)
        #expect(pool.nextAssignment(for: 2, now: 0) == .wait)
        #expect(pool.nextAssignment(for: 3, now: 0) == .wait)
        let (ids, _, actions) = try pool.submit(Fixture.specs(2), now: 10)
        #expect(ids == 1..<3)
        #expect(actions == [.wake(1), .wake(2)])
        let first = Fixture.take(&pool, 2, now: 20)
        #expect(first.map(\.id) == [1] && first[0].attempts == 1)
        #expect(Fixture.take(&pool, 1, now: 20).map(\.id) == [2])
        #expect(pool.workerCounts.busy == 2)
        #expect(pool.jobs(state: .running, limit: 10).map(\.id) == [1, 2])
        _ = pool.finish(worker: 2, job: 1, outcome: Fixture.ok, now: 30)
        #expect(pool.totals.done == 1)
    }

    @Test("a worker may take a batch: the first job runs, the rest wait behind it, in order")
    func batches() throws {
        var pool = try Fixture.pool(workers: 1, model: .processes)
        _ = try pool.submit(Fixture.specs(5), now: 0)
        #expect(Fixture.take(&pool, 1, limit: 3).map(\.id) == [1, 2, 3])
        #expect(pool.jobs(state: .running, limit: 10).map(\.id) == [1])
        #expect(try pool.jobs(ids: [2])[0].state == .queued)
        // Asking again while busy tops the batch up without waiting.
        #expect(pool.nextAssignment(for: 1, limit: 1, now: 2) == .run([try #require(pool.table.job(4))]))
        _ = pool.finish(worker: 1, job: 1, outcome: Fixture.ok, startedAt: 5, now: 6)
        #expect(try pool.jobs(ids: [2])[0].state == .running)
        #expect(try pool.jobs(ids: [2])[0].attempts == 1)
        #expect(pool.table[1]?.startedAt == 5 && pool.table[1]?.finishedAt == 6)
    }

    @Test("a batch is never more than an even share of the queue")
    func fairShare() throws {
        var pool = try Fixture.pool(workers: 3)
        _ = try pool.submit(Fixture.specs(7), now: 0)
        #expect(Fixture.take(&pool, 1, limit: 100).count == 3)
        #expect(Fixture.take(&pool, 2, limit: 100).count == 2)
        #expect(Fixture.take(&pool, 3, limit: 100).count == 1)
    }

    @Test("refuses a batch that does not fit, whole")
    func queueFull() throws {
        var pool = try Fixture.pool(workers: 1, maxQueue: 3)
        _ = try pool.submit(Fixture.specs(2), now: 0)
        #expect(throws: SubmitError.queueFull(limit: 3, queued: 2)) { try pool.submit(Fixture.specs(2), now: 0) }
        #expect(pool.queuedCount == 2)
        #expect(pool.totals.submitted == 2)
        _ = try pool.submit(Fixture.specs(1), now: 0)
        #expect(pool.queuedCount == 3)
    }

    @Test("refuses exec jobs unless allowed, and unforced crash jobs outside the processes model")
    func unsafeJobs() throws {
        var threads = try Fixture.pool(workers: 1)
        #expect(throws: SubmitError.execDisabled) { try threads.submit(Fixture.specs(.exec(argv: ["true"])), now: 0) }
        #expect(throws: SubmitError.crashRefused(model: .threads)) {
            try threads.submit(Fixture.specs(.fail, .crash(forced: false)), now: 0)
        }
        #expect(threads.totals.submitted == 0)
        _ = try threads.submit(Fixture.specs(.crash(forced: true)), now: 0)
        var processes = try Fixture.pool(workers: 1, model: .processes, allowExec: true)
        _ = try processes.submit(Fixture.specs(.crash(forced: false), .exec(argv: ["true"])), now: 0)
        #expect(processes.totals.submitted == 2)
    }

    @Test("a job without a timeout gets the daemon's default")
    func defaultTimeout() throws {
        var pool = PoolStateMachine(model: .threads, configuration: .init(defaultTimeout: 5), clock: MonotonicClock())
        _ = try pool.submit([JobSpec(.fail), JobSpec(.fail, timeout: 1)], now: 0)
        #expect(try pool.jobs(ids: [1, 2]).map(\.spec.timeout) == [5, 1])
    }

    @Test("shrinking retires idle workers first, then busy ones after their job")
    func shrink() throws {
        var pool = try Fixture.pool(workers: 4)
        _ = try pool.submit(Fixture.specs(2), now: 0)
        let jobA = Fixture.take(&pool, 1)
        let jobB = Fixture.take(&pool, 2)
        #expect(pool.nextAssignment(for: 3, now: 1) == .wait)
        #expect(pool.nextAssignment(for: 4, now: 1) == .wait)
        // 4 -> 1: both idle workers (3, 4) and one busy worker (the newest, 2) retire.
        let (_, actions) = try pool.resize(to: 1, now: 0)
        #expect(actions.count == 3 && [2, 3, 4].allSatisfy { actions.contains(.wake($0)) })
        #expect(pool.workerCounts == WorkerCounts(target: 1, live: 4, busy: 2, idle: 0, retiring: 3))
        #expect(pool.nextAssignment(for: 3, now: 2) == .retire)
        #expect(pool.nextAssignment(for: 4, now: 2) == .retire)
        _ = pool.workerExited(3, exit: .retired, now: 2)
        _ = pool.workerExited(4, exit: .retired, now: 2)
        // The busy retiring worker keeps its job until it is done.
        #expect(pool.workers[2]?.job == jobB[0].id)
        _ = pool.finish(worker: 2, job: jobB[0].id, outcome: Fixture.ok, now: 3)
        #expect(pool.nextAssignment(for: 2, now: 3) == .retire)
        _ = pool.workerExited(2, exit: .retired, now: 3)
        _ = pool.finish(worker: 1, job: jobA[0].id, outcome: Fixture.ok, now: 3)
        #expect(pool.totals.done == 2)
        #expect(pool.workerCounts == WorkerCounts(target: 1, live: 1, busy: 0, idle: 1, retiring: 0))
    }

    @Test("growing again keeps busy retiring workers before starting new ones")
    func growKeepsRetiring() throws {
        var pool = try Fixture.pool(workers: 2)
        _ = try pool.submit(Fixture.specs(2), now: 0)
        _ = Fixture.take(&pool, 1)
        _ = Fixture.take(&pool, 2)
        _ = try pool.resize(to: 1, now: 0)
        #expect(pool.workerCounts.retiring == 1)
        let (_, actions) = try pool.resize(to: 3, now: 0)
        #expect(actions == [.startWorker(3, .threads, delay: 0)])
        // The new worker, still starting, counts as idle.
        #expect(pool.workerCounts == WorkerCounts(target: 3, live: 3, busy: 2, idle: 1, retiring: 0))
    }

    @Test("jobs given back go to the head of the queue in their order; a job that never ran loses its attempt")
    func returnJobs() throws {
        var pool = try Fixture.pool(workers: 1, model: .processes)
        _ = try pool.submit(Fixture.specs(5), now: 0)
        #expect(Fixture.take(&pool, 1, limit: 4).map(\.id) == [1, 2, 3, 4])
        _ = try pool.resize(to: 2, now: 1)
        pool.workerReady(2, osID: 2, now: 0)
        #expect(pool.nextAssignment(for: 2, now: 1) == .run([try #require(pool.table.job(5))]))
        _ = pool.finish(worker: 2, job: 5, outcome: Fixture.ok, now: 2)
        #expect(pool.nextAssignment(for: 2, now: 2) == .wait)
        // Worker 1 gives back the jobs it had not started; worker 2, waiting, is woken.
        #expect(pool.returnJobs(worker: 1, ids: [2, 3, 4], now: 3) == [.wake(2)])
        #expect(pool.jobs(state: .queued, limit: 10).map(\.id) == [2, 3, 4])
        #expect(Fixture.take(&pool, 2).map(\.id) == [2])
        // Even the job the pool thought running, if it had not started.
        var other = try Fixture.pool(workers: 1, model: .processes)
        _ = try other.submit(Fixture.specs(2), now: 0)
        _ = Fixture.take(&other, 1, limit: 2)
        _ = other.returnJobs(worker: 1, ids: [1, 2], now: 1)
        #expect(try other.jobs(ids: [1])[0].attempts == 0)
        #expect(Fixture.take(&other, 1).first?.attempts == 1)
        #expect(other.totals.retried == 0)
    }

    @Test("a dead worker's running job is retried, its unstarted ones requeued, and it is replaced")
    func deathRetries() throws {
        var pool = try Fixture.pool(workers: 1, model: .processes)
        _ = try pool.submit(Fixture.specs(3), now: 0)
        _ = Fixture.take(&pool, 1, limit: 2, now: 0)
        let actions = pool.workerExited(1, exit: .died(reason: "worker 1 (pid 10) killed by SIGKILL"), now: 5_000_000_000)
        #expect(actions.contains(.startWorker(2, .processes, delay: 0.1)))
        #expect(pool.jobs(state: .queued, limit: 10).map(\.id) == [1, 2, 3])
        #expect(pool.events.deaths == 1 && pool.events.restarts == 1)
        pool.workerReady(2, osID: 2, now: 0)
        let again = Fixture.take(&pool, 2)
        #expect(again.map(\.id) == [1] && again[0].attempts == 2)
        #expect(pool.totals.retried == 1)
    }

    @Test("a job whose workers keep dying fails after the attempt limit, with the reason")
    func attemptLimit() throws {
        var pool = try Fixture.pool(workers: 1, model: .processes, maxAttempts: 2)
        _ = try pool.submit(Fixture.specs(1, .crash(forced: false)), now: 0)
        var worker = 1
        for attempt in 1...2 {
            #expect(Fixture.take(&pool, worker).first?.attempts == attempt)
            _ = pool.workerExited(worker, exit: .died(reason: "worker \(worker) (pid 9) killed by SIGABRT"), now: 10_000_000_000)
            worker += 1
            pool.workerReady(worker, osID: worker, now: 0)
        }
        let job = try pool.jobs(ids: [1])[0]
        #expect(job.state == .failed)
        #expect(job.error == "worker 2 (pid 9) killed by SIGABRT (attempt 2 of 2)")
        #expect(pool.totals == JobTotals(submitted: 1, done: 0, failed: 1, cancelled: 0, retried: 1))
    }

    @Test("with a progress report, the job really running is blamed; finished-but-unreported ones run again")
    func preciseBlame() throws {
        var pool = try Fixture.pool(workers: 1, model: .processes, maxAttempts: 1)
        _ = try pool.submit(Fixture.specs(5), now: 0)
        #expect(Fixture.take(&pool, 1, limit: 5, now: 0).map(\.id) == [1, 2, 3, 4, 5])
        _ = pool.finish(worker: 1, job: 1, outcome: Fixture.ok, startedAt: 1, now: 2)
        // Job 2 finished in the child but its result never came; job 3 crashed it.
        let report = ProgressReport(running: 3, since: 3, lastFinished: 2)
        _ = pool.workerExited(1, exit: .died(reason: "worker 1 (pid 7) killed by SIGSEGV", progress: report), now: 10_000_000_000)
        let crashed = try pool.jobs(ids: [3])[0]
        #expect(crashed.state == .failed && crashed.error == "worker 1 (pid 7) killed by SIGSEGV (attempt 1 of 1)")
        #expect(pool.jobs(state: .queued, limit: 10).map(\.id) == [2, 4, 5])
        #expect(try pool.jobs(ids: [2, 4, 5]).map(\.attempts) == [1, 0, 0])
        // Killed by its job, the worker did start: no failed start is counted.
        #expect(pool.events.consecutiveStartFailures[.processes] == nil)
    }

    @Test("a worker that died between jobs blames none of them")
    func noBlame() throws {
        var pool = try Fixture.pool(workers: 1, model: .processes, maxAttempts: 1)
        _ = try pool.submit(Fixture.specs(2), now: 0)
        _ = Fixture.take(&pool, 1, limit: 2, now: 0)
        _ = pool.workerExited(1, exit: .died(reason: "killed", progress: ProgressReport(running: nil, lastFinished: nil)), now: 5)
        #expect(pool.jobs(state: .queued, limit: 10).map(\.id) == [1, 2])
        #expect(try pool.jobs(ids: [1, 2]).map(\.attempts) == [0, 0])
        #expect(pool.totals.failed == 0)
    }

    @Test("a time limit found through the progress report interrupts the job really running")
    func progressTimeLimit() throws {
        var pool = try Fixture.pool(workers: 1, model: .processes)
        _ = try pool.submit([JobSpec(.fail), JobSpec(.sleep(milliseconds: 60_000), timeout: 1)], now: 0)
        _ = Fixture.take(&pool, 1, limit: 2, now: 0)
        let running = [1: ProgressReport(running: 2, since: 5_000_000_000, lastFinished: 1)]
        #expect(pool.tick(now: 5_500_000_000, running: running).isEmpty)
        #expect(pool.tick(now: 6_000_000_001, running: running) == [.interrupt(1, job: 2)])
        let report = ProgressReport(running: 2, since: 5_000_000_000, lastFinished: 1)
        _ = pool.workerExited(1, exit: .stopped(reason: "stopped", progress: report), now: 7_000_000_000)
        #expect(try pool.jobs(ids: [2])[0].error == "exceeded its time limit of 1 s")
        #expect(try pool.jobs(ids: [1])[0].state == .queued)
    }

    @Test("a model whose workers keep dying at start backs off, then stops being restarted until a resize")
    func circuitBreaker() throws {
        var pool = try Fixture.pool(model: .processes)
        _ = try pool.resize(to: 1, now: 0)
        var delays: [Double] = []
        var worker = 1
        for _ in 0..<5 {
            let actions = pool.workerExited(
                worker, exit: .died(reason: "worker \(worker) exited with status 1 before it started serving"), now: 0)
            for case .startWorker(let id, _, let delay) in actions {
                delays.append(delay)
                worker = id
            }
        }
        #expect(delays == [0.1, 0.2, 0.4, 0.8])
        #expect(pool.workers.isEmpty)
        #expect(pool.events.fatal[.processes] != nil)
        let (_, actions) = try pool.resize(to: 1, now: 0)
        #expect(actions.count == 1)
        #expect(pool.events.fatal.isEmpty)
    }

    @Test("a stopped worker is replaced at once and does not count as a death")
    func stopped() throws {
        var pool = try Fixture.pool(workers: 1, model: .processes)
        _ = try pool.submit([JobSpec(.sleep(milliseconds: 10_000), timeout: 1)], now: 0)
        _ = Fixture.take(&pool, 1, now: 0)
        #expect(pool.tick(now: 500_000_000).isEmpty)
        #expect(pool.tick(now: 1_000_000_001) == [.interrupt(1, job: 1)])
        #expect(pool.tick(now: 2_000_000_000).isEmpty)
        let actions = pool.workerExited(
            1, exit: .stopped(reason: "worker 1 (pid 5) was stopped: killed by SIGTERM"), now: 2_000_000_000)
        #expect(actions == [.startWorker(2, .processes, delay: 0)])
        #expect(pool.events.deaths == 0)
        let job = try pool.jobs(ids: [1])[0]
        #expect(job.state == .failed && job.error == "exceeded its time limit of 1 s")
    }

    @Test("a thread job past its time limit fails when its interrupted run returns")
    func threadTimeLimit() throws {
        var pool = try Fixture.pool(workers: 1)
        _ = try pool.submit([JobSpec(.cpu(size: 9), timeout: 0.5)], now: 0)
        _ = Fixture.take(&pool, 1, now: 0)
        #expect(pool.tick(now: 600_000_000) == [.interrupt(1, job: 1)])
        _ = pool.finish(worker: 1, job: 1, outcome: .cancelled(Workload.cancelReason), now: 700_000_000)
        let job = try pool.jobs(ids: [1])[0]
        #expect(job.state == .failed && job.error == "exceeded its time limit of 0.5 s")
    }

    @Test("a long job holding unstarted ones while a worker idles is asked to release them")
    func release() throws {
        var pool = try Fixture.pool(workers: 1, model: .processes)
        _ = try pool.submit(Fixture.specs(3), now: 0)
        _ = Fixture.take(&pool, 1, limit: 3, now: 0)
        _ = try pool.resize(to: 2, now: 0)
        pool.workerReady(2, osID: 2, now: 0)
        #expect(pool.nextAssignment(for: 2, now: 0) == .wait)
        #expect(pool.tick(now: 1_000_000).isEmpty)
        #expect(pool.tick(now: 10_000_000) == [.release(1)])
        #expect(pool.tick(now: 20_000_000).isEmpty)
        #expect(pool.returnJobs(worker: 1, ids: [2, 3], now: 21_000_000) == [.wake(2)])
    }

    @Test("a drain closes intake, cancels queued jobs and retires every worker")
    func drain() throws {
        var pool = try Fixture.pool(workers: 2)
        _ = try pool.submit(Fixture.specs(3), now: 0)
        let job = Fixture.take(&pool, 1, now: 0)[0]
        let actions = pool.beginDrain(now: 5)
        #expect(actions == [.wake(1), .wake(2)])
        #expect(pool.phase == .draining)
        #expect(throws: SubmitError.shuttingDown) { try pool.submit(Fixture.specs(1), now: 6) }
        #expect(pool.totals.cancelled == 2)
        #expect(try pool.jobs(ids: [2])[0].error == PoolStateMachine.notStartedReason)
        #expect(pool.nextAssignment(for: 2, now: 6) == .retire)
        _ = pool.workerExited(2, exit: .retired, now: 6)
        #expect(!pool.isDrained)
        _ = pool.finish(worker: 1, job: job.id, outcome: Fixture.ok, now: 7)
        #expect(pool.nextAssignment(for: 1, now: 7) == .retire)
        _ = pool.workerExited(1, exit: .retired, now: 7)
        #expect(pool.isDrained)
        #expect(pool.totals == JobTotals(submitted: 3, done: 1, failed: 0, cancelled: 2, retried: 0))
    }

    @Test("cancelling interrupts running jobs and records why")
    func cancel() throws {
        var pool = try Fixture.pool(workers: 2)
        _ = try pool.submit(Fixture.specs(1, .cpu(size: 9)), now: 0)
        let job = Fixture.take(&pool, 1, now: 0)[0]
        let actions = pool.cancelRunning(reason: "interrupted: test", now: 1)
        #expect(actions.contains(.interrupt(1, job: nil)))
        #expect(!actions.contains(.interrupt(2, job: nil)))
        #expect(pool.phase == .stopping)
        _ = pool.finish(worker: 1, job: job.id, outcome: .cancelled(Workload.cancelReason), now: 2)
        let record = try pool.jobs(ids: [job.id])[0]
        #expect(record.state == .cancelled)
        #expect(record.error == "interrupted: test")
        #expect(pool.latency.run.totalCount == 0)
    }

    @Test("a watch started with a submit reports each job once, the last one ending it")
    func submitWatch() throws {
        var pool = try Fixture.pool(workers: 1)
        let (ids, watch, _) = try pool.submit(Fixture.specs(2), now: 0, watch: true)
        let watchID = try #require(watch)
        var notified: [(JobID, Bool)] = []
        for _ in ids {
            guard let job = Fixture.take(&pool, 1).first else { continue }
            for case .notify(let id, let info, let last) in pool.finish(worker: 1, job: job.id, outcome: .failed("x"), now: 2)
            where id == watchID {
                notified.append((info.id, last))
            }
        }
        #expect(notified.map(\.0) == [1, 2])
        #expect(notified.map(\.1) == [false, true])
    }

    @Test("a watch without ids sees every job that finishes and never ends by itself")
    func watchEverything() throws {
        var pool = try Fixture.pool(workers: 1)
        let watch = try pool.addWatch(ids: [])
        #expect(!watch.complete && watch.finished.isEmpty)
        _ = try pool.submit(Fixture.specs(2), now: 0)
        var seen: [(JobID, Bool)] = []
        for _ in 0..<2 {
            guard let job = Fixture.take(&pool, 1).first else { continue }
            for case .notify(let id, let info, let last) in pool.finish(worker: 1, job: job.id, outcome: .failed("x"), now: 2)
            where id == watch.id {
                seen.append((info.id, last))
            }
        }
        #expect(seen.map(\.0) == [1, 2] && seen.allSatisfy { !$0.1 })
        pool.removeWatch(watch.id)
        _ = try pool.submit(Fixture.specs(1), now: 3)
        guard let job = Fixture.take(&pool, 1).first else { return }
        #expect(pool.finish(worker: 1, job: job.id, outcome: .failed("x"), now: 5).isEmpty)
    }

    @Test("a watch of finished jobs completes at once; unknown ids are refused")
    func idWatch() throws {
        var pool = try Fixture.pool(workers: 1)
        _ = try pool.submit(Fixture.specs(2), now: 0)
        let job = Fixture.take(&pool, 1)[0]
        _ = pool.finish(worker: 1, job: job.id, outcome: .failed("x"), now: 2)
        let done = try pool.addWatch(ids: [1])
        #expect(done.complete && done.finished.map(\.id) == [1])
        let pending = try pool.addWatch(ids: [1, 2])
        #expect(!pending.complete && pending.finished.map(\.id) == [1])
        #expect(throws: NoSuchJobError(id: 3)) { try pool.addWatch(ids: [3]) }
        #expect(throws: NoSuchJobError(id: 99)) { try pool.jobs(ids: [99]) }
    }
}

/// Drives the state machine with a seeded random sequence of submits, resizes, worker steps,
/// batches, give-backs and deaths, checking the invariants after every step.
@Suite("The pool state machine under random sequences")
struct PoolInvariantTests {
    /// The workers' side of the simulation: what each holds, who left, how often each job finished.
    struct Workers {
        var held: [WorkerID: [Job]] = [:]
        var retired: Set<WorkerID> = []
        var finishes: [JobID: Int] = [:]

        /// Worker `id` finishes its running job, if it has one, and asks for more.
        mutating func step(_ id: WorkerID, limit: Int, in pool: inout PoolStateMachine) {
            if var jobs = held[id], !jobs.isEmpty {
                let job = jobs.removeFirst()
                held[id] = jobs
                _ = pool.finish(worker: id, job: job.id, outcome: Fixture.ok, now: 1)
                finishes[job.id, default: 0] += 1
            }
            switch pool.nextAssignment(for: id, limit: limit, now: 1) {
            case .run(let jobs): held[id, default: []] += jobs
            case .retire:
                if let jobs = held[id], jobs.count > 1 {
                    _ = pool.returnJobs(worker: id, ids: jobs.dropFirst().map(\.id), now: 1)
                    held[id] = [jobs[0]]
                }
                if held[id]?.isEmpty ?? true {
                    retired.insert(id)
                    _ = pool.workerExited(id, exit: .retired, now: 1)
                }
            case .wait: break
            }
        }

        /// Worker `id` dies: its jobs are the pool's business now.
        mutating func die(_ id: WorkerID, in pool: inout PoolStateMachine) {
            held[id] = []
            retired.insert(id)
            _ = pool.workerExited(id, exit: .died(reason: "killed"), now: 2_000_000_000)
        }

        func live(in pool: PoolStateMachine) -> [WorkerID] {
            pool.workers.keys.sorted().filter { !retired.contains($0) }
        }
    }

    @Test(
        "every job reaches one final state; without deaths it runs once; non-retiring workers match the target",
        arguments: [(1, false), (2, false), (3, true), (4, true), (5, false), (6, true), (7, false), (8, true)]
            as [(UInt64, Bool)])
    func randomSequences(seed: UInt64, withDeaths: Bool) throws {
        var random = SplitMix64(seed: seed)
        var pool = PoolStateMachine(
            model: .processes, configuration: .init(maxQueue: 10_000, maxWorkers: 8, retainFinished: 100_000, maxAttempts: 1_000),
            clock: MonotonicClock())
        var workers = Workers()
        var submitted = 0
        _ = try pool.resize(to: 3, now: 0)
        for _ in 0..<3_000 {
            for id in pool.workers.keys where !(pool.workers[id]?.ready ?? true) { pool.workerReady(id, osID: id, now: 0) }
            switch random.next() % 20 {
            case 0, 1, 2:
                let count = Int(random.next() % 5) + 1
                _ = try pool.submit(Fixture.specs(count), now: 0)
                submitted += count
            case 3:
                _ = try pool.resize(to: Int(random.next() % 8) + 1, now: 0)
                #expect(pool.workers.values.filter { !$0.retiring }.count == pool.target)
            case 4 where withDeaths:
                let live = workers.live(in: pool)
                if !live.isEmpty { workers.die(live[Int(random.next() % UInt64(live.count))], in: &pool) }
            default:
                let live = workers.live(in: pool)
                guard !live.isEmpty else { continue }
                workers.step(live[Int(random.next() % UInt64(live.count))], limit: Int(random.next() % 4) + 1, in: &pool)
            }
            #expect(pool.workerCounts.busy == workers.held.values.filter { !$0.isEmpty }.count)
        }
        // Let every worker run the queue dry.
        var rounds = 0
        while pool.queuedCount > 0 || workers.held.values.contains(where: { !$0.isEmpty }) {
            for id in pool.workers.keys where !(pool.workers[id]?.ready ?? true) { pool.workerReady(id, osID: id, now: 0) }
            for id in workers.live(in: pool) { workers.step(id, limit: 2, in: &pool) }
            rounds += 1
            try #require(rounds < 100_000)
        }
        #expect(workers.finishes.count == submitted)
        #expect(workers.finishes.values.allSatisfy { $0 == 1 })
        #expect(pool.totals.finished == submitted)
        #expect(pool.totals.done == submitted)
        if !withDeaths { #expect(pool.totals.retried == 0) }
    }
}

@Suite("Pause, events and live measures")
struct LiveMeasureTests {
    @Test("paused workers take nothing new, finish what they run; resume wakes as many as there are jobs")
    func pause() throws {
        var pool = try Fixture.pool(workers: 2)
        _ = try pool.submit(Fixture.specs(3), now: 1)
        #expect(Fixture.take(&pool, 1).map(\.id) == [1])
        #expect(pool.setPaused(true, now: 2).changed)
        #expect(!pool.setPaused(true, now: 2).changed)
        #expect(pool.nextAssignment(for: 2, now: 3) == .wait)
        _ = pool.finish(worker: 1, job: 1, outcome: Fixture.ok, now: 4)
        #expect(pool.nextAssignment(for: 1, now: 5) == .wait)
        #expect(pool.queuedCount == 2 && pool.paused)
        let (changed, actions) = pool.setPaused(false, now: 6)
        #expect(changed && actions == [.wake(2), .wake(1)])
        #expect(Fixture.take(&pool, 2).map(\.id) == [2])
        #expect(pool.lastEvents.map(\.kind) == [.paused, .resumed])
    }

    @Test("resizes, switches, deaths and drains are events; only the newest are kept")
    func events() throws {
        var pool = try Fixture.pool(workers: 1)
        _ = try pool.resize(to: 2, now: 1)
        _ = try pool.setModel(.tasks, preempt: true, now: 2)
        _ = pool.workerExited(1, exit: .died(reason: "worker 1 (pid 9) killed by SIGKILL"), now: 3)
        let tasksWorker = try #require(pool.workers.values.first { $0.model == .tasks }?.id)
        pool.workerReady(tasksWorker, osID: nil, now: 4)
        _ = pool.beginDrain(now: 5)
        #expect(pool.lastEvents.map(\.kind) == [.resized, .switchRequested, .workerDied, .switchServing, .draining])
        #expect(pool.lastEvents[1].message == "switch threads -> tasks (preempting)" && pool.lastEvents[1].model == .tasks)
        #expect(pool.lastEvents[2].worker == 1 && pool.lastEvents[3].worker == tasksWorker)
        #expect(pool.events(after: 3).map(\.kind) == [.switchServing, .draining])
        var busy = try Fixture.pool(workers: 1)
        for index in 0..<(PoolStateMachine.eventMemory + 10) { _ = busy.setPaused(index % 2 == 0, now: UInt64(index)) }
        #expect(busy.lastEvents.count == PoolStateMachine.eventMemory && busy.eventCount == PoolStateMachine.eventMemory + 10)
        #expect(busy.events(after: 0).count == PoolStateMachine.eventMemory)
    }

    @Test("the latency window keeps the last 10 seconds only")
    func latencyWindow() {
        var recorder = LatencyRecorder()
        let second: UInt64 = 1_000_000_000
        // One slow job at second 1, fast ones at seconds 5 to 12.
        recorder.record(submitted: 0, started: 0, finished: second + 900_000_000)
        func fast(at seconds: ClosedRange<Int>) {
            for at in seconds {
                let now = UInt64(at) * second
                recorder.record(submitted: now - 2_000_000, started: now - 1_000_000, finished: now)
            }
        }
        fast(at: 5...6)
        let early = recorder.window.summary(now: 6 * second)
        #expect(early.run.count == 3 && early.run.max > 1.8)
        fast(at: 7...12)
        let late = recorder.window.summary(now: 12 * second)
        #expect(late.run.count == 8 && late.run.max < 0.0011 && late.queueWait.p50 > 0.00099)
        #expect(recorder.summary.run.count == 9 && recorder.summary.run.max > 1.8)
        #expect(recorder.window.summary(now: 30 * second).run.count == 0)
    }

    @Test("throughput history: one rate per sample interval of the last minute")
    func throughputHistory() {
        var meter = ThroughputMeter()
        let second: UInt64 = 1_000_000_000
        for (index, total) in [0, 10, 30, 30, 100].enumerated() { meter.sample(at: UInt64(index) * second, total: total) }
        #expect(meter.throughput(at: 4 * second, total: 100).history == [10, 20, 0, 70])
        #expect(meter.throughput(at: 100 * second, total: 100).history.isEmpty)
    }

    @Test("a sink hands over at most the limit and says what is left")
    func sinkLimit() {
        let sink = JobWatchSink {}
        for index in 0..<5 { sink.push(.event(PoolEvent(time: Double(index), kind: .paused, message: "\(index)"))) }
        let first = sink.take(limit: 3)
        #expect(first.items.count == 3 && first.more && !first.ended)
        let rest = sink.take(limit: 3)
        #expect(rest.items.count == 2 && !rest.more)
    }
}

@Suite("Latency percentiles")
struct PercentileTests {
    @Test("one pass gives what valueAtPercentile gives, for any shape of samples", arguments: [1, 7, 100, 5_000])
    func matchesValueAtPercentile(samples: Int) {
        var recorder = LatencyRecorder()
        var generator = SplitMix(seed: UInt64(samples))
        for _ in 0..<samples {
            let started = generator.next() % 5_000_000
            recorder.record(submitted: 0, started: started, finished: started + generator.next() % 2_000_000_000)
        }
        let histogram = recorder.run
        let summary = recorder.summary.run
        #expect(summary.count == samples)
        #expect(summary.p50 == Double(histogram.valueAtPercentile(50)) / 1e9)
        #expect(summary.p90 == Double(histogram.valueAtPercentile(90)) / 1e9)
        #expect(summary.p99 == Double(histogram.valueAtPercentile(99)) / 1e9)
        #expect(summary.max == Double(histogram.max) / 1e9)
    }
}

/// A small seeded generator for the tests.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
