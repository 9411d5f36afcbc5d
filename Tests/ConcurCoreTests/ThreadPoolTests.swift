import ConcurCore
import ConcurProtocol
import Glibc
import Synchronization
import Testing

/// The pool with real OS threads.
@Suite("The threads model")
struct ThreadPoolTests {
    func makeSupervisor(workers: Int) throws -> Supervisor {
        let supervisor = Supervisor(
            configuration: .init(
                model: .threads, workers: workers, limits: .init(maxQueue: 100_000, maxWorkers: 16, retainFinished: 100_000)),
            models: [ThreadModel()], version: "test")
        try supervisor.start(workers: workers)
        return supervisor
    }

    /// Waits until `condition` holds, polling, for at most `seconds`.
    func eventually(_ seconds: Double = 20, _ condition: () -> Bool) -> Bool {
        let deadline = MonotonicClock.now() + UInt64(seconds * 1e9)
        while MonotonicClock.now() < deadline {
            if condition() { return true }
            usleep(2_000)
        }
        return condition()
    }

    @Test("runs every job of a batch exactly once on several threads")
    func runsEverything() throws {
        let supervisor = try makeSupervisor(workers: 3)
        let finished = Mutex<[JobID]>([])
        let sink = JobWatchSink {}
        let (ids, _) = try supervisor.pool.submit(Array(repeating: JobSpec(.cpu(size: 0)), count: 5_000), watch: sink)
        #expect(
            eventually {
                let (jobs, _, _) = sink.take()
                finished.withLock { $0 += jobs.map(\.id) }
                return finished.withLock { $0.count } == 5_000
            })
        #expect(finished.withLock { $0.sorted() } == Array(ids))
        let status = supervisor.status()
        #expect(status.totals.done == 5_000)
        #expect(Set(supervisor.pool.read { $0.jobs(state: .done, limit: 5_000) }.compactMap(\.worker)).count >= 1)
        #expect(supervisor.drain(timeout: 5) == .drained)
    }

    @Test("resizes while jobs run without losing any")
    func resizeUnderLoad() throws {
        let supervisor = try makeSupervisor(workers: 4)
        _ = try supervisor.pool.submit(Array(repeating: JobSpec(.sleep(milliseconds: 5)), count: 200))
        for count in [1, 6, 2, 4] {
            _ = try supervisor.pool.resize(to: count)
            usleep(20_000)
        }
        #expect(eventually { supervisor.status().totals.done == 200 })
        #expect(eventually { supervisor.status().workers == WorkerCounts(target: 4, live: 4, busy: 0, idle: 4, retiring: 0) })
        #expect(supervisor.drain(timeout: 5) == .drained)
    }

    @Test("shrinking never interrupts a running job")
    func shrinkWaitsForJobs() throws {
        let supervisor = try makeSupervisor(workers: 2)
        _ = try supervisor.pool.submit([JobSpec(.sleep(milliseconds: 300)), JobSpec(.sleep(milliseconds: 300))])
        #expect(eventually { supervisor.status().running == 2 })
        _ = try supervisor.pool.resize(to: 1)
        #expect(supervisor.status().workers.retiring == 1)
        #expect(eventually { supervisor.status().totals.done == 2 })
        #expect(supervisor.status().totals.cancelled == 0)
        #expect(eventually { supervisor.status().workers.live == 1 })
    }

    @Test("a drain lets running jobs finish; a cancel interrupts them")
    func drainAndCancel() throws {
        let drained = try makeSupervisor(workers: 1)
        _ = try drained.pool.submit([JobSpec(.sleep(milliseconds: 200)), JobSpec(.sleep(milliseconds: 200))])
        #expect(eventually { drained.status().running == 1 })
        #expect(drained.drain(timeout: 10) == .drained)
        #expect(drained.status().totals == JobTotals(submitted: 2, done: 1, failed: 0, cancelled: 1, retried: 0))

        let cancelled = try makeSupervisor(workers: 1)
        _ = try cancelled.pool.submit([JobSpec(.cpu(size: 1000))])
        #expect(eventually { cancelled.status().running == 1 })
        let start = MonotonicClock.now()
        #expect(cancelled.drain(timeout: 0.2) == .cancelled)
        #expect(MonotonicClock.now() - start < 5_000_000_000)
        let job = try cancelled.pool.read { state throws(NoSuchJobError) in try state.jobs(ids: [1]) }[0]
        #expect(job.state == .cancelled)
        #expect(job.error?.contains("drain timeout") == true)
    }
}
