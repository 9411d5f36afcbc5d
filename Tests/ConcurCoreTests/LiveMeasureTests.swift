import ConcurProtocol
import ConcurTestSupport
import Testing

@testable import ConcurCore

@Suite("Pause, events and live measures")
struct LiveMeasureTests {
    @Test("paused workers take nothing new, finish what they run; resume wakes as many as there are jobs")
    func pause() throws {
        var pool = try PoolFixture.pool(workers: 2)
        _ = try pool.submit(PoolFixture.specs(3), now: 1)
        #expect(PoolFixture.take(&pool, 1).map(\.id) == [1])
        #expect(pool.setPaused(true, now: 2).changed)
        #expect(!pool.setPaused(true, now: 2).changed)
        #expect(pool.nextAssignment(for: 2, now: 3) == .wait)
        _ = pool.finish(worker: 1, job: 1, outcome: PoolFixture.ok, now: 4)
        #expect(pool.nextAssignment(for: 1, now: 5) == .wait)
        #expect(pool.queuedCount == 2 && pool.paused)
        let (changed, actions) = pool.setPaused(false, now: 6)
        #expect(changed && actions == [.wake(2), .wake(1)])
        #expect(PoolFixture.take(&pool, 2).map(\.id) == [2])
        #expect(pool.lastEvents.map(\.kind) == [.paused, .resumed])
    }

    @Test("resizes, switches, deaths and drains are events; only the newest are kept")
    func events() throws {
        var pool = try PoolFixture.pool(workers: 1)
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
        var busy = try PoolFixture.pool(workers: 1)
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
}
