import ConcurCore
import ConcurProtocol
import Testing

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
