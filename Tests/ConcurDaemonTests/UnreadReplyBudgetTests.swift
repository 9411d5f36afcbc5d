import Synchronization
import Testing

@testable import VarlinkServer

/// The bound on replies all clients together leave unread.
@Suite("The shared budget of unread replies")
struct UnreadReplyBudgetTests {
    final class Connection: Sendable {
        let closed = Mutex(false)
        var id: ObjectIdentifier { ObjectIdentifier(self) }
        func close() { closed.withLock { $0 = true } }
    }

    @Test("past the limit, the connections that hold the most are closed first, until the sum is within it")
    func evictsLargest() {
        let budget = UnreadReplyBudget(limit: 1_000)
        let small = Connection()
        let large = Connection()
        let middle = Connection()
        #expect(budget.update(small.id, bytes: 100, close: small.close).isEmpty)
        #expect(budget.update(large.id, bytes: 600, peer: "large", close: large.close).isEmpty)
        #expect(budget.total == 700)
        let evicted = budget.update(middle.id, bytes: 400, peer: "middle", close: middle.close)
        #expect(evicted.map(\.bytes) == [600], "the largest goes, not the newest")
        #expect(evicted.map(\.peer) == ["large"], "the log names the one closed, not the one that wrote")
        for eviction in evicted { eviction.close() }
        let closed = (large.closed.withLock { $0 }, middle.closed.withLock { $0 })
        #expect(closed == (true, false))
        #expect(budget.total == 500)
        // Several at once when one grows a lot: the largest first, this one included.
        let evictedAgain = budget.update(small.id, bytes: 900, close: small.close)
        #expect(evictedAgain.map(\.bytes) == [900])
        #expect(budget.total == 400)
    }

    @Test("a connection that has read everything, or closed, gives its share back")
    func releases() {
        let budget = UnreadReplyBudget(limit: 1_000)
        let one = Connection()
        let two = Connection()
        _ = budget.update(one.id, bytes: 800, close: one.close)
        _ = budget.update(one.id, bytes: 0, close: one.close)
        #expect(budget.total == 0)
        _ = budget.update(two.id, bytes: 900, close: two.close)
        budget.remove(two.id)
        budget.remove(two.id)
        #expect(budget.total == 0)
        #expect(budget.update(one.id, bytes: 1_000, close: one.close).isEmpty, "exactly the limit is within it")
    }
}
