import ConcurProtocol
import ConcurTestSupport
import Testing

@testable import ConcurCore

@Suite("Model switches in the pool state machine")
struct SwitchTests {
    /// A threads pool of `workers` workers, each running a job (ids 1...workers).
    func busyPool(workers: Int) throws -> PoolStateMachine {
        var pool = try PoolFixture.pool(workers: workers)
        _ = try pool.submit(PoolFixture.specs(workers, .sleep(milliseconds: 100)), now: 0)
        for id in 1...workers { _ = PoolFixture.take(&pool, id) }
        return pool
    }

    @Test("a graceful switch retires idle workers at once and starts new ones only in free places")
    func graceful() throws {
        var pool = try PoolFixture.pool(workers: 3)
        _ = try pool.submit(PoolFixture.specs(2, .sleep(milliseconds: 100)), now: 0)
        let busy = [PoolFixture.take(&pool, 1), PoolFixture.take(&pool, 2)]
        let (previous, actions) = try pool.setModel(.processes, preempt: false, now: 10)
        #expect(previous == .threads)
        // Everyone retires (the busy ones after their job, their unstarted jobs taken back at
        // once: they are thread workers); no place is free yet.
        #expect(actions == [.wake(1), .release(1), .wake(2), .release(2), .wake(3)])
        #expect(pool.model == .processes && pool.switches == 1)
        let allRetiring = pool.workers.values.allSatisfy { $0.retiring }
        #expect(allRetiring)
        // The idle one leaves: one place for a new worker, no more.
        #expect(pool.nextAssignment(for: 3, now: 11) == .retire)
        #expect(pool.workerExited(3, exit: .retired, now: 12) == [.startWorker(4, .processes, delay: 0)])
        #expect(pool.switchProgress == .starting)
        pool.workerReady(4, osID: 400, now: 20)
        #expect(pool.switchProgress == .serving)
        #expect(pool.lastSwitch?.firstServingAt == 20)
        // Busy ones finish their job, then leave, each replaced.
        _ = pool.finish(worker: 1, job: busy[0][0].id, outcome: PoolFixture.ok, now: 30)
        #expect(pool.nextAssignment(for: 1, now: 30) == .retire)
        #expect(pool.workerExited(1, exit: .retired, now: 31) == [.startWorker(5, .processes, delay: 0)])
        #expect(pool.lastSwitch?.oldRetiredAt == nil)
        _ = pool.finish(worker: 2, job: busy[1][0].id, outcome: PoolFixture.ok, now: 40)
        _ = pool.workerExited(2, exit: .retired, now: 41)
        #expect(pool.lastSwitch?.oldRetiredAt == 41)
        #expect(pool.workers.count == 3 && pool.workers.values.allSatisfy { $0.model == .processes })
        #expect(pool.totals.done == 2 && pool.totals.retried == 0)
    }

    @Test("a preempting switch interrupts running jobs; they go back to the head of the queue")
    func preempt() throws {
        var pool = try PoolFixture.pool(workers: 2)
        _ = try pool.submit(PoolFixture.specs(3, .cpu(size: 9)), now: 0)
        let job1 = PoolFixture.take(&pool, 1)[0]
        _ = PoolFixture.take(&pool, 2)
        let (_, actions) = try pool.setModel(.tasks, preempt: true, now: 5)
        #expect(actions.filter { if case .interrupt = $0 { true } else { false } }.count == 2)
        #expect(actions.contains(.interrupt(1, job: nil)) && actions.contains(.interrupt(2, job: nil)))
        // Job 1's run noticed its flag: it is queued again, first.
        _ = pool.finish(worker: 1, job: job1.id, outcome: .cancelled(JobOutcome.interruptedReason), now: 6)
        #expect(pool.jobs(state: .queued, limit: 10).map(\.id) == [1, 3])
        // Job 2 had finished before the flag: it is done, not re-run.
        _ = pool.finish(worker: 2, job: 2, outcome: PoolFixture.ok, now: 6)
        #expect(try pool.jobs(ids: [2])[0].state == .done)
        #expect(pool.totals.cancelled == 0)
        _ = pool.workerExited(1, exit: .retired, now: 7)
        _ = pool.workerExited(2, exit: .retired, now: 7)
        #expect(pool.workers.count == 2 && pool.workers.values.allSatisfy { $0.model == .tasks })
        for id in Array(pool.workers.keys) { pool.workerReady(id, osID: nil, now: 8) }
        let next = PoolFixture.take(&pool, 3)
        #expect(next.map(\.id) == [1])
        #expect(pool.lastSwitch?.firstJobAt != nil)
    }

    @Test("preempted runs do not count against the attempt limit for deaths")
    func preemptionsAreFree() throws {
        var pool = try PoolFixture.pool(workers: 1, model: .processes, maxAttempts: 2)
        _ = try pool.submit(PoolFixture.specs(1, .cpu(size: 9)), now: 0)
        _ = PoolFixture.take(&pool, 1)
        _ = try pool.setModel(.tasks, preempt: true, now: 1)
        _ = try pool.setModel(.processes, preempt: true, now: 2)
        _ = pool.finish(worker: 1, job: 1, outcome: .cancelled(JobOutcome.interruptedReason), now: 3)
        _ = pool.workerExited(1, exit: .retired, now: 4)
        var worker = try #require(pool.workers.keys.first)
        pool.workerReady(worker, osID: 9, now: 0)
        #expect(PoolFixture.take(&pool, worker).first?.attempts == 2)
        // Its worker dies: one death, so it is retried although two attempts started.
        for case .startWorker(let id, _, _) in pool.workerExited(worker, exit: .died(reason: "killed"), now: 5) { worker = id }
        #expect(try pool.jobs(ids: [1])[0].state == .queued)
        pool.workerReady(worker, osID: 10, now: 0)
        _ = PoolFixture.take(&pool, worker)
        _ = pool.workerExited(worker, exit: .died(reason: "killed"), now: 6)
        let job = try pool.jobs(ids: [1])[0]
        #expect(job.state == .failed && job.attempts == 3 && job.error == "killed (attempt 2 of 2)")
    }

    @Test("an interrupt of whatever runs is taken by the job that reports cancelled, even after batched reports")
    func interruptWithStaleReports() throws {
        var pool = try PoolFixture.pool(workers: 1)
        _ = try pool.submit(PoolFixture.specs(4, .cpu(size: 1)), now: 0)
        #expect(PoolFixture.take(&pool, 1, limit: 4).map(\.id) == [1, 2, 3, 4])
        // The pool still thinks job 1 runs; the worker is on job 3 when the switch comes.
        _ = try pool.setModel(.processes, preempt: true, now: 5)
        // As the pool settles an in-process worker: what it did not start first, then its reports.
        _ = pool.returnJobs(worker: 1, ids: [4], now: 7)
        _ = pool.finish(
            worker: 1,
            reports: [
                JobReport(id: 1, outcome: PoolFixture.ok, startedAt: 1, finishedAt: 2),
                JobReport(id: 2, outcome: PoolFixture.ok, startedAt: 2, finishedAt: 3),
                JobReport(id: 3, outcome: .cancelled(JobOutcome.interruptedReason), startedAt: 3, finishedAt: 6),
            ])
        #expect(pool.totals.done == 2 && pool.totals.cancelled == 0)
        #expect(pool.jobs(state: .queued, limit: 10).map(\.id) == [3, 4])
    }

    @Test("a switch during a switch retargets it; switching back keeps the workers that had not left")
    func coalesce() throws {
        var pool = try busyPool(workers: 2)
        _ = try pool.setModel(.processes, preempt: false, now: 1)
        #expect(pool.switchProgress == .starting)
        let (previous, actions) = try pool.setModel(.threads, preempt: false, now: 2)
        #expect(previous == .processes && actions.isEmpty)
        #expect(pool.workers.values.allSatisfy { !$0.retiring && $0.model == .threads })
        #expect(pool.switchProgress == .serving)
        #expect(pool.switches == 2)
        #expect(try pool.setModel(.threads, preempt: true, now: 3).actions.isEmpty)
        #expect(pool.switches == 2)
    }

    @Test("a worker whose job is being preempted is not kept by a switch back")
    func preemptedStayRetiring() throws {
        var pool = try PoolFixture.pool(workers: 1)
        _ = try pool.submit(PoolFixture.specs(1, .cpu(size: 9)), now: 0)
        _ = PoolFixture.take(&pool, 1)
        _ = try pool.setModel(.tasks, preempt: true, now: 1)
        _ = try pool.setModel(.threads, preempt: false, now: 2)
        #expect(pool.workers[1]?.retiring == true)
        _ = pool.finish(worker: 1, job: 1, outcome: .cancelled(JobOutcome.interruptedReason), now: 3)
        #expect(pool.jobs(state: .queued, limit: 10).map(\.id) == [1])
    }

    @Test("resizing during a handover counts only workers of the new model against the target")
    func resizeDuringHandover() throws {
        var pool = try busyPool(workers: 2)
        _ = try pool.setModel(.tasks, preempt: false, now: 1)
        // Two old workers still busy: growing to 3 gives one free place.
        #expect(try pool.resize(to: 3, now: 2).actions == [.startWorker(3, .tasks, delay: 0)])
        // Shrinking to 1: the new worker is that one; the old ones leave without replacement.
        #expect(try pool.resize(to: 1, now: 3).actions.isEmpty)
        _ = pool.finish(worker: 1, job: 1, outcome: PoolFixture.ok, now: 5)
        #expect(pool.workerExited(1, exit: .retired, now: 6).isEmpty)
        _ = pool.finish(worker: 2, job: 2, outcome: PoolFixture.ok, now: 7)
        #expect(pool.workerExited(2, exit: .retired, now: 8).isEmpty)
        #expect(pool.workers.keys.sorted() == [3])
    }

    @Test("switches are refused once shutdown began; a switch in progress then reports the shutdown")
    func shutdown() throws {
        var pool = try PoolFixture.pool(workers: 1)
        _ = try pool.setModel(.processes, preempt: false, now: 1)
        _ = pool.beginDrain(now: 2)
        #expect(pool.switchProgress == .shuttingDown)
        #expect(throws: SwitchError.shuttingDown) { try pool.setModel(.threads, preempt: false, now: 3) }
    }

    @Test("a switch whose workers all fail to start is reported failed")
    func failedStart() throws {
        var pool = try PoolFixture.pool(workers: 1)
        _ = try pool.setModel(.processes, preempt: false, now: 1)
        _ = pool.workerExited(1, exit: .retired, now: 2)
        var worker: WorkerID = 2
        for _ in 0..<5 {
            for case .startWorker(let id, _, _) in pool.workerExited(
                worker, exit: .died(reason: "exited with status 1 before it started serving"), now: 3)
            {
                worker = id
            }
        }
        guard case .failed(let reason) = pool.switchProgress else {
            Issue.record("expected a failed switch, got \(pool.switchProgress)")
            return
        }
        #expect(reason.contains("status 1"))
    }
}

/// Drives the state machine with seeded random sequences of submits, resizes, graceful and
/// preempting switches, and in-process workers that run jobs from their batch and report them
/// in batches (so the pool's idea of the running job is often stale), checking after every
/// step that no job is in two places and no worker starts beyond the target.
@Suite("Model switches under random sequences")
struct SwitchInvariantTests {
    struct Simulation {
        /// Jobs each worker holds, the first running.
        var held: [WorkerID: [Job]] = [:]
        /// Finished jobs not reported yet.
        var unreported: [WorkerID: [JobReport]] = [:]
        /// Workers told to stop what runs (a preemption): the next job to end is cancelled, and
        /// they start no other.
        var stopped: Set<WorkerID> = []
        var gone: Set<WorkerID> = []
        var ready: Set<WorkerID> = []
        /// Runs that ended `done`, per job.
        var completions: [JobID: Int] = [:]
        var preempted = 0
        var random: SplitMix64

        mutating func apply(_ actions: [PoolAction], _ pool: inout PoolStateMachine) {
            for action in actions {
                switch action {
                case .startWorker:
                    #expect(pool.workers.count <= max(pool.target, 1), "a worker started beyond the target")
                case .interrupt(let id, nil):
                    // As the handle does: the running job is interrupted (unless it just ended),
                    // and the worker starts no other.
                    stopped.insert(id)
                case .wake(let id) where pool.workers[id]?.retiring == true:
                    // A retiring in-process worker's unstarted jobs are taken back at once.
                    giveBack(id, &pool)
                default: break
                }
            }
        }

        mutating func giveBack(_ id: WorkerID, _ pool: inout PoolStateMachine) {
            guard let jobs = held[id], jobs.count > 1 else { return }
            held[id] = [jobs[0]]
            apply(pool.returnJobs(worker: id, ids: jobs.dropFirst().map(\.id), now: 1), &pool)
        }

        /// The worker's running job ends (cancelled, if it was stopped and noticed in time).
        mutating func runOne(_ id: WorkerID) {
            guard var jobs = held[id], !jobs.isEmpty else { return }
            let job = jobs.removeFirst()
            held[id] = jobs
            let outcome: JobOutcome
            if stopped.contains(id) && random.next() % 4 != 0 {
                outcome = .cancelled(JobOutcome.interruptedReason)
                preempted += 1
            } else {
                outcome = PoolFixture.ok
                completions[job.id, default: 0] += 1
            }
            unreported[id, default: []].append(JobReport(id: job.id, outcome: outcome, startedAt: 1, finishedAt: 1))
        }

        /// The worker settles with the pool as ``Pool`` does: gives back what it will not run,
        /// reports, and asks for more. A stopped worker first lets its running job end, and
        /// starts no other.
        mutating func settle(_ id: WorkerID, limit: Int, _ pool: inout PoolStateMachine) {
            var giveBack: [JobID] = []
            if stopped.contains(id) {
                runOne(id)
                giveBack = held[id]?.map(\.id) ?? []
                held[id] = []
                stopped.remove(id)
            }
            if !giveBack.isEmpty { apply(pool.returnJobs(worker: id, ids: giveBack, now: 1), &pool) }
            if let reports = unreported[id], !reports.isEmpty {
                unreported[id] = []
                apply(pool.finish(worker: id, reports: reports), &pool)
            }
            guard held[id]?.isEmpty ?? true else { return }
            switch pool.nextAssignment(for: id, limit: limit, now: 1) {
            case .run(let jobs): held[id, default: []] += jobs
            case .wait: break
            case .retire:
                gone.insert(id)
                apply(pool.workerExited(id, exit: .retired, now: 1), &pool)
            }
        }

        func live(_ pool: PoolStateMachine) -> [WorkerID] {
            pool.workers.keys.sorted().filter { !gone.contains($0) && ready.contains($0) }
        }

        mutating func startPending(_ pool: inout PoolStateMachine) {
            for id in pool.workers.keys.sorted() where !ready.contains(id) && random.next() % 2 == 0 {
                ready.insert(id)
                pool.workerReady(id, osID: nil, now: 1)
            }
        }

        /// Every job not final is in exactly one place: the queue, or one worker's hands.
        func checkPlaces(_ pool: PoolStateMachine, submitted: Int) {
            var places: [JobID: Int] = [:]
            for id in pool.queue.prefix(pool.queue.count) { places[id, default: 0] += 1 }
            for (worker, jobs) in held where !gone.contains(worker) {
                for job in jobs { places[job.id, default: 0] += 1 }
            }
            for (worker, reports) in unreported where !gone.contains(worker) {
                for report in reports { places[report.id, default: 0] += 1 }
            }
            #expect(places.values.allSatisfy { $0 == 1 }, "a job is in two places")
            #expect(places.count + pool.totals.finished == submitted, "a job is nowhere")
        }
    }

    @Test("every job is done exactly once across switches, preemptions and resizes", arguments: Array(1...12) as [UInt64])
    func randomSwitches(seed: UInt64) throws {
        var pool = PoolStateMachine(
            model: .threads, configuration: .init(maxQueue: 100_000, maxWorkers: 8, retainFinished: 100_000),
            clock: MonotonicClock(wallMinusMonotonic: 0))
        var sim = Simulation(random: SplitMix64(seed: seed))
        var submitted = 0
        sim.apply(try pool.resize(to: 3, now: 0).actions, &pool)
        let models = ConcurrencyModel.allCases
        for _ in 0..<4_000 {
            sim.startPending(&pool)
            switch sim.random.next() % 24 {
            case 0, 1, 2:
                let count = Int(sim.random.next() % 6) + 1
                sim.apply(try pool.submit(PoolFixture.specs(count), now: 0).actions, &pool)
                submitted += count
            case 3:
                sim.apply(try pool.resize(to: Int(sim.random.next() % 8) + 1, now: 0).actions, &pool)
            case 4, 5:
                let model = models[Int(sim.random.next() % 3)]
                sim.apply(try pool.setModel(model, preempt: sim.random.next() % 2 == 0, now: 0).actions, &pool)
            default:
                let live = sim.live(pool)
                guard !live.isEmpty else { continue }
                let id = live[Int(sim.random.next() % UInt64(live.count))]
                if sim.random.next() % 3 == 0 || sim.stopped.contains(id) {
                    sim.settle(id, limit: Int(sim.random.next() % 4) + 1, &pool)
                } else {
                    sim.runOne(id)
                }
            }
            sim.checkPlaces(pool, submitted: submitted)
            #expect(pool.workers.values.filter { !$0.retiring }.allSatisfy { $0.model == pool.model })
        }
        // Let the workers run the queue dry.
        var rounds = 0
        while pool.queuedCount > 0 || sim.held.values.contains(where: { !$0.isEmpty })
            || sim.unreported.values.contains(where: { !$0.isEmpty })
        {
            sim.startPending(&pool)
            for id in sim.live(pool) {
                sim.runOne(id)
                sim.settle(id, limit: 3, &pool)
            }
            rounds += 1
            try #require(rounds < 100_000)
        }
        #expect(sim.completions.count == submitted)
        #expect(sim.completions.values.allSatisfy { $0 == 1 })
        #expect(pool.totals.done == submitted && pool.totals.finished == submitted)
        #expect(pool.workers.values.allSatisfy { $0.model == pool.model })
        #expect(pool.switches > 0 && sim.preempted > 0)
    }
}
