import ConcurProtocol
import Synchronization
import Testing

@testable import ConcurCore

@Suite("The job queue and job table")
struct JobQueueTests {
    func job(_ id: JobID) -> Job { Job(id: id, kind: .fail, submittedAt: 0) }

    @Test("is first in, first out, with put-back jobs at the head")
    func fifo() {
        var queue = JobQueue(limit: 10)
        queue.append(contentsOf: [job(1), job(2), job(3)])
        #expect(queue.popFirst()?.id == 1)
        queue.pushFront(job(1))
        #expect([queue.popFirst()?.id, queue.popFirst()?.id, queue.popFirst()?.id, queue.popFirst()?.id] == [1, 2, 3, nil])
    }

    @Test("tells whether a whole batch fits")
    func bounded() {
        var queue = JobQueue(limit: 3)
        #expect(queue.canAccept(3))
        #expect(!queue.canAccept(4))
        queue.append(contentsOf: [job(1), job(2)])
        #expect(queue.canAccept(1))
        #expect(!queue.canAccept(2))
    }

    @Test("keeps only the most recent finished records")
    func retention() {
        var table = JobTable(retainFinished: 2)
        for id in 1...4 as ClosedRange<JobID> { table.insert(job(id)) }
        for id in 1...3 as ClosedRange<JobID> { table.markFinished(id, outcome: .failed("x"), at: 1) }
        #expect(table[1] == nil)
        #expect(table[2]?.state == .failed)
        #expect(table[3]?.state == .failed)
        #expect(table[4]?.state == .queued)
        #expect(table.count == 3)
        #expect(table.recentlyFinished(state: nil, limit: 5).map(\.id) == [3, 2])
        #expect(table.newest(limit: 10, below: 5).map(\.id) == [4, 3, 2])
    }
}

@Suite("The watch sink")
struct JobWatchSinkTests {
    func info(_ id: JobID) -> JobInfo {
        JobInfo(id: id, kind: .fail, state: .failed, attempts: 1, submittedAt: 0)
    }

    @Test("rings once per batch and hands over jobs in order")
    func batches() {
        let rings = Mutex(0)
        let sink = JobWatchSink { rings.withLock { $0 += 1 } }
        sink.push(info(1), last: false)
        sink.push(info(2), last: false)
        #expect(rings.withLock { $0 } == 1)
        let first = sink.take()
        #expect(first.jobs.map(\.id) == [1, 2] && !first.ended && !first.overflowed)
        sink.push(info(3), last: true)
        #expect(rings.withLock { $0 } == 2)
        let second = sink.take()
        #expect(second.jobs.map(\.id) == [3] && second.ended)
        sink.push(info(4), last: false)
        #expect(sink.take().jobs.isEmpty)
    }

    @Test("cuts off a consumer that falls too far behind")
    func overflow() {
        let sink = JobWatchSink(capacity: 2) {}
        for id in 1...5 as ClosedRange<JobID> { sink.push(info(id), last: false) }
        let taken = sink.take()
        #expect(taken.jobs.count == 2 && taken.ended && taken.overflowed)
    }
}
