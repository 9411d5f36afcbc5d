import ConcurProtocol
import Synchronization
import Testing

@testable import ConcurCore
@testable import ConcurRuntime

@Suite("The watch sink")
struct JobWatchSinkTests {
    func info(_ id: JobID) -> JobInfo {
        JobInfo(id: id, spec: JobSpec(.fail), state: .failed, attempts: 1, submittedAt: 0)
    }

    @Test("rings once per batch and hands over jobs in order")
    func batches() {
        let rings = Mutex(0)
        let sink = JobWatchSink { rings.withLock { $0 += 1 } }
        sink.push(info(1), last: false)
        sink.push(info(2), last: false)
        #expect(rings.withLock { $0 } == 1)
        let first = sink.takeJobs()
        #expect(first.jobs.map(\.id) == [1, 2] && !first.ended && !first.overflowed)
        sink.push(info(3), last: true)
        #expect(rings.withLock { $0 } == 2)
        let second = sink.takeJobs()
        #expect(second.jobs.map(\.id) == [3] && second.ended)
        sink.push(info(4), last: false)
        #expect(sink.takeJobs().jobs.isEmpty)
    }

    @Test("cuts off a consumer that falls too far behind, dropping what it had not taken")
    func overflow() {
        let sink = JobWatchSink(capacity: 2) {}
        for id in 1...5 as ClosedRange<JobID> { sink.push(info(id), last: false) }
        let taken = sink.takeJobs()
        #expect(taken.jobs.isEmpty && taken.ended && taken.overflowed)
    }

    @Test("a sink that summarizes counts the jobs it has no room for, in order, and still ends with the last")
    func summarizes() {
        let budget = WatchBudget(total: 1 << 30, perWatch: 20_000)
        let sink = JobWatchSink(budget: budget, summarizes: true) {}
        for id in 1...1_000 as ClosedRange<JobID> {
            var job = info(id)
            job.state = id % 10 == 0 ? .cancelled : id % 2 == 0 ? .failed : .done
            sink.push(job, last: id == 1_000)
        }
        let (items, ended, overflowed, _) = sink.take()
        #expect(ended && !overflowed)
        var kept = 0
        var counted = JobTotals()
        for item in items {
            switch item {
            case .job: kept += 1
            case .skipped(let totals):
                counted.done += totals.done
                counted.failed += totals.failed
                counted.cancelled += totals.cancelled
            case .event: Issue.record("an event")
            }
        }
        #expect(kept > 0 && kept < 100, "\(kept) kept within 20,000 bytes")
        #expect(kept + counted.done + counted.failed + counted.cancelled == 1_000)
        #expect(items.count == kept + 1, "the counts run together into one item")
        #expect(budget.held == 0)
    }

    @Test("a shared budget: stuck consumers are cut off at their share, a reader that keeps up is not, and memory comes back")
    func budget() {
        let budget = WatchBudget(total: 100_000, perWatch: 60_000)
        let stuck = (0..<4).map { _ in JobWatchSink(budget: budget) {} }
        let reader = JobWatchSink(budget: budget) {}
        var read = 0
        for id in 1...2000 as ClosedRange<JobID> {
            for sink in stuck { sink.push(info(id), last: false) }
            reader.push(info(id), last: false)
            read += reader.takeJobs().jobs.count
        }
        #expect(read == 2000, "the reader that kept up was cut off")
        for sink in stuck {
            let taken = sink.takeJobs()
            #expect(taken.overflowed && taken.ended && taken.jobs.isEmpty)
        }
        #expect(budget.held == 0, "cut-off watches still hold \(budget.held) bytes")
        // One watch alone may hold up to its own limit, not more.
        let alone = JobWatchSink(budget: WatchBudget(total: 1 << 30, perWatch: 10_000)) {}
        for id in 1...100 as ClosedRange<JobID> { alone.push(info(id), last: false) }
        #expect(alone.takeJobs().overflowed)
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
