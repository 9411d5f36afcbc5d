import ConcurCore
import ConcurProtocol
import ConcurRuntime
import ConcurTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

/// The models whose workers live in the daemon's process, shared by the tests (the tasks
/// model's executor threads live as long as the process).
enum InProcessModels {
    static let tasks = try! TaskModel(threads: 2)
    static let all: [any WorkerModel] = [ThreadModel(), tasks]
}

/// The pool with real threads and real tasks: the same behaviour in both models.
@Suite("The in-process models", .serialized)
struct InProcessPoolTests {
    func makeSupervisor(workers: Int, model: ConcurrencyModel = .threads, maxWorkers: Int = 16) throws -> Supervisor {
        let supervisor = Supervisor(
            configuration: .init(
                model: model, workers: workers,
                limits: .init(maxQueue: 100_000, maxWorkers: maxWorkers, retainFinished: 100_000)),
            models: InProcessModels.all, version: "test")
        try supervisor.start(workers: workers)
        return supervisor
    }

    @Test("runs every job of a batch exactly once on several workers", arguments: [ConcurrencyModel.threads, .tasks])
    func runsEverything(model: ConcurrencyModel) throws {
        let supervisor = try makeSupervisor(workers: 3, model: model)
        let finished = Mutex<[JobID]>([])
        let sink = JobWatchSink {}
        let (ids, _) = try supervisor.pool.submit(Array(repeating: JobSpec(.cpu(size: 0)), count: 5_000), watch: sink)
        #expect(
            eventually {
                let (jobs, _, _) = sink.takeJobs()
                finished.withLock { $0 += jobs.map(\.id) }
                return finished.withLock { $0.count } == 5_000
            })
        #expect(finished.withLock { $0.sorted() } == Array(ids))
        let status = supervisor.status()
        #expect(status.totals.done == 5_000)
        let workers = Set(supervisor.pool.read { $0.jobs(state: .done, limit: 5_000) }.map(\.worker))
        #expect(workers.isSubset(of: [1, 2, 3]), "every job names a worker of this pool: \(workers)")
        // Jobs that take a moment are shared (a batch is at most an even share of the queue): a
        // worker woken late may miss them, but they do not all go to one.
        let (slow, _) = try supervisor.pool.submit(Array(repeating: JobSpec(.sleep(milliseconds: 10)), count: 90))
        #expect(eventually { supervisor.status().totals.done == 5_090 })
        let slowWorkers = Set(supervisor.pool.read { state in slow.compactMap { state.job($0)?.worker } })
        #expect(slowWorkers.count >= 2 && slowWorkers.isSubset(of: [1, 2, 3]), "\(slowWorkers)")
        #expect(supervisor.drain(timeout: 5) == .drained)
    }

    @Test("resizes while jobs run without losing any", arguments: [ConcurrencyModel.threads, .tasks])
    func resizeUnderLoad(model: ConcurrencyModel) throws {
        let supervisor = try makeSupervisor(workers: 4, model: model)
        _ = try supervisor.pool.submit(Array(repeating: JobSpec(.sleep(milliseconds: 5)), count: 200))
        for count in [1, 6, 2, 4] {
            _ = try supervisor.pool.resize(to: count)
            usleep(20_000)
        }
        #expect(eventually { supervisor.status().totals.done == 200 })
        #expect(eventually { supervisor.status().workers == WorkerCounts(target: 4, live: 4, busy: 0, idle: 4, retiring: 0) })
        #expect(supervisor.drain(timeout: 5) == .drained)
    }

    @Test("shrinking never interrupts a running job", arguments: [ConcurrencyModel.threads, .tasks])
    func shrinkWaitsForJobs(model: ConcurrencyModel) throws {
        let supervisor = try makeSupervisor(workers: 2, model: model)
        _ = try supervisor.pool.submit([JobSpec(.sleep(milliseconds: 300)), JobSpec(.sleep(milliseconds: 300))])
        #expect(eventually { supervisor.status().running == 2 })
        _ = try supervisor.pool.resize(to: 1)
        #expect(supervisor.status().workers.retiring == 1)
        #expect(eventually { supervisor.status().totals.done == 2 })
        #expect(supervisor.status().totals.cancelled == 0)
        #expect(eventually { supervisor.status().workers.live == 1 })
    }

    /// Jobs the supervisor's in-process workers have started, by their own account.
    static func startedJobs(_ supervisor: Supervisor) -> Int {
        let ids = supervisor.pool.read { Array($0.workers.keys) }
        return ids.compactMap { supervisor.pool.handle(for: $0)?.startedJob }.count
    }

    @Test("a drain lets running jobs finish; a cancel interrupts them", arguments: [ConcurrencyModel.threads, .tasks])
    func drainAndCancel(model: ConcurrencyModel) throws {
        let drained = try makeSupervisor(workers: 1, model: model)
        _ = try drained.pool.submit([JobSpec(.sleep(milliseconds: 200)), JobSpec(.sleep(milliseconds: 200))])
        // Started by the workers themselves: a job handed over but not started goes back, and
        // a drain cancels it as never started.
        #expect(eventually { Self.startedJobs(drained) == 1 })
        #expect(drained.drain(timeout: 10) == .drained)
        #expect(drained.status().totals == JobTotals(submitted: 2, done: 1, failed: 0, cancelled: 1, retried: 0))

        let cancelled = try makeSupervisor(workers: 2, model: model)
        _ = try cancelled.pool.submit([JobSpec(.cpu(size: 1000)), JobSpec(.sleep(milliseconds: 600_000))])
        #expect(eventually { Self.startedJobs(cancelled) == 2 })
        let start = MonotonicClock.now()
        #expect(cancelled.drain(timeout: 0.2) == .cancelled)
        #expect(MonotonicClock.now() - start < 5_000_000_000)
        let jobs = try cancelled.pool.read { state throws(NoSuchJobError) in try state.jobs(ids: [1, 2]) }
        #expect(jobs.allSatisfy { $0.state == .cancelled && $0.error?.contains("drain timeout") == true })
    }

    @Test("sleeping tasks hold no thread: 200 sleep jobs on 200 task workers overlap")
    func sleepingTasks() throws {
        let threadsBefore = Self.threadCount()
        let supervisor = try makeSupervisor(workers: 200, model: .tasks, maxWorkers: 256)
        let start = MonotonicClock.now()
        _ = try supervisor.pool.submit(Array(repeating: JobSpec(.sleep(milliseconds: 500)), count: 200))
        #expect(eventually { supervisor.status().running >= 150 })
        // 200 half-second sleeps one after another would take 100 s.
        #expect(eventually(30) { supervisor.status().totals.done == 200 })
        #expect(MonotonicClock.now() - start < 30_000_000_000)
        // The workers are tasks: no thread was made for them.
        #expect(Self.threadCount() < threadsBefore + 20)
        #expect(supervisor.drain(timeout: 5) == .drained)
    }

    @Test("CPU-bound tasks on one thread take turns: each yields between chunks")
    func cooperative() throws {
        let oneThread = try TaskModel(threads: 1)
        let supervisor = Supervisor(
            configuration: .init(model: .tasks, workers: 2, limits: .init(maxQueue: 10, maxWorkers: 2)),
            models: [oneThread], version: "test")
        try supervisor.start(workers: 2)
        _ = try supervisor.pool.submit([JobSpec(.cpu(size: 2)), JobSpec(.cpu(size: 2))])
        #expect(eventually { supervisor.status().totals.done == 2 })
        let jobs = try supervisor.pool.read { state throws(NoSuchJobError) in try state.jobs(ids: [1, 2]) }
        // Both ran on the one thread, interleaved: the second started long before the first ended.
        let first = try #require(jobs[0].finishedAt)
        let second = try #require(jobs[1].startedAt)
        #expect(second < first)
        #expect(supervisor.drain(timeout: 5) == .drained)
    }

    @Test(
        "switching between threads and tasks under load loses no job and runs none twice",
        arguments: [false, true])
    func switchUnderLoad(preempt: Bool) throws {
        let supervisor = try makeSupervisor(workers: 3)
        let sink = JobWatchSink {}
        let specs = (0..<600).map { index in
            JobSpec(index % 3 == 0 ? .sleep(milliseconds: 3) : index % 3 == 1 ? .cpu(size: 0.02) : .prime(n: 1_000_000_007))
        }
        _ = try supervisor.pool.submit(specs, watch: sink)
        var seen: [JobID: Int] = [:]
        for index in 0..<20 {
            let served = Mutex<SwitchOutcome?>(nil)
            _ = try supervisor.pool.setModel(index % 2 == 0 ? .tasks : .threads, preempt: preempt) { outcome in
                served.withLock { $0 = outcome }
            }
            #expect(eventually { served.withLock { $0 } != nil })
            if case .serving = served.withLock({ $0 }) {
            } else {
                Issue.record("switch \(index): \(String(describing: served.withLock { $0 }))")
            }
            usleep(10_000)
        }
        #expect(
            eventually {
                for job in sink.takeJobs().jobs { seen[job.id, default: 0] += 1 }
                return seen.count == 600
            })
        #expect(seen.values.allSatisfy { $0 == 1 })
        let status = supervisor.status()
        #expect(status.totals.done == 600 && status.totals.cancelled == 0 && status.switches == 20)
        #expect(status.workers.live == 3 && status.handingOver == 0)
        #expect(supervisor.drain(timeout: 5) == .drained)
    }

    /// A processes model whose children all die before they serve.
    struct DyingModel: WorkerModel {
        let model = ConcurrencyModel.processes
        func startWorker(_ handle: WorkerHandle, pool: Pool, delay: Double) throws {
            try OSThread.start(name: "dying") {
                usleep(UInt32(delay * 1e6))
                pool.workerExited(
                    handle.id, exit: .died(reason: "worker \(handle.id) exited with status 1 before it started serving"))
            }
        }
    }

    @Test("a switch to a model whose workers cannot start fails, and the pool goes back and keeps running jobs")
    func failedSwitchRollsBack() throws {
        let supervisor = Supervisor(
            configuration: .init(model: .threads, workers: 2, limits: .init(maxQueue: 100, maxWorkers: 4)),
            models: [ThreadModel(), DyingModel()], version: "test")
        try supervisor.start(workers: 2)
        let outcome = Mutex<SwitchOutcome?>(nil)
        _ = try supervisor.pool.setModel(.processes, preempt: false) { result in outcome.withLock { $0 = result } }
        #expect(eventually(30) { outcome.withLock { $0 } != nil })
        guard case .failed(let reason) = outcome.withLock({ $0 }) else {
            Issue.record("expected a failed switch, got \(String(describing: outcome.withLock { $0 }))")
            return
        }
        #expect(reason.contains("status 1") && reason.contains("went back to the threads model"), "\(reason)")
        #expect(eventually { supervisor.status().model == .threads && supervisor.status().workers.live == 2 })
        _ = try supervisor.pool.submit([JobSpec(.prime(n: 97)), JobSpec(.sleep(milliseconds: 1))])
        #expect(eventually { supervisor.status().totals.done == 2 })
        #expect(supervisor.drain(timeout: 5) == .drained)
    }

    static func threadCount() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Threads:") })
        else { return 0 }
        return Int(line.dropFirst("Threads:".count).trimmingCharacters(in: .whitespaces)) ?? 0
    }
}
