import ConcurProtocol
import ConcurTestSupport
import Testing

@testable import ConcurCore

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
                _ = pool.finish(worker: id, job: job.id, outcome: PoolFixture.ok, now: 1)
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
            clock: MonotonicClock(wallMinusMonotonic: 0))
        var workers = Workers()
        var submitted = 0
        _ = try pool.resize(to: 3, now: 0)
        for _ in 0..<3_000 {
            for id in pool.workers.keys where !(pool.workers[id]?.ready ?? true) { pool.workerReady(id, osID: id, now: 0) }
            switch random.next() % 20 {
            case 0, 1, 2:
                let count = Int(random.next() % 5) + 1
                _ = try pool.submit(PoolFixture.specs(count), now: 0)
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
