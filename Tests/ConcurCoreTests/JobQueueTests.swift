import ConcurProtocol
import Testing

@testable import ConcurCore

@Suite("The job queue")
struct JobQueueTests {
    @Test("is first in, first out, with put-back jobs at the head")
    func fifo() {
        var queue = JobQueue(limit: 10)
        queue.append(contentsOf: 1..<4)
        #expect(queue.popFirst() == 1)
        queue.pushFront(1)
        #expect([queue.popFirst(), queue.popFirst(), queue.popFirst(), queue.popFirst()] == [1, 2, 3, nil])
    }

    @Test("tells whether a whole batch fits")
    func bounded() {
        var queue = JobQueue(limit: 3)
        #expect(queue.canAccept(3))
        #expect(!queue.canAccept(4))
        queue.append(contentsOf: 1..<3)
        #expect(queue.canAccept(1))
        #expect(!queue.canAccept(2))
    }
}
