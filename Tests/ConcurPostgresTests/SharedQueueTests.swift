import ConcurCore
import ConcurPostgres
import ConcurProtocol
import ConcurTestSupport
import Foundation
import Logging
import NIOPosix
import PostgresNIO
import StoreAccess
import Testing

/// The queue several nodes share, in a real PostgreSQL 15: each node here is a session of its
/// own with its own name, as concurd nodes on other hosts would be.
@Suite("The shared queue", .serialized, .storeThreads)
struct SharedQueueTests {
    let server: PostgresServer
    let logger = Logger(label: "test")
    let clock = MonotonicClock()

    init() throws { server = try PostgresServer.shared() }

    /// A node on a fresh (or the same) database: its queue and its session.
    struct Node {
        let queue: SharedQueue
        let session: StoreSession
        var lease: NodeLease { NodeLease(queue: queue, seconds: 30) }
    }

    func database(_ name: String) async throws -> Node {
        try server.createDatabase(name)
        let first = try await node("first", in: name)
        _ = try await StoreSchema.prepare(on: first.session, address: address(name), logger: logger)
        return first
    }

    func address(_ database: String) throws -> StoreAddress {
        try StoreAddress(parsing: server.url(database: database), defaultUser: "root")
    }

    func node(_ name: String, in database: String) async throws -> Node {
        let address = try address(database)
        let connection = try await StoreConnection.connect(
            to: address, password: server.password, passwordFile: server.passwordFile, role: name,
            on: MultiThreadedEventLoopGroup.singleton.any(), logger: logger)
        return Node(
            queue: SharedQueue(schema: "concur", node: name, logger: logger),
            session: StoreSession(connection, address: address, executor: StoreThreads.executor))
    }

    static func job(
        _ kind: JobKind = .sleep(milliseconds: 1), priority: Int = 0, startAt: Double? = nil, after: [UInt64] = [],
        delivery: Delivery = .atLeastOnce
    )
        -> SharedQueue.NewJob
    {
        SharedQueue.NewJob(
            pool: .default,
            spec: JobSpec(kind, delivery: delivery, placement: JobPlacement(priority: priority, startAt: startAt, after: after)))
    }

    func claim(_ node: Node, _ limit: Int = 100, exec: Bool = false) async throws -> [SharedQueue.Claimed] {
        try await node.queue.claim(pool: .default, limit: limit, allowExec: exec, clock: clock, on: node.session)
    }

    /// A batch that runs `claimed` on worker 1 and ends it done (or in `state`).
    func done(_ claimed: SharedQueue.Claimed, as state: JobState = .done) -> WriteBatch {
        let now = MonotonicClock.now()
        var record = claimed.record
        record.state = state
        record.attempts += 1
        record.startedAt = now
        record.finishedAt = now
        record.worker = 1
        record.model = .threads
        record.output = .slept(milliseconds: 1)
        return WriteBatch(
            [
                .started(record.id, attempts: record.attempts, preemptions: 0, worker: 1, model: .threads, at: now),
                .finished(record),
            ],
            clock: clock, claim: { $0 == claimed.record.id ? claimed.claim : nil })
    }

    @discardableResult
    func sql(_ text: String, _ database: String) throws -> String { try server.psql(text, database: database) }

    @Test("queued jobs get consecutive ids; claims take the due ones by priority, exec only where allowed")
    func claimsByPriority() async throws {
        let a = try await database("claims")
        let ids = try await a.queue.enqueue(
            [
                Self.job(), Self.job(priority: 5), Self.job(.exec(argv: ["true"])),
                Self.job(startAt: Date().timeIntervalSince1970 + 3600), Self.job(priority: -2),
            ], maxAttempts: 3, on: a.session)
        #expect(ids == 1...5)
        #expect(try sql("SELECT string_agg(state::text, ',' ORDER BY id) FROM concur.jobs", "claims") == "0,0,0,6,0")
        let claimed = try await claim(a)
        #expect(claimed.map(\.record.id) == [2, 1, 5])
        #expect(claimed.allSatisfy { $0.claim == 1 && $0.record.state == .queued && $0.record.attempts == 0 })
        #expect(try await claim(a).isEmpty)
        #expect(try await claim(a, exec: true).map(\.record.id) == [3])
        // The delayed job, once due.
        try sql("UPDATE concur.jobs SET run_at = now() - interval '1 s' WHERE id = 4", "claims")
        #expect(try await a.queue.promoteDue(on: a.session) == 1)
        #expect(try await claim(a).map(\.record.id) == [4])
        #expect(try sql("SELECT count(*) FROM concur.jobs WHERE state = 1 AND node = 'first'", "claims") == "5")
        let more = try await a.queue.enqueue([Self.job()], maxAttempts: 3, on: a.session)
        #expect(more == 6...6)
    }

    @Test("three nodes claiming 3,000 jobs at once: each job claimed by exactly one")
    func exactlyOnce() async throws {
        let a = try await database("racing_claims")
        for _ in 0..<3 {
            _ = try await a.queue.enqueue(Array(repeating: Self.job(), count: 1000), maxAttempts: 3, on: a.session)
        }
        let nodes = [a, try await node("b", in: "racing_claims"), try await node("c", in: "racing_claims")]
        let claimedByNode = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for node in nodes {
                group.addTask {
                    var mine: [Int64] = []
                    while true {
                        let batch = try await node.queue.claim(
                            pool: .default, limit: 64, allowExec: false, clock: MonotonicClock(), on: node.session)
                        if batch.isEmpty { return mine }
                        mine += batch.map { Int64($0.record.id) }
                    }
                }
            }
            var all: [[Int64]] = []
            for try await mine in group { all.append(mine) }
            return all
        }
        let all = claimedByNode.flatMap { $0 }
        #expect(all.count == 3000)
        #expect(Set(all) == Set(1...3000))
        #expect(
            try sql("SELECT count(DISTINCT node) FROM concur.jobs WHERE state = 1", "racing_claims")
                == "\(claimedByNode.filter { !$0.isEmpty }.count)")
    }

    @Test("a node that lost its lease is fenced: its late write matches nothing, the rescuer's run stands")
    func fencing() async throws {
        let a = try await database("fencing")
        let b = try await node("b", in: "fencing")
        let aIncarnation = try await a.lease.register(
            host: "host-a", pid: 1, version: "test", isDead: { _ in false }, on: a.session)
        _ = try await b.lease.register(host: "host-b", pid: 2, version: "test", isDead: { _ in false }, on: b.session)
        _ = try await a.queue.enqueue([Self.job()], maxAttempts: 3, on: a.session)
        let held = try #require(try await claim(a).first)
        // a goes silent past its lease; b notices and puts its job back.
        try sql("UPDATE concur.nodes SET lease_until = now() - interval '1 s' WHERE name = 'first'", "fencing")
        let rescue = try await b.lease.rescueLapsed(on: b.session)
        #expect(rescue == NodeLease.Rescue(lost: ["first"], requeued: 1))
        #expect(try await a.lease.heartbeat(incarnation: aIncarnation, on: a.session) == false)
        let taken = try #require(try await claim(b).first)
        #expect(taken.record.id == held.record.id && taken.claim == held.claim + 1)
        // a comes back and writes the run it had: fenced.
        let late = try await a.queue.write(done(held), on: a.session)
        #expect(late == SharedQueue.Written(written: [], fenced: [1]))
        #expect(try sql("SELECT state || ',' || node FROM concur.jobs WHERE id = 1", "fencing") == "1,b")
        // b's run is written, and a resend of the same batch (commit in doubt) changes nothing.
        let batch = done(taken)
        #expect(try await b.queue.write(batch, on: b.session) == SharedQueue.Written(written: [1]))
        let row = try sql("SELECT state, node, attempts, out_kind, out_a FROM concur.jobs WHERE id = 1", "fencing")
        #expect(row == "3|b|1|3|1")
        #expect(try await b.queue.write(batch, on: b.session) == SharedQueue.Written(written: [1]))
        #expect(try sql("SELECT state, node, attempts, out_kind, out_a FROM concur.jobs WHERE id = 1", "fencing") == row)
    }

    @Test("a rescue puts back what a lost node held by the restart rules")
    func rescueRules() async throws {
        let a = try await database("rescue")
        let b = try await node("b", in: "rescue")
        _ = try await a.lease.register(host: "host-a", pid: 1, version: "test", isDead: { _ in false }, on: a.session)
        _ = try await a.queue.enqueue(
            [
                Self.job(), Self.job(delivery: .atMostOnce), Self.job(delivery: .atMostOnce), Self.job(), Self.job(),
                Self.job(.exec(argv: ["true"]), delivery: .atMostOnce),
            ], maxAttempts: 2, on: a.session)
        _ = try await claim(a, exec: true)
        // 1: claimed only; 2: at most once, claimed (it may have run); 3: at most once, running;
        // 4: running its second counted attempt of 2; 5: a cancel asked for; 6: an exec job at
        // most once, claimed only (its start is written before its command runs).
        try sql("UPDATE concur.jobs SET state = 2, attempts = 1 WHERE id = 3", "rescue")
        try sql("UPDATE concur.jobs SET state = 2, attempts = 2 WHERE id = 4", "rescue")
        try sql("UPDATE concur.jobs SET cancel_reason = 'cancelled by root' WHERE id = 5", "rescue")
        try sql("UPDATE concur.nodes SET lease_until = now() - interval '1 s' WHERE name = 'first'", "rescue")
        let rescue = try await b.lease.rescueLapsed(on: b.session)
        #expect(rescue == NodeLease.Rescue(lost: ["first"], requeued: 2, failed: 3, cancelled: 1))
        let rows = try sql(
            "SELECT string_agg(id || ':' || state || ':' || coalesce(node, '-'), ' ' ORDER BY id) FROM concur.jobs", "rescue")
        #expect(rows == "1:0:- 2:4:first 3:4:first 4:4:first 5:5:first 6:0:-")
        let error = try sql("SELECT error FROM concur.jobs WHERE id = 4", "rescue")
        #expect(error == "its node stopped heartbeating (node first) while it ran (attempt 2 of 2)")
        #expect(try sql("SELECT error FROM concur.jobs WHERE id = 2", "rescue").contains("at most once"))
        #expect(try sql("SELECT state FROM concur.nodes WHERE name = 'first'", "rescue") == "2")
        // A second look finds nothing more.
        #expect(try await b.lease.rescueLapsed(on: b.session) == NodeLease.Rescue())
    }

    @Test("a node's name: refused while another live node holds it, taken over from a dead process of this host")
    func registration() async throws {
        let a = try await database("names")
        let first = try await a.lease.register(host: "host-a", pid: 100, version: "test", isDead: { _ in false }, on: a.session)
        #expect(first == 1)
        let twin = try await node("first", in: "names")
        do {
            _ = try await twin.lease.register(host: "host-z", pid: 7, version: "test", isDead: { _ in true }, on: twin.session)
            Issue.record("a second live node of the same name was admitted")
        } catch {
            #expect(error.kind == .permanent)
            #expect(error.message.contains("node first is already running on host-a (pid 100"), "\(error)")
            #expect(error.message.contains("--node"))
        }
        // The same host, the first process dead (kill -9): the restart takes over and puts back
        // what the dead one held.
        _ = try await a.queue.enqueue([Self.job()], maxAttempts: 3, on: a.session)
        _ = try await claim(a)
        let second = try await twin.lease.register(
            host: "host-a", pid: 101, version: "test", isDead: { $0 == 100 }, on: twin.session)
        #expect(second == 2)
        #expect(try sql("SELECT state || coalesce(node, '-') FROM concur.jobs WHERE id = 1", "names") == "0-")
        #expect(try await a.lease.heartbeat(incarnation: first, on: a.session) == false)
        #expect(try await twin.lease.heartbeat(incarnation: second, on: twin.session))
        try await twin.lease.stop(incarnation: second, on: twin.session)
        #expect(try sql("SELECT state FROM concur.nodes WHERE name = 'first'", "names") == "1")
    }

    @Test("rows no concurd writes are failed where they lie, naming the field, and never run")
    func damagedRows() async throws {
        let a = try await database("damaged_rows")
        _ = try await a.queue.enqueue([Self.job(), Self.job(), Self.job(), Self.job()], maxAttempts: 3, on: a.session)
        try sql("UPDATE concur.jobs SET spec = '{\"kind\":\"sleep\",\"ms\":-4}' WHERE id = 1", "damaged_rows")
        try sql("UPDATE concur.jobs SET attempts = -3 WHERE id = 2", "damaged_rows")
        try sql("UPDATE concur.jobs SET history = '[{\"attempt\": 1}]' WHERE id = 3", "damaged_rows")
        let claimed = try await claim(a)
        #expect(claimed.map(\.record.id) == [4])
        let errors = try sql(
            "SELECT string_agg(id || ':' || state || ':' || error, ' | ' ORDER BY id) FROM concur.jobs WHERE state = 4",
            "damaged_rows")
        #expect(errors.contains("1:4:its spec cannot be read"), "\(errors)")
        #expect(errors.contains("2:4:its attempts is -3, outside 0...1000000"), "\(errors)")
        #expect(errors.contains("3:4:its history cannot be read"), "\(errors)")
    }

    @Test("a retry's failed run is appended once, even when its batch is sent twice")
    func retriedRuns() async throws {
        let a = try await database("retries")
        _ = try await a.queue.enqueue([Self.job()], maxAttempts: 3, on: a.session)
        let held = try #require(try await claim(a).first)
        let now = MonotonicClock.now()
        let run = AttemptRecord(
            attempt: 1, startedAt: now, finishedAt: now, exitCode: 1, error: "the command exited with status 1")
        let batch = WriteBatch(
            [
                .started(held.record.id, attempts: 1, preemptions: 0, worker: 1, model: .threads, at: now),
                .retrying(held.record.id, run, attempts: 1),
            ],
            clock: clock, claim: { _ in held.claim })
        #expect(try await a.queue.write(batch, on: a.session).written == [1])
        #expect(try await a.queue.write(batch, on: a.session).written == [1])
        #expect(try sql("SELECT jsonb_array_length(history) || ',' || state FROM concur.jobs WHERE id = 1", "retries") == "1,1")
    }

    @Test("claims whose reply was lost are put back; those the node knows stay, started ones too")
    func unknownClaims() async throws {
        let a = try await database("lost_claims")
        _ = try await a.queue.enqueue([Self.job(), Self.job(), Self.job(), Self.job()], maxAttempts: 3, on: a.session)
        let claimed = try await claim(a)
        #expect(claimed.count == 4)
        try sql("UPDATE concur.jobs SET state = 2 WHERE id = 4", "lost_claims")
        // The node knows jobs 1 and 2 only: 3 was claimed by a reply it never read.
        let released = try await a.queue.releaseUnknown(pool: .default, known: [1, 2], on: a.session)
        #expect(released == 1)
        #expect(
            try sql("SELECT string_agg(id || ':' || state, ' ' ORDER BY id) FROM concur.jobs", "lost_claims") == "1:1 2:1 3:0 4:2"
        )
    }

    @Test("queueing, a start time coming, a rescue and a put-back each tell the listeners which pool has jobs")
    func notices() async throws {
        let a = try await database("notices")
        let b = try await node("b", in: "notices")
        let listener = try await node("listener", in: "notices")
        let heard = LockedValue<[String]>([])
        let inPlace = LockedValue(false)
        let listening = Task {
            try await listener.session.connection.listen(on: a.queue.channel) { notices in
                for try await notice in notices {
                    if notice.payload == "test: listening" {
                        inPlace.withLock { $0 = true }
                    } else {
                        heard.withLock { $0.append(notice.payload) }
                    }
                }
            }
        }
        defer { listening.cancel() }
        // LISTEN is sent without a reply to wait for: a notice of the test's says it is in place.
        func heardSoFar(_ count: Int) -> [String]? {
            for _ in 0..<200 {
                let now = heard.withLock { $0 }
                if now.count >= count { return now }
                usleep(10_000)
            }
            return nil
        }
        for _ in 0..<100 where !inPlace.withLock({ $0 }) {
            _ = try sql("SELECT pg_notify('concur', 'test: listening')", "notices")
            usleep(20_000)
        }
        #expect(inPlace.withLock { $0 } && heard.withLock { $0.isEmpty })
        let other = SharedQueue.NewJob(pool: try #require(PoolName("other")), spec: JobSpec(.sleep(milliseconds: 1)))
        _ = try await a.queue.enqueue([Self.job(), other], maxAttempts: 3, on: a.session)
        #expect(heardSoFar(2).map { Set($0) } == ["default", "other"])
        let later = Self.job(startAt: Date().timeIntervalSince1970 + 0.3)
        _ = try await a.queue.enqueue([later], maxAttempts: 3, on: a.session)
        usleep(400_000)
        #expect(try await a.queue.promoteDue(on: a.session) == 1)
        #expect(heardSoFar(4)?.suffix(2) == ["default", "default"])
        // a claims both default jobs and goes silent: b's rescue queues them again, and says so.
        _ = try await a.lease.register(host: "host-a", pid: 1, version: "test", isDead: { _ in false }, on: a.session)
        #expect(try await claim(a).count == 2)
        try sql("UPDATE concur.nodes SET lease_until = now() - interval '1 s' WHERE name = 'first'", "notices")
        #expect(try await b.lease.rescueLapsed(on: b.session).requeued == 2)
        #expect(heardSoFar(5)?.last == "default")
        // b claims them with a reply it never read: put back, and said.
        #expect(try await claim(b).count == 2)
        #expect(try await b.queue.releaseUnknown(pool: .default, known: [], on: b.session) == 2)
        #expect(heardSoFar(6)?.last == "default")
        // A claim or a write queues nothing: no notice.
        #expect(try await claim(b).count == 2)
        usleep(200_000)
        #expect(heard.withLock { $0.count } == 6)
    }

    @Test(
        "pruning deletes a pool's finished jobs beyond the newest N and past the age, a batch at a time; nothing unfinished, nothing of another pool"
    )
    func prune() async throws {
        let a = try await database("prune")
        let other = SharedQueue.NewJob(pool: try #require(PoolName("other")), spec: JobSpec(.sleep(milliseconds: 1)))
        _ = try await a.queue.enqueue(Array(repeating: Self.job(), count: 10) + [other], maxAttempts: 3, on: a.session)
        let claimed = try await claim(a, 8)
        for job in claimed { #expect(try await a.queue.write(done(job), on: a.session).written == [Int64(job.record.id)]) }
        _ = try await a.queue.claim(pool: other.pool, limit: 1, allowExec: false, clock: clock, on: a.session)
        try sql("UPDATE concur.jobs SET state = 3, finished_at = now() WHERE pool = 'other'", "prune")
        let week = 7 * 86_400.0
        // Eight done (1 to 8), two queued (9, 10); keep the newest five: 1 to 3 go, two at a time.
        #expect(try await a.queue.prune(pool: .default, keeping: JobRetention(count: 5, age: week), batch: 2, on: a.session) == 2)
        #expect(try await a.queue.prune(pool: .default, keeping: JobRetention(count: 5, age: week), on: a.session) == 1)
        #expect(try await a.queue.prune(pool: .default, keeping: JobRetention(count: 5, age: week), on: a.session) == 0)
        #expect(try sql("SELECT string_agg(id::text, ' ' ORDER BY id) FROM concur.jobs", "prune") == "4 5 6 7 8 9 10 11")
        // Past the age: job 4 finished two hours ago, with an hour kept.
        try sql("UPDATE concur.jobs SET finished_at = now() - interval '2 hours' WHERE id = 4", "prune")
        #expect(try await a.queue.prune(pool: .default, keeping: JobRetention(count: 100, age: 3_600), on: a.session) == 1)
        // None kept: every finished job of the pool goes, the queued ones and the other pool's stay.
        #expect(try await a.queue.prune(pool: .default, keeping: JobRetention(count: 0, age: week), on: a.session) == 4)
        #expect(try sql("SELECT string_agg(id::text, ' ' ORDER BY id) FROM concur.jobs", "prune") == "9 10 11")
    }
}
