import ConcurProtocol
import ConcurTestSupport
import Testing

@testable import ConcurCore

@Suite("The pool state machine")
struct PoolStateMachineTests {
    @Test("growing starts workers at once, with new ids")
    func grow() throws {
        var pool = try PoolFixture.pool()
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
        var pool = try PoolFixture.pool(workers: 2)
        #expect(throws: ResizeError.invalidWorkers(min: 1, max: 8)) { try pool.resize(to: count, now: 0) }
        #expect(pool.target == 2)
        _ = pool.beginDrain(now: 0)
        #expect(throws: ResizeError.shuttingDown) { try pool.resize(to: 3, now: 0) }
    }

    @Test("hands out jobs in order and wakes only as many waiting workers as there are jobs")
    func assignment() throws {
        var pool = try PoolFixture.pool(workers: 3)
        #expect(pool.nextAssignment(for: 1, now: 0) == .wait)
        #expect(pool.nextAssignment(for: 2, now: 0) == .wait)
        #expect(pool.nextAssignment(for: 3, now: 0) == .wait)
        let (ids, _, actions) = try pool.submit(PoolFixture.specs(2), now: 10)
        #expect(ids == 1..<3)
        #expect(actions == [.wake(1), .wake(2)])
        let first = PoolFixture.take(&pool, 2, now: 20)
        #expect(first.map(\.id) == [1] && first[0].attempts == 1)
        #expect(PoolFixture.take(&pool, 1, now: 20).map(\.id) == [2])
        #expect(pool.workerCounts.busy == 2)
        #expect(pool.jobs(state: .running, limit: 10).map(\.id) == [1, 2])
        _ = pool.finish(worker: 2, job: 1, outcome: PoolFixture.ok, now: 30)
        #expect(pool.totals.done == 1)
    }

    @Test("a worker may take a batch: the first job runs, the rest wait behind it, in order")
    func batches() throws {
        var pool = try PoolFixture.pool(workers: 1, model: .processes)
        _ = try pool.submit(PoolFixture.specs(5), now: 0)
        #expect(PoolFixture.take(&pool, 1, limit: 3).map(\.id) == [1, 2, 3])
        #expect(pool.jobs(state: .running, limit: 10).map(\.id) == [1])
        #expect(try pool.jobs(ids: [2])[0].state == .queued)
        // Asking again while busy tops the batch up without waiting.
        #expect(pool.nextAssignment(for: 1, limit: 1, now: 2) == .run([try #require(pool.table.job(4))]))
        _ = pool.finish(worker: 1, job: 1, outcome: PoolFixture.ok, startedAt: 5, now: 6)
        #expect(try pool.jobs(ids: [2])[0].state == .running)
        #expect(try pool.jobs(ids: [2])[0].attempts == 1)
        #expect(pool.table[1]?.startedAt == 5 && pool.table[1]?.finishedAt == 6)
    }

    @Test("a batch is never more than an even share of the queue")
    func fairShare() throws {
        var pool = try PoolFixture.pool(workers: 3)
        _ = try pool.submit(PoolFixture.specs(7), now: 0)
        #expect(PoolFixture.take(&pool, 1, limit: 100).count == 3)
        #expect(PoolFixture.take(&pool, 2, limit: 100).count == 2)
        #expect(PoolFixture.take(&pool, 3, limit: 100).count == 1)
    }

    @Test("refuses a batch that does not fit, whole")
    func queueFull() throws {
        var pool = try PoolFixture.pool(workers: 1, maxQueue: 3)
        _ = try pool.submit(PoolFixture.specs(2), now: 0)
        #expect(throws: SubmitError.queueFull(limit: 3, queued: 2)) { try pool.submit(PoolFixture.specs(2), now: 0) }
        #expect(pool.queuedCount == 2)
        #expect(pool.totals.submitted == 2)
        _ = try pool.submit(PoolFixture.specs(1), now: 0)
        #expect(pool.queuedCount == 3)
    }

    @Test("refuses exec jobs unless allowed, and unforced crash jobs outside the processes model")
    func unsafeJobs() throws {
        var threads = try PoolFixture.pool(workers: 1)
        #expect(throws: SubmitError.execDisabled) { try threads.submit(PoolFixture.specs(.exec(argv: ["true"])), now: 0) }
        #expect(throws: SubmitError.crashRefused(model: .threads)) {
            try threads.submit(PoolFixture.specs(.fail, .crash(forced: false)), now: 0)
        }
        #expect(threads.totals.submitted == 0)
        _ = try threads.submit(PoolFixture.specs(.crash(forced: true)), now: 0)
        var processes = try PoolFixture.pool(workers: 1, model: .processes, allowExec: true)
        _ = try processes.submit(PoolFixture.specs(.crash(forced: false), .exec(argv: ["true"])), now: 0)
        #expect(processes.totals.submitted == 2)
    }

    @Test("a job without a timeout gets the daemon's default")
    func defaultTimeout() throws {
        var pool = PoolStateMachine(
            model: .threads, configuration: .init(defaultTimeout: 5), clock: MonotonicClock(wallMinusMonotonic: 0))
        _ = try pool.submit([JobSpec(.fail), JobSpec(.fail, timeout: 1)], now: 0)
        #expect(try pool.jobs(ids: [1, 2]).map(\.spec.timeout) == [5, 1])
    }

    @Test("shrinking retires idle workers first, then busy ones after their job")
    func shrink() throws {
        var pool = try PoolFixture.pool(workers: 4)
        _ = try pool.submit(PoolFixture.specs(2), now: 0)
        let jobA = PoolFixture.take(&pool, 1)
        let jobB = PoolFixture.take(&pool, 2)
        #expect(pool.nextAssignment(for: 3, now: 1) == .wait)
        #expect(pool.nextAssignment(for: 4, now: 1) == .wait)
        // 4 -> 1: both idle workers (3, 4) and one busy worker (the newest, 2) retire; the busy
        // thread worker's unstarted jobs are taken back at once.
        let (_, actions) = try pool.resize(to: 1, now: 0)
        #expect(actions.count == 4 && [2, 3, 4].allSatisfy { actions.contains(.wake($0)) } && actions.contains(.release(2)))
        #expect(pool.workerCounts == WorkerCounts(target: 1, live: 4, busy: 2, idle: 0, retiring: 3))
        #expect(pool.nextAssignment(for: 3, now: 2) == .retire)
        #expect(pool.nextAssignment(for: 4, now: 2) == .retire)
        _ = pool.workerExited(3, exit: .retired, now: 2)
        _ = pool.workerExited(4, exit: .retired, now: 2)
        // The busy retiring worker keeps its job until it is done.
        #expect(pool.workers[2]?.job == jobB[0].id)
        _ = pool.finish(worker: 2, job: jobB[0].id, outcome: PoolFixture.ok, now: 3)
        #expect(pool.nextAssignment(for: 2, now: 3) == .retire)
        _ = pool.workerExited(2, exit: .retired, now: 3)
        _ = pool.finish(worker: 1, job: jobA[0].id, outcome: PoolFixture.ok, now: 3)
        #expect(pool.totals.done == 2)
        #expect(pool.workerCounts == WorkerCounts(target: 1, live: 1, busy: 0, idle: 1, retiring: 0))
    }

    @Test("growing again keeps busy retiring workers before starting new ones")
    func growKeepsRetiring() throws {
        var pool = try PoolFixture.pool(workers: 2)
        _ = try pool.submit(PoolFixture.specs(2), now: 0)
        _ = PoolFixture.take(&pool, 1)
        _ = PoolFixture.take(&pool, 2)
        _ = try pool.resize(to: 1, now: 0)
        #expect(pool.workerCounts.retiring == 1)
        let (_, actions) = try pool.resize(to: 3, now: 0)
        #expect(actions == [.startWorker(3, .threads, delay: 0)])
        // The new worker, still starting, counts as idle.
        #expect(pool.workerCounts == WorkerCounts(target: 3, live: 3, busy: 2, idle: 1, retiring: 0))
    }

    @Test("jobs given back go to the head of the queue in their order; a job that never ran loses its attempt")
    func returnJobs() throws {
        var pool = try PoolFixture.pool(workers: 1, model: .processes)
        _ = try pool.submit(PoolFixture.specs(5), now: 0)
        #expect(PoolFixture.take(&pool, 1, limit: 4).map(\.id) == [1, 2, 3, 4])
        _ = try pool.resize(to: 2, now: 1)
        pool.workerReady(2, osID: 2, now: 0)
        #expect(pool.nextAssignment(for: 2, now: 1) == .run([try #require(pool.table.job(5))]))
        _ = pool.finish(worker: 2, job: 5, outcome: PoolFixture.ok, now: 2)
        #expect(pool.nextAssignment(for: 2, now: 2) == .wait)
        // Worker 1 gives back the jobs it had not started; worker 2, waiting, is woken.
        #expect(pool.returnJobs(worker: 1, ids: [2, 3, 4], now: 3) == [.wake(2)])
        #expect(pool.jobs(state: .queued, limit: 10).map(\.id) == [2, 3, 4])
        #expect(PoolFixture.take(&pool, 2).map(\.id) == [2])
        // Even the job the pool thought running, if it had not started.
        var other = try PoolFixture.pool(workers: 1, model: .processes)
        _ = try other.submit(PoolFixture.specs(2), now: 0)
        _ = PoolFixture.take(&other, 1, limit: 2)
        _ = other.returnJobs(worker: 1, ids: [1, 2], now: 1)
        #expect(try other.jobs(ids: [1])[0].attempts == 0)
        #expect(PoolFixture.take(&other, 1).first?.attempts == 1)
        #expect(other.totals.retried == 0)
    }

    @Test("each worker holds a place from 1 to the target; a replacement, a switch and a resize reuse the free ones")
    func places() throws {
        var pool = try PoolFixture.pool(workers: 3)
        func places() -> [Int: Int] {
            Dictionary(uniqueKeysWithValues: pool.workerRows(now: 1).map { ($0.id, $0.slot ?? 0) })
        }
        #expect(places() == [1: 1, 2: 2, 3: 3])
        // Worker 2 dies: its replacement takes place 2.
        _ = pool.workerExited(2, exit: .died(reason: "killed"), now: 5_000_000_000)
        #expect(places() == [1: 1, 3: 3, 4: 2])
        // A switch: each old worker leaves (idle ones at once), a new one takes its place.
        _ = try pool.setModel(.tasks, preempt: false, now: 6_000_000_000)
        for id in [1, 3, 4] where pool.workers[id] != nil { _ = pool.workerExited(id, exit: .retired, now: 6_000_000_000) }
        #expect(Set(places().values) == [1, 2, 3] && places().keys.allSatisfy { $0 > 4 })
        // Shrinking frees places; growing again fills the lowest free ones.
        _ = try pool.resize(to: 1, now: 7_000_000_000)
        for id in pool.workers.keys where pool.workers[id]?.retiring == true {
            _ = pool.workerExited(id, exit: .retired, now: 7_000_000_000)
        }
        #expect(places().count == 1)
        let kept = try #require(places().values.first)
        _ = try pool.resize(to: 3, now: 8_000_000_000)
        #expect(Set(places().values) == [1, 2, 3] && places().values.filter { $0 == kept }.count == 1)
    }

    @Test("a dead worker's running job is retried, its unstarted ones requeued, and it is replaced")
    func deathRetries() throws {
        var pool = try PoolFixture.pool(workers: 1, model: .processes)
        _ = try pool.submit(PoolFixture.specs(3), now: 0)
        _ = PoolFixture.take(&pool, 1, limit: 2, now: 0)
        let actions = pool.workerExited(1, exit: .died(reason: "worker 1 (pid 10) killed by SIGKILL"), now: 5_000_000_000)
        #expect(actions.contains(.startWorker(2, .processes, delay: 0.1)))
        #expect(pool.jobs(state: .queued, limit: 10).map(\.id) == [1, 2, 3])
        #expect(pool.events.deaths == 1 && pool.events.restarts == 1)
        pool.workerReady(2, osID: 2, now: 0)
        let again = PoolFixture.take(&pool, 2)
        #expect(again.map(\.id) == [1] && again[0].attempts == 2)
        #expect(pool.totals.retried == 1)
    }

    @Test("a job whose workers keep dying fails after the attempt limit, with the reason")
    func attemptLimit() throws {
        var pool = try PoolFixture.pool(workers: 1, model: .processes, maxAttempts: 2)
        _ = try pool.submit(PoolFixture.specs(1, .crash(forced: false)), now: 0)
        var worker = 1
        for attempt in 1...2 {
            #expect(PoolFixture.take(&pool, worker).first?.attempts == attempt)
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
        var pool = try PoolFixture.pool(workers: 1, model: .processes, maxAttempts: 1)
        _ = try pool.submit(PoolFixture.specs(5), now: 0)
        #expect(PoolFixture.take(&pool, 1, limit: 5, now: 0).map(\.id) == [1, 2, 3, 4, 5])
        _ = pool.finish(worker: 1, job: 1, outcome: PoolFixture.ok, startedAt: 1, now: 2)
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
        var pool = try PoolFixture.pool(workers: 1, model: .processes, maxAttempts: 1)
        _ = try pool.submit(PoolFixture.specs(2), now: 0)
        _ = PoolFixture.take(&pool, 1, limit: 2, now: 0)
        _ = pool.workerExited(1, exit: .died(reason: "killed", progress: ProgressReport(running: nil, lastFinished: nil)), now: 5)
        #expect(pool.jobs(state: .queued, limit: 10).map(\.id) == [1, 2])
        #expect(try pool.jobs(ids: [1, 2]).map(\.attempts) == [0, 0])
        #expect(pool.totals.failed == 0)
    }

    @Test("a time limit found through the progress report interrupts the job really running")
    func progressTimeLimit() throws {
        var pool = try PoolFixture.pool(workers: 1, model: .processes)
        _ = try pool.submit([JobSpec(.fail), JobSpec(.sleep(milliseconds: 60_000), timeout: 1)], now: 0)
        _ = PoolFixture.take(&pool, 1, limit: 2, now: 0)
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
        var pool = try PoolFixture.pool(model: .processes)
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
        var pool = try PoolFixture.pool(workers: 1, model: .processes)
        _ = try pool.submit([JobSpec(.sleep(milliseconds: 10_000), timeout: 1)], now: 0)
        _ = PoolFixture.take(&pool, 1, now: 0)
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
        var pool = try PoolFixture.pool(workers: 1)
        _ = try pool.submit([JobSpec(.cpu(size: 9), timeout: 0.5)], now: 0)
        _ = PoolFixture.take(&pool, 1, now: 0)
        #expect(pool.tick(now: 600_000_000) == [.interrupt(1, job: 1)])
        _ = pool.finish(worker: 1, job: 1, outcome: .cancelled(JobOutcome.interruptedReason), now: 700_000_000)
        let job = try pool.jobs(ids: [1])[0]
        #expect(job.state == .failed && job.error == "exceeded its time limit of 0.5 s")
    }

    @Test("a long job holding unstarted ones while a worker idles is asked to release them")
    func release() throws {
        var pool = try PoolFixture.pool(workers: 1, model: .processes)
        _ = try pool.submit(PoolFixture.specs(3), now: 0)
        _ = PoolFixture.take(&pool, 1, limit: 3, now: 0)
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
        var pool = try PoolFixture.pool(workers: 2)
        _ = try pool.submit(PoolFixture.specs(3), now: 0)
        let job = PoolFixture.take(&pool, 1, now: 0)[0]
        let actions = pool.beginDrain(now: 5)
        // The busy thread worker (1) is woken and its unstarted jobs taken back at once.
        #expect(actions == [.wake(1), .release(1), .wake(2)])
        #expect(pool.phase == .draining)
        #expect(throws: SubmitError.shuttingDown) { try pool.submit(PoolFixture.specs(1), now: 6) }
        #expect(pool.totals.cancelled == 2)
        #expect(try pool.jobs(ids: [2])[0].error == PoolStateMachine.notStartedReason)
        #expect(pool.nextAssignment(for: 2, now: 6) == .retire)
        _ = pool.workerExited(2, exit: .retired, now: 6)
        #expect(!pool.isDrained)
        _ = pool.finish(worker: 1, job: job.id, outcome: PoolFixture.ok, now: 7)
        #expect(pool.nextAssignment(for: 1, now: 7) == .retire)
        _ = pool.workerExited(1, exit: .retired, now: 7)
        #expect(pool.isDrained)
        #expect(pool.totals == JobTotals(submitted: 3, done: 1, failed: 0, cancelled: 2, retried: 0))
    }

    @Test("cancelling interrupts running jobs and records why")
    func cancel() throws {
        var pool = try PoolFixture.pool(workers: 2)
        _ = try pool.submit(PoolFixture.specs(1, .cpu(size: 9)), now: 0)
        let job = PoolFixture.take(&pool, 1, now: 0)[0]
        let actions = pool.cancelRunning(reason: "interrupted: test", now: 1)
        #expect(actions.contains(.interrupt(1, job: nil)))
        #expect(!actions.contains(.interrupt(2, job: nil)))
        #expect(pool.phase == .stopping)
        _ = pool.finish(worker: 1, job: job.id, outcome: .cancelled(JobOutcome.interruptedReason), now: 2)
        let record = try pool.jobs(ids: [job.id])[0]
        #expect(record.state == .cancelled)
        #expect(record.error == "interrupted: test")
        #expect(pool.latency.run.totalCount == 0)
    }

    @Test("a watch started with a submit reports each job once, the last one ending it")
    func submitWatch() throws {
        var pool = try PoolFixture.pool(workers: 1)
        let (ids, watch, _) = try pool.submit(PoolFixture.specs(2), now: 0, watch: true)
        let watchID = try #require(watch)
        var notified: [(JobID, Bool)] = []
        for _ in ids {
            guard let job = PoolFixture.take(&pool, 1).first else { continue }
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
        var pool = try PoolFixture.pool(workers: 1)
        let watch = try pool.addWatch(ids: [])
        #expect(!watch.complete && watch.finished.isEmpty)
        _ = try pool.submit(PoolFixture.specs(2), now: 0)
        var seen: [(JobID, Bool)] = []
        for _ in 0..<2 {
            guard let job = PoolFixture.take(&pool, 1).first else { continue }
            for case .notify(let id, let info, let last) in pool.finish(worker: 1, job: job.id, outcome: .failed("x"), now: 2)
            where id == watch.id {
                seen.append((info.id, last))
            }
        }
        #expect(seen.map(\.0) == [1, 2] && seen.allSatisfy { !$0.1 })
        pool.removeWatch(watch.id)
        _ = try pool.submit(PoolFixture.specs(1), now: 3)
        guard let job = PoolFixture.take(&pool, 1).first else { return }
        #expect(pool.finish(worker: 1, job: job.id, outcome: .failed("x"), now: 5).isEmpty)
    }

    @Test("a watch of finished jobs completes at once; unknown ids are refused")
    func idWatch() throws {
        var pool = try PoolFixture.pool(workers: 1)
        _ = try pool.submit(PoolFixture.specs(2), now: 0)
        let job = PoolFixture.take(&pool, 1)[0]
        _ = pool.finish(worker: 1, job: job.id, outcome: .failed("x"), now: 2)
        let done = try pool.addWatch(ids: [1])
        #expect(done.complete && done.finished.map(\.id) == [1])
        let pending = try pool.addWatch(ids: [1, 2])
        #expect(!pending.complete && pending.finished.map(\.id) == [1])
        #expect(throws: NoSuchJobError(id: 3)) { try pool.addWatch(ids: [3]) }
        #expect(throws: NoSuchJobError(id: 99)) { try pool.jobs(ids: [99]) }
    }
}
