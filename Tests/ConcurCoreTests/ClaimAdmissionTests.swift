import ConcurProtocol
import ConcurTestSupport
import Testing

@testable import ConcurCore

/// Jobs claimed from a store several nodes share: they arrive by priority, with gaps in their
/// ids (other nodes took those) and sometimes below ids already held (a rescued or given-back
/// job), and each must run once, in priority order, with the attempts the store recorded.
@Suite("Admitting claimed jobs")
struct ClaimAdmissionTests {
    private static func claimed(_ id: JobID, priority: Int = 0, attempts: Int = 0) -> JobRecord {
        JobRecord(
            id: id, spec: JobSpec(.sleep(milliseconds: 1), placement: JobPlacement(priority: priority)), state: .queued,
            attempts: attempts, submittedAt: 5)
    }

    private static func runAll(_ pool: inout PoolStateMachine) -> [JobID] {
        var order: [JobID] = []
        while let job = PoolFixture.take(&pool, 1, now: 10).first {
            order.append(job.id)
            _ = pool.finish(worker: 1, job: job.id, outcome: PoolFixture.ok, now: 10)
        }
        return order
    }

    @Test("ids with gaps, ids below the ring and priorities: each runs once, highest priority first")
    func gapsAndOrder() throws {
        var pool = try PoolFixture.pool(workers: 1)
        pool.startJournal()
        _ = pool.admitClaimed([Self.claimed(1000), Self.claimed(1001), Self.claimed(5000)], now: 1)
        // A rescued job far below, one inside the ring's span, and a priority job.
        let (_, refused) = pool.admitClaimed(
            [Self.claimed(3, attempts: 2), Self.claimed(2500), Self.claimed(7000, priority: 5)], now: 2)
        #expect(refused.isEmpty)
        #expect(pool.bufferedCount == 6)
        #expect(pool.totals.submitted == 6)
        #expect(Self.runAll(&pool) == [7000, 1000, 1001, 5000, 3, 2500])
        #expect(pool.totals.done == 6)
        // The store's attempt count is kept: job 3 ran a third time.
        #expect(pool.job(3)?.attempts == 3)
        // Admission itself writes nothing: the claim is already in the store.
        let changes = pool.takeJournalChanges().changes
        #expect(!changes.contains { if case .accepted = $0 { true } else { false } })
        #expect(changes.filter { if case .finished = $0 { true } else { false } }.count == 6)
    }

    @Test("a job handed out twice is refused, not run twice")
    func duplicateRefused() throws {
        var pool = try PoolFixture.pool(workers: 1)
        _ = pool.admitClaimed([Self.claimed(10), Self.claimed(11)], now: 1)
        let (_, refused) = pool.admitClaimed([Self.claimed(10), Self.claimed(12)], now: 1)
        #expect(refused == [10])
        #expect(Self.runAll(&pool) == [10, 11, 12])
    }

    @Test("buffered jobs beyond what is kept go back, those that would run last; a held one stays")
    func givesBack() throws {
        var pool = try PoolFixture.pool(workers: 1)
        pool.startJournal()
        _ = pool.admitClaimed(
            [Self.claimed(1), Self.claimed(2, priority: 3), Self.claimed(3), Self.claimed(4, attempts: 2)]
                + (5...9).map { Self.claimed($0, priority: -1) }, now: 1)
        let held = try #require(PoolFixture.take(&pool, 1, now: 2).first)
        #expect(held.id == 2)
        #expect(pool.giveBackBuffered(keeping: 10).given.isEmpty)
        let given = pool.giveBackBuffered(keeping: 3).given
        #expect(given == [9, 8, 7, 6, 5])
        #expect(pool.bufferedCount == 3 && pool.totals.submitted == 4)
        #expect(given.allSatisfy { pool.job($0) == nil })
        // Given back, they may come again by a later claim, and run once.
        _ = pool.admitClaimed([Self.claimed(7, priority: -1)], now: 3)
        _ = pool.finish(worker: 1, job: held.id, outcome: PoolFixture.ok, now: 3)
        #expect(Self.runAll(&pool) == [1, 3, 4, 7])
        #expect(pool.giveBackBuffered(keeping: 0).given.isEmpty)
        // A worker holding unstarted jobs behind its running one is asked to put them back.
        _ = pool.admitClaimed((20...23).map { Self.claimed($0) }, now: 4)
        #expect(PoolFixture.take(&pool, 1, limit: 3, now: 4).count == 3)
        let asked = pool.giveBackBuffered(keeping: 0)
        #expect(asked.given == [23] && asked.actions == [.release(1)])
        // Nothing of the give-back is recorded: the store takes them back itself.
        #expect(pool.takeJournalChanges().changes.filter { if case .finished = $0 { true } else { false } }.count == 5)
    }

    @Test("a waiting worker is woken by a claim; a job without a time limit gets the pool's")
    func wakesAndDefaults() throws {
        var pool = try PoolFixture.pool(workers: 1)
        var configuration = pool.configuration
        configuration.defaultTimeout = 7
        try pool.updateConfiguration(configuration)
        #expect(PoolFixture.take(&pool, 1, now: 1).isEmpty)
        let (actions, _) = pool.admitClaimed([Self.claimed(4)], now: 2)
        #expect(actions == [.wake(1)])
        #expect(pool.job(4)?.spec.timeout == 7)
    }
}
