import ConcurCore
import ConcurProtocol
import ConcurRuntime
import ConcurTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

/// Several pools in one supervisor, with real threads and tasks: each keeps its own workers and
/// jobs, they share one id space, and jobs may run after jobs of another pool.
@Suite("Named pools in one supervisor", .serialized)
struct NamedPoolTests {
    static let io = PoolName("io")!

    func twoPools(defaultWorkers: Int = 2, ioWorkers: Int = 3) throws -> Supervisor {
        let limits = PoolStateMachine.Configuration(maxQueue: 100_000, maxWorkers: 16, retainFinished: 100_000)
        let supervisor = Supervisor(
            pools: [
                .init(name: .default, configuration: .init(model: .threads, workers: defaultWorkers, limits: limits)),
                .init(name: Self.io, configuration: .init(model: .tasks, workers: ioWorkers, limits: limits)),
            ], models: InProcessModels.all, version: "test")
        try supervisor.start(pools: [(.default, defaultWorkers), (Self.io, ioWorkers)])
        return supervisor
    }

    /// Each worker's id, model and state, by pool.
    func workers(_ pool: Pool) -> [WorkerID: ConcurrencyModel] {
        pool.read { state in state.workers.mapValues(\.model) }
    }

    @Test("a resize, a switch and a pause of one pool leave the other's workers and jobs alone")
    func separate() throws {
        let supervisor = try twoPools()
        let io = try supervisor.pool(named: Self.io)
        let before = workers(supervisor.pool)
        let (running, _) = try supervisor.pool.submit(Array(repeating: JobSpec(.sleep(milliseconds: 300)), count: 2))
        #expect(eventually { supervisor.pool.read { $0.runningCount } == 2 })
        _ = try io.resize(to: 6)
        _ = try io.setModel(.threads, preempt: true) { _ in }
        _ = io.setPaused(true)
        let (held, _) = try io.submit([JobSpec(.cpu(size: 0))])
        #expect(eventually { io.read { $0.workers.values.allSatisfy { $0.model == .threads } && $0.workers.count == 6 } })
        #expect(workers(supervisor.pool) == before)
        #expect(supervisor.pool.read { $0.runningCount } == 2 && supervisor.pool.read { $0.model } == .threads)
        #expect(!supervisor.pool.read { $0.paused })
        #expect(io.read { $0.job(held.lowerBound)?.state } == .queued)
        #expect(eventually { supervisor.pool.read { state in running.allSatisfy { state.job($0)?.state == .done } } })
        _ = io.setPaused(false)
        #expect(eventually { io.read { $0.job(held.lowerBound)?.state } == .done })
        #expect(supervisor.drain(timeout: 5) == .drained)
    }

    @Test("ids are unique and rising across pools; each pool holds only its own")
    func sharedIDs() throws {
        let supervisor = try twoPools()
        let io = try supervisor.pool(named: Self.io)
        var all: [JobID] = []
        for round in 0..<20 {
            let pool = round % 2 == 0 ? supervisor.pool : io
            all += Array(try pool.submit(Array(repeating: JobSpec(.cpu(size: 0)), count: 1 + round * 37)).ids)
        }
        #expect(all == Array(1...JobID(all.count)))
        #expect(supervisor.pool(holding: 1) === supervisor.pool && supervisor.pool(holding: 2) === io)
        #expect(supervisor.pool(holding: JobID(all.count + 1)) == nil)
        #expect(eventually { supervisor.statuses().reduce(0) { $0 + $1.totals.done } == all.count })
        #expect(supervisor.drain(timeout: 5) == .drained)
    }

    @Test("a job runs after another pool's job, and a failure cancels across pools")
    func crossPool() throws {
        let supervisor = try twoPools()
        let io = try supervisor.pool(named: Self.io)
        let (first, _) = try supervisor.submit([JobSpec(.sleep(milliseconds: 100))], to: supervisor.pool) { _ in }
        let (second, _) = try supervisor.submit(
            [JobSpec(.cpu(size: 0), placement: JobPlacement(after: [first.lowerBound]))], to: io
        ) { _ in }
        #expect(io.read { $0.job(second.lowerBound)?.state } == .waiting)
        #expect(eventually { io.read { $0.job(second.lowerBound)?.state } == .done })
        let started = io.read { $0.job(second.lowerBound)?.startedAt } ?? 0
        let ended = supervisor.pool.read { $0.job(first.lowerBound)?.finishedAt } ?? .infinity
        #expect(started >= ended)

        let (failing, _) = try supervisor.submit([JobSpec(.fail)], to: io) { _ in }
        let (chain, _) = try supervisor.submit(
            [JobSpec(.cpu(size: 0), placement: JobPlacement(after: [failing.lowerBound]))], to: supervisor.pool
        ) { _ in }
        let (back, _) = try supervisor.submit(
            [JobSpec(.cpu(size: 0), placement: JobPlacement(after: [chain.lowerBound]))], to: io
        ) { _ in }
        #expect(eventually { io.read { $0.job(back.lowerBound)?.state } == .cancelled })
        #expect(
            supervisor.pool.read { $0.job(chain.lowerBound)?.error } == "job \(failing.lowerBound), which it runs after, failed")
        #expect(
            io.read { $0.job(back.lowerBound)?.error } == "job \(chain.lowerBound), which it runs after, was cancelled")
        #expect(supervisor.drain(timeout: 5) == .drained)
    }

    @Test("a drain ends every pool; a removed pool keeps its jobs and takes no work")
    func drainAndRemove() throws {
        let supervisor = try twoPools()
        let io = try supervisor.pool(named: Self.io)
        _ = io.setPaused(true)
        let (kept, _) = try io.submit(Array(repeating: JobSpec(.cpu(size: 0)), count: 5))
        supervisor.removePool(Self.io)
        #expect(throws: UnknownPoolError(name: Self.io, removed: true, pools: [.default])) { try supervisor.pool(named: Self.io) }
        #expect(try supervisor.anyPool(named: Self.io) === io)
        #expect(eventually { io.read { $0.workers.isEmpty } })
        #expect(io.read { state in kept.allSatisfy { state.job($0)?.state == .queued } })
        #expect(supervisor.statuses().map(\.removed) == [false, true])
        #expect(supervisor.drain(timeout: 5) == .drained)
        #expect(supervisor.pools.allSatisfy { pool in pool.read { !$0.intakeOpen } })
    }

    @Test("a switch cut off by a removal says so; a pool taken back runs the model it is given")
    func removedDuringSwitch() throws {
        let supervisor = try twoPools(ioWorkers: 2)
        let io = try supervisor.pool(named: Self.io)
        _ = try io.setModel(.threads, preempt: false) { _ in }
        #expect(eventually { io.read { $0.workers.values.allSatisfy { $0.model == .threads } } })
        _ = try io.submit(Array(repeating: JobSpec(.sleep(milliseconds: 300)), count: 2))
        #expect(eventually { io.read { $0.runningCount } == 2 })
        let outcome = Mutex<SwitchOutcome?>(nil)
        _ = try io.setModel(.tasks, preempt: false) { result in outcome.withLock { $0 = result } }
        supervisor.removePool(Self.io)
        #expect(eventually { outcome.withLock { $0 } != nil })
        guard case .failed(let reason)? = outcome.withLock({ $0 }) else {
            Issue.record("\(String(describing: outcome.withLock { $0 }))")
            return
        }
        #expect(reason.contains("removed from the configuration"), "\(reason)")
        #expect(eventually { io.read { $0.workers.isEmpty } })
        #expect(io.read { $0.model } == .tasks)
        // Taken back as threads: it runs threads, whatever it was switching to.
        let limits = PoolStateMachine.Configuration(maxQueue: 1_000, maxWorkers: 16)
        try supervisor.addPool(
            Self.io, configuration: .init(model: .threads, workers: 2, limits: limits), store: MemoryJobStore())
        #expect(
            eventually { io.read { $0.workers.count == 2 && $0.workers.values.allSatisfy { $0.model == .threads && $0.ready } } })
        #expect(io.read { $0.model } == .threads)
        supervisor.removePool(Self.io)
        #expect(eventually { io.read { $0.workers.isEmpty } })
        try supervisor.addPool(Self.io, configuration: .init(model: .tasks, workers: 1, limits: limits), store: MemoryJobStore())
        #expect(
            eventually { io.read { $0.workers.count == 1 && $0.workers.values.allSatisfy { $0.model == .tasks && $0.ready } } })
        Thread.sleep(forTimeInterval: 0.2)
        #expect(io.read { $0.model } == .tasks)
        #expect(supervisor.drain(timeout: 5) == .drained)
    }

    @Test("the status line: one pool as before, several pool by pool")
    func statusLine() throws {
        let supervisor = try twoPools()
        let one = supervisor.status()
        #expect(
            Supervisor.statusLine([one]) == "threads, 2 workers (0 busy), 0 queued, 0 running, 0 done, 0 failed"
                && Supervisor.statusLine(one) == Supervisor.statusLine([one]))
        #expect(eventually { supervisor.statuses().allSatisfy { $0.workers.live > 0 } })
        #expect(
            Supervisor.statusLine(supervisor.statuses())
                == "2 pools: default threads, 2 workers (0 busy), 0 queued; io tasks, 3 workers (0 busy), 0 queued - 0 running, 0 done, 0 failed"
        )
        // A pool whose journal cannot record is named first; a drain is the daemon's.
        var statuses = supervisor.statuses()
        statuses[1].phase = .degraded
        #expect(Supervisor.statusLine(statuses).hasPrefix("degraded (io), the job journal cannot record (new jobs refused there"))
        statuses[0].phase = .draining
        #expect(Supervisor.statusLine(statuses).hasPrefix("draining: 2 pools: "))
        let io = try supervisor.pool(named: Self.io)
        _ = io.setPaused(true)
        _ = try io.submit([JobSpec(.cpu(size: 0))])
        supervisor.removePool(Self.io)
        #expect(eventually { Supervisor.statusLine(supervisor.statuses()).contains("; io removed, 1 kept -") })
        // Once it holds no unfinished job, a removed pool is no longer shown.
        _ = io.cancelQueued(reason: "test")
        #expect(supervisor.statuses().map(\.pool) == ["default"])
        #expect(Supervisor.statusLine(supervisor.statuses()).hasPrefix("threads, 2 workers"))
        #expect(supervisor.drain(timeout: 5) == .drained)
    }
}
