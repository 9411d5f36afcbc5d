import ConcurCore
import ConcurPostgres
import ConcurProtocol
import ConcurRuntime
import ConcurTestSupport
import Foundation
import Logging
import NIOPosix
import StoreAccess
import Testing

/// Nodes of one shared queue, each a real pool of thread workers on its own lane, in one
/// process on a real PostgreSQL 15 (the end-to-end tests run them as concurd processes).
@Suite("Nodes sharing a queue", .serialized, .storeThreads)
struct StoreNodeTests {
    let server: PostgresServer
    let logger = Logger(label: "test")

    init() throws { server = try PostgresServer.shared() }

    func settings(_ node: String, database: String, lease: Double = 30) throws -> StoreNode.Settings {
        StoreNode.Settings(
            address: try StoreAddress(parsing: server.url(database: database), defaultUser: "root"), password: server.password,
            passwordFile: server.passwordFile, node: node, leaseSeconds: lease, host: "test-host", pid: getpid(),
            version: "test")
    }

    /// A node of `database` with one pool of `workers` thread workers.
    func start(_ node: String, database: String, workers: Int = 2, lease: Double = 30) throws -> (StoreNode, Pool, PoolLane) {
        let store = try StoreNode(try settings(node, database: database, lease: lease), clock: MonotonicClock(), logger: logger)
        let lane = store.lane(for: .default, allowExec: false)
        let state = PoolStateMachine(
            model: .threads, configuration: .init(maxQueue: 10_000, maxWorkers: 8, retainFinished: 100), clock: MonotonicClock())
        let pool = Pool(state: state, models: [ThreadModel()], store: lane)
        try lane.follow(pool)
        if workers > 0 { _ = try pool.resize(to: workers) }
        return (store, pool, lane)
    }

    func stop(_ node: StoreNode, _ pool: Pool, _ lane: PoolLane) {
        pool.beginDrain()
        _ = pool.waitUntilDrained(deadline: MonotonicClock.now() + 10_000_000_000)
        lane.close()
        node.close()
    }

    @discardableResult
    func sql(_ text: String, _ database: String) throws -> String { try server.psql(text, database: database) }

    @Test("two nodes run 600 queued jobs between them, each exactly once, and stop cleanly")
    func shareTheWork() throws {
        try server.createDatabase("sharing")
        let (a, poolA, laneA) = try start("a", database: "sharing")
        let (b, poolB, laneB) = try start("b", database: "sharing")
        for _ in 0..<3 {
            _ = try a.enqueue(
                Array(repeating: SharedQueue.NewJob(pool: .default, spec: JobSpec(.prime(n: 1_000_003))), count: 200),
                maxAttempts: 3)
        }
        #expect(eventually(60) { (try? sql("SELECT count(*) FROM concur.jobs WHERE state = 3", "sharing")) == "600" })
        // Each ran once: one start each, and the results the runs produced.
        #expect(
            try sql("SELECT count(*) FROM concur.jobs WHERE attempts <> 1 OR out_kind <> 2 OR node IS NULL", "sharing") == "0")
        let byNode = try sql(
            "SELECT string_agg(node || '=' || n, ' ' ORDER BY node) FROM (SELECT node, count(*) n FROM concur.jobs GROUP BY node) c",
            "sharing")
        #expect(byNode.contains("a=") && byNode.contains("b="), "\(byNode)")
        #expect(poolA.read { $0.totals.done } + poolB.read { $0.totals.done } == 600)
        stop(a, poolA, laneA)
        stop(b, poolB, laneB)
        #expect(try sql("SELECT string_agg(name || ':' || state, ' ' ORDER BY name) FROM concur.nodes", "sharing") == "a:1 b:1")
    }

    @Test("a node that stops heartbeating loses the jobs it claimed to the others, within its lease and a margin")
    func rescue() throws {
        try server.createDatabase("rescuing")
        // The dead node: registered, claims 50 jobs, and is never heard of again (kill -9).
        let (b, poolB, laneB) = try start("b", database: "rescuing", workers: 0, lease: 2)
        _ = try b.enqueue(
            Array(repeating: SharedQueue.NewJob(pool: .default, spec: JobSpec(.sleep(milliseconds: 1))), count: 50),
            maxAttempts: 3)
        try sql(
            "INSERT INTO concur.nodes (name, incarnation, host, pid, version, state, started_at, heartbeat_at, lease_until, lease_seconds) VALUES ('dead', 1, 'elsewhere', 1, 'test', 0, now(), now(), now() + interval '2 s', 2)",
            "rescuing")
        try sql("UPDATE concur.jobs SET state = 1, node = 'dead', claims = 1", "rescuing")
        let started = Date()
        _ = try poolB.resize(to: 2)
        #expect(
            eventually(30) { (try? sql("SELECT count(*) FROM concur.jobs WHERE state = 3 AND node = 'b'", "rescuing")) == "50" })
        let took = Date().timeIntervalSince(started)
        // The lease (2 s), then the next look (every lease / 2), then the runs.
        #expect(took < 2 + 1 + 5, "rescued after \(took) s")
        #expect(try sql("SELECT state FROM concur.nodes WHERE name = 'dead'", "rescuing") == "2")
        #expect(try sql("SELECT count(*) FROM concur.jobs WHERE attempts <> 1", "rescuing") == "0")
        stop(b, poolB, laneB)
    }
}
