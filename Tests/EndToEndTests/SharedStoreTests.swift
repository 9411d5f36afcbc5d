import ConcurProtocol
import ConcurTestSupport
import Foundation
import Testing

/// Several real concurd nodes on one real PostgreSQL 15 (`--store`), driven by the real
/// concurctl; what ran is counted from the execution log the workers of every node append to.
@Suite("Nodes sharing a queue in PostgreSQL", .serialized)
struct SharedStoreTests {
    let server: PostgresServer
    let folder: TemporaryFolder

    init() throws {
        server = try PostgresServer.shared()
        folder = try TemporaryFolder(prefix: "concur-cluster")
    }

    var executionLog: String { folder.path + "/execution.log" }

    /// A fresh database for one test, and its URL.
    func database(_ name: String, on server: PostgresServer? = nil) throws -> (name: String, url: String) {
        let server = server ?? self.server
        let database = "\(name)_\(UInt32.random(in: 0...UInt32.max))"
        try server.createDatabase(database)
        return (database, server.url(database: database))
    }

    /// A server of the test's own (the caller stops it) and a database there.
    func ownServer(_ name: String) throws -> (PostgresServer, (name: String, url: String)) {
        let own = try PostgresServer()
        do {
            return (own, try database(name, on: own))
        } catch {
            own.stop()
            throw error
        }
    }

    func node(
        _ name: String, store: (name: String, url: String), lease: Double = 30, workers: Int = 2,
        on server: PostgresServer? = nil, environment: [String: String] = [:], extra: [String] = []
    ) throws -> TestDaemon {
        try TestDaemon(
            [
                "--store", store.url, "--store-password-file", (server ?? self.server).passwordFile, "--node", name,
                "--lease-timeout", "\(lease)", "--workers", "\(workers)", "--max-queue", "100000", "--execution-log",
                executionLog,
            ] + extra, environment: environment)
    }

    /// Stops `daemons` by SIGTERM; each is to drain and exit 0.
    func stop(_ daemons: TestDaemon..., sourceLocation: SourceLocation = #_sourceLocation) {
        for daemon in daemons { daemon.signal(SIGTERM) }
        for daemon in daemons { #expect(daemon.waitForExit() == 0, "\(daemon.log())", sourceLocation: sourceLocation) }
    }

    func count(_ condition: String, in store: (name: String, url: String), on server: PostgresServer? = nil) throws -> Int {
        Int(try (server ?? self.server).psql("SELECT count(*) FROM concur.jobs WHERE \(condition)", database: store.name))
            ?? -1
    }

    /// Each job's runs: how many times it started, and which processes started it.
    func starts() throws -> [Int: [String]] {
        let text = (try? String(contentsOfFile: executionLog, encoding: .utf8)) ?? ""
        var starts: [Int: [String]] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 4, fields[0] == "start", let id = Int(fields[1]) else { continue }
            starts[id, default: []].append(String(fields[3]))
        }
        return starts
    }

    @Test("10,000 jobs submitted across 3 nodes: each runs exactly once, on some node")
    func exactlyOnce() throws {
        let store = try database("once")
        let nodes = try (1...3).map { try node("n\($0)", store: store) }
        for (index, node) in nodes.enumerated() {
            let submitted = try node.ctl(["submit", "--jobs", index == 0 ? "3334" : "3333", "--kind", "cpu", "--scale", "0"])
            #expect(submitted.status == 0, "\(submitted)")
        }
        #expect(
            eventually(240) { (try? count("state = 3", in: store)) == 10_000 },
            "done: \((try? count("state = 3", in: store)) ?? -1)")
        let runs = try starts()
        #expect(runs.count == 10_000)
        #expect(
            runs.values.allSatisfy { $0.count == 1 }, "ran twice: \(runs.filter { $0.value.count > 1 }.keys.sorted().prefix(10))")
        #expect(try count("attempts <> 1 OR node IS NULL", in: store) == 0)
        let statuses = try nodes.map { try $0.status() }
        let doneByNode = statuses.map(\.totals.done)
        #expect(doneByNode.reduce(0, +) == 10_000, "\(doneByNode)")
        // Each node counts the jobs it claimed (all of them done here), not the ones submitted to it.
        #expect(statuses.map(\.node) == ["n1", "n2", "n3"])
        #expect(statuses.map(\.totals.submitted) == doneByNode)
        let text = try nodes[1].ctl(["status"]).stdout
        #expect(text.contains("\(doneByNode[1]) claimed by node n2 from the shared queue: \(doneByNode[1]) done"), "\(text)")
        for node in nodes { node.signal(SIGTERM) }
        for node in nodes { #expect(node.waitForExit() == 0, "\(node.log())") }
    }

    @Test("kill -9 of a node under load: every job is done, repeats stay within what it held, its jobs rescued in time")
    func killedNode() throws {
        let store = try database("killed")
        let victim = try node("victim", store: store, lease: 3)
        let survivor = try node("survivor", store: store, lease: 3)
        let submitted = try victim.ctl(["submit", "--jobs", "300", "--kind", "sleep", "--scale", "0.5"])
        #expect(submitted.status == 0, "\(submitted)")
        #expect(eventually(30) { (try? count("state = 2 AND node = 'victim'", in: store)) ?? 0 > 0 })
        usleep(500_000)
        victim.signal(SIGKILL)
        _ = victim.waitForExit()
        let killed = Date()
        let held = try count("state IN (1, 2) AND node = 'victim'", in: store)
        #expect(
            eventually(60) { (try? count("state = 3", in: store)) == 300 }, "done: \((try? count("state = 3", in: store)) ?? -1)")
        #expect(try count("state IN (1, 2) AND node = 'victim'", in: store) == 0)
        #expect(try count("node = 'survivor' AND state = 3", in: store) > 0)
        let runs = try starts()
        let repeated = runs.filter { $0.value.count > 1 }
        #expect(runs.count == 300)
        #expect(repeated.count <= held, "\(repeated.count) repeated, the victim held \(held)")
        // Rescued within the lease (3 s) and the next look (every 1.5 s), plus a margin.
        let rescuedAt = Date().timeIntervalSince(killed)
        #expect(rescuedAt < 3 + 1.5 + 20, "\(rescuedAt)")
        #expect(try cluster(survivor).nodes.map(\.state) == [.running, .lost])
        survivor.signal(SIGTERM)
        #expect(survivor.waitForExit() == 0)
    }

    @Test("PostgreSQL restarted under load: the nodes reconnect, every job is done, none twice")
    func serverRestart() throws {
        let store = try database("restart")
        let nodes = try ["r1", "r2"].map { try node($0, store: store) }
        for node in nodes {
            let submitted = try node.ctl(["submit", "--jobs", "1500", "--kind", "sleep", "--scale", "0.05"])
            #expect(submitted.status == 0, "\(submitted)")
        }
        #expect(eventually(60) { (try? count("state = 3", in: store)) ?? 0 > 300 })
        try server.restart()
        // While it was away a submit may have been refused; now the nodes are back.
        #expect(
            eventually(120) { (try? count("state = 3", in: store)) == 3000 },
            "done: \((try? count("state = 3", in: store)) ?? -1)")
        let runs = try starts()
        #expect(runs.count == 3000)
        let twice = runs.filter { $0.value.count > 1 }
        #expect(twice.isEmpty, "ran twice: \(twice.keys.sorted().prefix(10))")
        #expect(
            nodes.allSatisfy { $0.log().contains("reconnected") || $0.log().contains("the job store cannot be reached") },
            "\(nodes.map { $0.log().suffix(2000) })")
        for node in nodes { node.signal(SIGTERM) }
        for node in nodes { #expect(node.waitForExit() == 0, "\(node.log())") }
    }

    @Test(
        "PostgreSQL away for a while: status and STATUS= say so, Submit gets StoreUnavailable, the running jobs finish and nothing starts; once it is back their ends are written and the rest run, each once"
    )
    func serverAway() throws {
        // A server of its own: the other suites keep using theirs while this one is down.
        let (own, store) = try ownServer("away")
        defer { own.stop() }
        let listener = try NotifyListener(path: folder.path + "/notify.sock")
        let node = try node("away", store: store, on: own, environment: ["NOTIFY_SOCKET": listener.path])
        #expect(try node.ctl(["submit"] + Array(repeating: "sleep:1500", count: 6)).status == 0)
        #expect(try eventually(10) { try node.status().running == 2 }, "\(node.log())")
        try own.takeDown()
        var status = try node.status()
        #expect(
            try eventually(10) {
                status = try node.status()
                return status.phase == .degraded
            }, "\(status) \(node.log())")
        #expect(status.warnings.contains { $0.contains("the job store cannot be reached") }, "\(status.warnings)")
        #expect(listener.receive(until: "STATUS=degraded, the job store cannot record", timeout: 10) != nil)
        let refused = try node.ctl(["submit", "sleep:1"])
        #expect(refused.status == 1 && refused.stderr.contains("cannot queue jobs in its job store"), "\(refused)")
        let text = try node.ctl(["status"])
        #expect(
            text.stdout.contains(": degraded") && text.stdout.contains("warning   the job store cannot be reached"), "\(text)")
        // The two running finish (their ends held); none of the four claimed starts meanwhile.
        #expect(try eventually(10) { try node.status().running == 0 }, "\(node.log())")
        Thread.sleep(forTimeInterval: 0.5)
        let (startedWhileAway, doneWhileAway) = (try starts(), try node.status().totals.done)
        #expect(startedWhileAway.count == 2 && doneWhileAway == 2, "\(startedWhileAway), \(doneWhileAway) done")
        try own.bringBack()
        #expect(try eventually(15) { try node.status().phase == .serving }, "\(node.log())")
        #expect(
            eventually(30) { (try? count("state = 3", in: store, on: own)) == 6 },
            "done: \((try? count("state = 3", in: store, on: own)) ?? -1) \(node.log())")
        let runs = try starts()
        #expect(runs.count == 6 && runs.allSatisfy { $0.value.count == 1 }, "\(runs)")
        #expect(node.log().contains("the job store is back"), "\(node.log())")
        #expect(node.log().contains("hears the queue's notices again"), "\(node.log())")
        #expect(try node.ctl(["submit", "sleep:1"]).status == 0)
        stop(node)
    }

    @Test(
        "idle nodes wait for the queue's notices instead of polling it: a pool looks about once a second, and a job queued on one node wakes the other's"
    )
    func listenNotify() throws {
        // A server of its own, whose log shows every statement of this test's database.
        let (own, store) = try ownServer("listen")
        defer { own.stop() }
        _ = try own.psql("ALTER DATABASE \(store.name) SET log_statement = 'all'")
        let nodes = try ["l1", "l2"].map { try node($0, store: store, on: own) }
        #expect(try nodes[0].ctl(["submit", "sleep:1"]).status == 0)
        #expect(eventually(30) { (try? count("state = 3", in: store, on: own)) == 1 })
        let claims = { () -> Int in
            let log = (try? String(contentsOfFile: own.logPath, encoding: .utf8)) ?? ""
            return log.components(separatedBy: "WITH picked AS").count - 1
        }
        let before = claims()
        Thread.sleep(forTimeInterval: 3)
        // Two idle lanes polling every 40 ms would claim 150 times in 3 s; listening, each looks
        // once a second (a loaded machine looks less often, never more).
        let idle = claims() - before
        #expect(idle <= 2 * 4 + 2, "\(idle) claims in 3 s of idle")
        #expect(idle > 0, "no claim at all: the statement log is not where the test reads it")
        let log = try String(contentsOfFile: own.logPath, encoding: .utf8)
        #expect(log.contains("pg_notify"), "no notice was sent")
        // Jobs queued on l2 are run by both (l1 is woken by the notice, and also by its look).
        let submitted = try nodes[1].ctl(["submit", "--jobs", "40", "--kind", "sleep", "--scale", "0.05"])
        #expect(submitted.status == 0, "\(submitted)")
        #expect(eventually(60) { (try? count("state = 3", in: store, on: own)) == 41 })
        #expect(try count("node = 'l1' AND state = 3", in: store, on: own) > 1)
        #expect(try count("node = 'l2' AND state = 3", in: store, on: own) > 1)
        for node in nodes {
            #expect(!node.log().contains("does not hear the queue's notices"), "\(node.log())")
            node.signal(SIGTERM)
        }
        for node in nodes { #expect(node.waitForExit() == 0, "\(node.log())") }
    }

    @Test("a listening connection that falls silent is found by its probe and replaced; the node hears notices again")
    func silentListener() throws {
        let (own, store) = try ownServer("silent_listener")
        defer { own.stop() }
        let node = try node("q1", store: store, lease: 3, on: own)
        let backend = "SELECT pid FROM pg_stat_activity WHERE application_name = 'concurd listen' AND datname = '\(store.name)'"
        #expect(eventually(10) { Int32((try? own.psql(backend)) ?? "") != nil })
        let frozen = try #require(Int32(try own.psql(backend)))
        // Stopped, its backend answers nothing and closes nothing, as across a silent partition.
        kill(frozen, SIGSTOP)
        defer { kill(frozen, SIGCONT) }
        #expect(eventually(15) { node.log().contains("does not hear the queue's notices") }, "\(node.log())")
        #expect(eventually(15) { node.log().contains("hears the queue's notices again") }, "\(node.log())")
        let replaced = Int32((try? own.psql(backend).split(separator: "\n").last.map(String.init) ?? "") ?? "")
        #expect(replaced != nil && replaced != frozen, "\(String(describing: replaced))")
        kill(frozen, SIGCONT)
        #expect(try node.ctl(["submit", "sleep:1"]).status == 0)
        #expect(eventually(20) { (try? count("state = 3", in: store, on: own)) == 1 })
        stop(node)
    }

    @Test(
        "a node frozen past its lease is fenced when it wakes: its jobs were run elsewhere, it says it lost its lease and starts nothing more"
    )
    func frozenNode() throws {
        let store = try database("frozen")
        let frozen = try node("frozen", store: store, lease: 3, workers: 1)
        #expect(try frozen.ctl(["submit"] + Array(repeating: "sleep:300", count: 30)).status == 0)
        #expect(try eventually(10) { try frozen.status().running == 1 }, "\(frozen.log())")
        let awake = try node("awake", store: store, lease: 3)
        frozen.signal(SIGSTOP)
        let held = try count("state IN (1, 2) AND node = 'frozen'", in: store)
        #expect(held > 0)
        // The other node finds it silent (3 s lease, a look every 1.5 s) and runs its jobs.
        #expect(eventually(30) { (try? count("state IN (1, 2) AND node = 'frozen'", in: store)) == 0 })
        let byFrozen = { (try? starts().values.reduce(0) { $0 + $1.filter { $0 == "\(frozen.pid)" }.count }) ?? 0 }
        let startedBeforeWaking = byFrozen()
        frozen.signal(SIGCONT)
        #expect(eventually(15) { frozen.log().contains("lost its lease") }, "\(frozen.log())")
        #expect(try eventually(10) { try frozen.status().phase == .degraded }, "\(frozen.log())")
        #expect(try frozen.status().warnings.contains { $0.contains("lost its lease: restart concurd") })
        #expect(
            eventually(60) { (try? count("state = 3", in: store)) == 30 },
            "done: \((try? count("state = 3", in: store)) ?? -1)")
        let runs = try starts()
        let repeated = runs.filter { $0.value.count > 1 }
        #expect(runs.count == 30 && repeated.count <= held, "\(repeated.count) repeated, it held \(held)")
        // Awake, its one worker may take one job from its buffer before its first write finds it
        // fenced (40 ms); after that it starts none of the jobs still buffered there.
        #expect(byFrozen() - startedBeforeWaking <= 1, "\(byFrozen() - startedBeforeWaking) started after waking")
        for node in [frozen, awake] { node.signal(SIGTERM) }
        #expect(awake.waitForExit() == 0, "\(awake.log())")
        _ = frozen.waitForExit()
    }

    /// `status --cluster --json` of `node`, decoded.
    func cluster(_ node: TestDaemon) throws -> ClusterStatus {
        try ClusterStatus(json: .object(node.ctlJSON(["status", "--cluster"])), path: "reply")
    }

    @Test("status --cluster lists every node with its pools and the queue's jobs; a damaged record is named, not fatal")
    func clusterStatus() throws {
        let store = try database("cluster")
        let first = try node("c1", store: store, lease: 3)
        let second = try node("c2", store: store, lease: 3, workers: 3)
        let submitted = try first.ctl(["submit", "--jobs", "200", "--kind", "sleep", "--scale", "0.01"])
        #expect(submitted.status == 0, "\(submitted)")
        #expect(eventually(60) { (try? count("state = 3", in: store)) == 200 })
        // Each node writes its pools and counts with its heartbeat (every 0.5 s with a 3 s lease).
        var status: ClusterStatus?
        let reported = eventually(10) {
            status = try? cluster(first)
            return status.map { $0.nodes.map(\.done).reduce(0, +) == 200 } ?? false
        }
        #expect(reported, "\(String(describing: status))")
        let nodes = status?.nodes ?? []
        #expect(status?.answeredBy == "c1")
        #expect(nodes.map(\.name) == ["c1", "c2"] && nodes.allSatisfy { $0.state == .running }, "\(nodes)")
        #expect(nodes.map { $0.pools.map(\.workers) } == [[2], [3]], "\(nodes)")
        #expect(nodes.allSatisfy { $0.pools.first?.model == .threads && $0.pid > 0 && $0.heartbeatAge < 3 }, "\(nodes)")
        var expected = ClusterQueue(pool: "default")
        expected.done = 200
        #expect(status?.queue == [expected], "\(String(describing: status))")
        let text = try first.ctl(["status", "--cluster"])
        #expect(text.status == 0, "\(text)")
        #expect(text.stdout.contains("cluster: 2 nodes, 2 running (read by c1)"), "\(text.stdout)")
        #expect(text.stdout.contains("  pool default: threads, 3 workers, 0 busy"), "\(text.stdout)")
        #expect(text.stdout.split(separator: "\n").allSatisfy { $0.count <= 80 }, "\(text.stdout)")
        // A record of c2's that does not read back (another version wrote it, or it was damaged).
        // c2 is stopped first, so that no heartbeat of its writes over the damage.
        second.signal(SIGSTOP)
        defer { second.signal(SIGCONT) }
        usleep(300_000)
        _ = try server.psql("UPDATE concur.nodes SET pools = '{\"pools\": 1}' WHERE name = 'c2'", database: store.name)
        let damaged = try first.ctl(["status", "--cluster"])
        #expect(damaged.status == 0 && damaged.stdout.contains("warning: its pools in the queue cannot be read"), "\(damaged)")
        second.signal(SIGCONT)
        second.signal(SIGTERM)
        #expect(second.waitForExit() == 0)
        let after = try cluster(first)
        #expect(after.nodes.map(\.state) == [.running, .stopped], "\(after.nodes)")
        let wrong = try first.ctl(["status", "--cluster", "--pool", "default"])
        #expect(wrong.status == 64 && wrong.stderr.contains("leave out --pool"), "\(wrong)")
        first.signal(SIGTERM)
        #expect(first.waitForExit() == 0)
        // A daemon with a queue of its own has no cluster.
        let alone = try TestDaemon(["--ephemeral"])
        let refused = try alone.ctl(["status", "--cluster"])
        #expect(refused.status == 1 && refused.stderr.contains("started without --store"), "\(refused)")
    }

    @Test("cancel on one node stops a job another node runs, ends a job waiting in the queue, and refuses what it cannot")
    func cancelAcrossNodes() throws {
        let store = try database("cancel")
        let first = try node("x1", store: store, lease: 3)
        let second = try node("x2", store: store, lease: 3)
        let submitted = try first.ctl(["submit", "--jobs", "8", "--kind", "sleep", "--scale", "100"])
        #expect(submitted.status == 0, "\(submitted)")
        // Whichever node runs a job, the other one is asked about it and cancels it (a node's
        // first claim may take all 8: its pace looks high while its workers are idle).
        #expect(eventually(30) { (try? count("state = 2", in: store)) ?? 0 > 0 })
        let holding = try server.psql(
            "SELECT node || ' ' || min(id) FROM concur.jobs WHERE state = 2 GROUP BY node ORDER BY node LIMIT 1",
            database: store.name
        ).split(separator: " ").map(String.init)
        try #require(holding.count == 2, "\(holding)")
        let running = try #require(Int(holding[1]))
        let (holder, asker) = holding[0] == "x1" ? (first, second) : (second, first)
        // jobs on the other node reads the job from the queue, and names its node.
        let listed = try asker.ctlJSON(["jobs", "\(running)"])
        let jobs = try [JobInfo](json: listed["jobs"] ?? .null, path: "jobs")
        #expect(jobs.map(\.node) == [holding[0]] && jobs.map(\.state) == [.running], "\(listed)")
        let table = try asker.ctl(["jobs", "\(running)"])
        #expect(table.stdout.contains("NODE") && table.stdout.contains(holding[0]), "\(table)")
        // Without ids, jobs lists the queue's, wherever they are: all 8 from either node.
        for node in [asker, holder] {
            let every = try [JobInfo](json: node.ctlJSON(["jobs"])["jobs"] ?? .null, path: "jobs")
            #expect(every.map(\.id) == (1...8).reversed().map(UInt64.init), "\(every.map(\.id))")
            let runningThere = try [JobInfo](
                json: node.ctlJSON(["jobs", "--state", "running"])["jobs"] ?? .null, path: "jobs")
            #expect(runningThere.contains { $0.id == UInt64(running) && $0.node == holding[0] }, "\(runningThere)")
        }
        let stopped = try asker.ctl(["cancel", "\(running)", "--json"])
        #expect(stopped.status == 0 && stopped.stdout.contains(#""stopping":[\#(running)]"#), "\(stopped)")
        // The holder sees the request within about a second and cancels the job as its own.
        let row = "SELECT state, node, cancel_reason FROM concur.jobs WHERE id = \(running)"
        #expect(
            eventually(20) { (try? count("id = \(running) AND state = 5", in: store)) == 1 },
            "\((try? server.psql(row, database: store.name)) ?? "")")
        #expect(holder.log().contains("job \(running): cancelled by uid 0 on another node"), "\(holder.log())")
        // Jobs waiting in the queue (scheduled an hour ahead) end cancelled at once, from either node.
        let later = try second.ctl(["submit", "--jobs", "3", "--kind", "sleep", "--delay", "1h"])
        #expect(later.status == 0, "\(later)")
        let scheduled = try server.psql(
            "SELECT string_agg(id::text, ' ' ORDER BY id) FROM concur.jobs WHERE state = 6", database: store.name
        ).split(separator: " ").map(String.init)
        try #require(scheduled.count == 3)
        // All or none across the queue and this node: a job that ended here keeps the queue's
        // job from being cancelled too.
        let half = try holder.ctl(["cancel", scheduled[1], "\(running)"])
        #expect(half.status == 1 && half.stderr.contains("\(running)"), "\(half)")
        #expect(try count("id = \(scheduled[1]) AND state = 6 AND cancel_reason IS NULL", in: store) == 1)
        let one = try first.ctl(["cancel", scheduled[0]])
        #expect(one.status == 0, "\(one)")
        #expect(try count("id = \(scheduled[0]) AND state = 5", in: store) == 1)
        let rest = try second.ctl(["cancel", "--queued", "--json"])
        #expect(rest.status == 0 && rest.stdout.contains(scheduled[1]) && rest.stdout.contains(scheduled[2]), "\(rest)")
        #expect(try count("state IN (0, 6)", in: store) == 0)
        // All or none: an unknown id, or one that ended, cancels nothing.
        let mixed = try first.ctl(["cancel", "\(running + 1)", "999999"])
        #expect(mixed.status == 1 && mixed.stderr.contains("999999"), "\(mixed)")
        #expect(try count("id = \(running + 1) AND cancel_reason IS NOT NULL", in: store) == 0)
        let ended = try first.ctl(["cancel", scheduled[0]])
        #expect(ended.status == 1 && ended.stderr.contains("cancelled"), "\(ended)")
        let absent = try first.ctl(["jobs", "999999"])
        #expect(absent.status == 1 && absent.stderr.contains("999999"), "\(absent)")
        // A row no concurd writes is named, field and all.
        _ = try server.psql("UPDATE concur.jobs SET model = 'fibers' WHERE id = \(scheduled[0])", database: store.name)
        let damaged = try second.ctl(["jobs", scheduled[0]])
        #expect(damaged.status == 1 && damaged.stderr.contains("its model is 'fibers'"), "\(damaged)")
        for node in [first, second] { node.signal(SIGINT) }
        for node in [first, second] { _ = node.waitForExit() }
    }

    @Test("what a shared queue does not keep is refused with what to do, and nothing is queued")
    func notKeptYet() throws {
        let store = try database("not_kept")
        let node = try node("k1", store: store)
        let crash = try node.ctl(["submit", "crash"])
        #expect(crash.status != 0 && crash.stderr.contains("crash jobs are not queued in a shared store"), "\(crash)")
        let exec = try node.ctl(["submit", "--exec", "--", "true"])
        #expect(exec.status != 0 && exec.stderr.contains("--allow-exec"), "\(exec)")
        #expect(try count("true", in: store) == 0)
        node.signal(SIGTERM)
        #expect(node.waitForExit() == 0)
    }

    @Test(
        "a job runs after jobs another node ran; one failing cancels what waits for it, and theirs; an unknown job is refused"
    )
    func dependenciesAcrossNodes() throws {
        let store = try database("after")
        let first = try node("a1", store: store)
        let second = try node("a2", store: store)
        #expect(try first.ctl(["submit", "sleep:1500"]).status == 0)  // 1
        #expect(try first.ctl(["submit", "--delay", "2s", "fail"]).status == 0)  // 2
        for after in ["1", "2", "4"] {  // 3, 4, 5
            let submitted = try second.ctl(["submit", "--after", after, "sleep:1"])
            #expect(submitted.status == 0, "\(submitted)")
        }
        let waiting = try [JobInfo](json: second.ctlJSON(["jobs", "3", "4", "5"])["jobs"] ?? .null, path: "jobs")
        #expect(waiting.map(\.state) == [.waiting, .waiting, .waiting], "\(waiting)")
        #expect(waiting.map(\.waitingFor) == [[1], [2], [4]])
        let table = try second.ctl(["jobs", "--state", "waiting"])
        #expect(table.stdout.contains("waiting"), "\(table)")

        let unknown = try second.ctl(["submit", "sleep:1", "--after", "999"])
        // As on one node: refused by concurd (1), naming the field.
        #expect(
            unknown.status == 1 && unknown.stderr.contains("jobs[0].after: job 999 was never submitted"),
            "\(unknown.status) \(unknown.stderr)")
        #expect(try count("true", in: store) == 5)

        #expect(eventually(30) { (try? count("state IN (3, 4, 5)", in: store)) == 5 }, "\(first.log())\n\(second.log())")
        let ended = try server.psql(
            "SELECT string_agg(id || ' ' || state || ' ' || coalesce(error, '-'), '; ' ORDER BY id) FROM concur.jobs",
            database: store.name)
        #expect(
            ended
                == "1 3 -; 2 4 fail job: failed on purpose (fault injection); 3 3 -; 4 5 job 2, which it runs after, failed; 5 5 job 4, which it runs after, was cancelled",
            "\(ended)")
        #expect(
            try count("id = 3 AND started_at >= (SELECT finished_at FROM concur.jobs WHERE id = 1)", in: store) == 1)
        let runs = try starts()
        #expect(runs[3]?.count == 1 && runs[4] == nil && runs[5] == nil, "\(runs)")
        // Once job 1 is done, a job after it is not held back; after job 4 it ends cancelled at once.
        #expect(try first.ctl(["submit", "--after", "1", "sleep:1"]).status == 0)
        #expect(try first.ctl(["submit", "--after", "4", "sleep:1"]).status == 0)
        #expect(eventually(20) { (try? count("id = 6 AND state = 3", in: store)) == 1 })
        #expect(try count("id = 7 AND state = 5", in: store) == 1)
        #expect(try count("true", in: store) == 7)
        #expect(try server.psql("SELECT count(*) FROM concur.job_after", database: store.name) == "0")
        stop(first, second)
    }

    @Test("a node whose deep claim of short jobs brought long ones gives back what it cannot start soon")
    func givesBackClaims() throws {
        let store = try database("give_back")
        let first = try node("g1", store: store, workers: 1)
        // Short jobs deepen the claims; the long ones behind them come in the last deep claim.
        #expect(try first.ctl(["submit", "--jobs", "8000", "--kind", "cpu", "--scale", "0"]).status == 0)
        #expect(try first.ctl(["submit"] + Array(repeating: "sleep:2000", count: 60)).status == 0)
        // All 60 held by g1 (one runs), so that g2 can only get what g1 gives back.
        let held = "id > 8000 AND node = 'g1' AND state IN (1, 2)"
        try #require(
            eventually(60) { (try? count(held, in: store)) == 60 }, "held: \((try? count(held, in: store)) ?? -1)")
        let second = try node("g2", store: store, workers: 2)
        // Given back within about a second of the pace falling, the rest runs on g2 too.
        #expect(
            eventually(20) { (try? count("id > 8000 AND node = 'g2' AND state IN (2, 3)", in: store)) ?? 0 >= 2 },
            "\(first.log())")
        #expect(first.log().contains("buffered jobs given back to the queue"), "\(first.log())")
        let kept = try count("id > 8000 AND node = 'g1' AND state = 1", in: store)
        // About twice the depth stays (the depth is twice the worker, give or take the pace measured).
        #expect(kept <= 20, "\(kept) kept: \(first.log().split(separator: "\n").filter { $0.contains("given back") })")
        #expect(try first.ctl(["cancel", "--queued"]).status == 0)
        #expect(try second.ctl(["cancel", "--queued"]).status == 0)
        stop(first, second)
        let runs = try starts()
        #expect(runs.values.allSatisfy { $0.count == 1 }, "ran twice: \(runs.filter { $0.value.count > 1 }.keys.sorted())")
        #expect(try count("state = 3", in: store) == runs.count)
    }

    @Test("submit --wait and wait follow jobs that other nodes run, to their end; an unknown job is NoSuchJob")
    func waitAcrossNodes() throws {
        let store = try database("waits")
        let first = try node("w1", store: store, workers: 1)
        let second = try node("w2", store: store, workers: 1)
        // One node's worker is kept busy, so some of these run on the other.
        let waited = try first.ctl(["submit", "--wait", "sleep:400", "sleep:400", "fail"])
        #expect(waited.status == 1, "\(waited)")
        for id in 1...3 { #expect(waited.stdout.contains("\(id)"), "\(waited)") }
        #expect(waited.stdout.contains("failed"), "\(waited)")
        #expect(try count("state IN (3, 4)", in: store) == 3)

        let later = try second.ctl(["submit", "sleep:600"])  // 4
        #expect(later.status == 0)
        let one = try first.ctl(["wait", "4", "--json"])
        #expect(one.status == 0 && one.stdout.contains(#""state":"done""#), "\(one)")
        #expect(try count("id = 4 AND state = 3", in: store) == 1)
        let unknown = try first.ctl(["wait", "4", "999999"])
        #expect(unknown.status == 1 && unknown.stderr.contains("999999"), "\(unknown)")

        // wait --all waits for every job of the queue not ended at the call, and a chain with it.
        #expect(try second.ctl(["submit", "sleep:300"]).status == 0)  // 5
        #expect(try second.ctl(["submit", "--after", "5", "sleep:300"]).status == 0)  // 6
        let all = try first.ctl(["wait", "--all"])
        #expect(all.status == 0, "\(all)")
        #expect(try count("id IN (5, 6) AND state = 3", in: store) == 2)
        let none = try first.ctl(["wait", "--all"])
        #expect(none.status == 0, "\(none)")
        stop(first, second)
    }

    @Test(
        "PostgreSQL on a full disk: a submit is refused saying so, nothing is lost, and with room again every job runs once"
    )
    func fullDisk() throws {
        let disk = try TinyDisk(bytes: 160 << 20)
        let own = try PostgresServer(under: disk.path)
        defer {
            own.stop()
            withExtendedLifetime(disk) {}
        }
        let store = try database("full_disk", on: own)
        let node = try node("d1", store: store, workers: 2, on: own)
        #expect(try node.ctl(["submit", "--jobs", "100", "--kind", "sleep", "--scale", "0.02"]).status == 0)
        #expect(eventually(30) { (try? count("state = 3", in: store, on: own)) == 100 })
        #expect(try node.ctl(["submit", "--jobs", "20", "--kind", "sleep", "--scale", "1"]).status == 0)
        disk.fill()
        // A batch that needs new pages cannot be written.
        let refused = try node.ctl(["submit", "--jobs", "20000", "--kind", "sleep", "--scale", "0"])
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stderr.contains("cannot queue jobs") && refused.stderr.contains("out of disk space"), "\(refused)")
        let status = try node.ctl(["status"])
        disk.free()
        if (try? own.psql("SELECT 1")) == nil {
            // It stopped rather than lose a write (a WAL segment it could not make): started again.
            try own.bringBack()
        }
        #expect(try node.ctl(["submit", "--jobs", "30", "--kind", "sleep", "--scale", "0.02"]).status == 0)
        let accepted = try count("true", in: store, on: own)
        #expect(accepted == 150, "\(accepted) jobs in the queue; status on a full disk: \(status.stdout)")
        #expect(
            eventually(60) { (try? count("state = 3", in: store, on: own)) == accepted },
            "\((try? own.psql("SELECT state, count(*) FROM concur.jobs GROUP BY state", database: store.name)) ?? "")")
        let runs = try starts()
        #expect(runs.count == accepted && runs.values.allSatisfy { $0.count == 1 }, "\(runs.filter { $0.value.count > 1 })")
        stop(node)
    }

    @Test("a wrong URL, a wrong password and an unreachable server stop the start with what to do")
    func wrongStore() throws {
        let url = try database("wrong").url
        // Settings refused before anything starts (status 2), then stores that cannot be used (1).
        let cases: [([String], String, Int32)] = [
            (["--store", "mysql://concur@localhost/db"], "--store", 2),
            (["--store", url, "--ephemeral"], "contradict each other", 2),
            (["--store", url, "--node", "bad name!"], "--node", 2),
            (["--store", url, "--lease-timeout", "1"], "--lease-timeout", 2),
            (["--store", url, "--store-password-file", "relative"], "must be an absolute path", 2),
            (["--store", url, "--store-password-file", folder.path + "/missing"], "missing", 1),
            (["--store", "postgres://concur@127.0.0.1:1/x?sslmode=disable"], "no PostgreSQL at 127.0.0.1:1", 1),
        ]
        for (arguments, message, status) in cases {
            let daemon = try TestDaemon(arguments, waitForSocket: false)
            #expect(daemon.waitForExit(timeout: 20) == status, "\(arguments): \(daemon.log())")
            #expect(daemon.log().contains(message), "\(arguments): \(daemon.log())")
        }
        try folder.write(folder.path + "/wrong-pgpass", "\(server.socketDirectory):*:*:concur:not-the-password\n", mode: 0o600)
        let refused = try TestDaemon(
            ["--store", url, "--store-password-file", folder.path + "/wrong-pgpass"], waitForSocket: false)
        #expect(refused.waitForExit(timeout: 20) == 1)
        #expect(refused.log().contains("password") && refused.log().contains("wrong-pgpass"), "\(refused.log())")
    }

    @Test(
        "a state directory whose journal holds unfinished jobs is refused with --store, naming how many and where; once they are done the node joins"
    )
    func strandedJournal() throws {
        let store = try database("stranded")
        let state = folder.path + "/stranded-state"
        let shared = ["--store", store.url, "--store-password-file", server.passwordFile, "--node", "stranded"]
        // One host's concurd leaves three queued jobs in its journal (paused, then stopped).
        let single = try TestDaemon(["--workers", "1"], stateDirectory: state)
        #expect(try single.ctl(["pause"]).status == 0)
        #expect(try single.ctl(["submit", "sleep:1", "sleep:1", "sleep:1"]).status == 0)
        stop(single)
        let refused = try TestDaemon(shared, stateDirectory: state, waitForSocket: false)
        #expect(refused.waitForExit(timeout: 20) == 1, "\(refused.log())")
        #expect(
            refused.log().contains("holds 3 unfinished jobs (3 in pool default)")
                && refused.log().contains("start concurd once without --store"), "\(refused.log())")
        #expect(((try? count("true", in: store)) ?? 0) == 0, "a refused node queued nothing")
        // Finished on that host, the same directory joins.
        let finishing = try TestDaemon(["--workers", "1"], stateDirectory: state)
        #expect(try eventually(30) { try finishing.status().totals.done == 3 }, "\(finishing.log())")
        stop(finishing)
        let joined = try TestDaemon(shared, stateDirectory: state)
        #expect(try joined.ctl(["status"]).status == 0, "\(joined.log())")
        stop(joined)
    }

    @Test(
        "finished jobs beyond retain_jobs are deleted from the queue by the node that serves their pool, and a reload changes how many"
    )
    func retention() throws {
        let store = try database("retention")
        let config = folder.path + "/retention.toml"
        try "retain_jobs = 5\n".write(toFile: config, atomically: true, encoding: .utf8)
        let node = try node("keeper", store: store, extra: ["--config", config])
        #expect(try node.ctl(["submit", "--jobs", "12", "--kind", "sleep", "--scale", "0.01"]).status == 0)
        // Pruned every 10 s: within two turns, with a margin for a loaded machine.
        #expect(
            eventually(40) { (try? count("true", in: store)) == 5 },
            "\((try? count("true", in: store)) ?? -1) rows \(node.log())")
        #expect(try count("state = 3 AND id > 7", in: store) == 5)
        try "retain_jobs = 2\n".write(toFile: config, atomically: true, encoding: .utf8)
        let reloaded = try node.ctl(["reload"])
        #expect(reloaded.status == 0 && reloaded.stdout.contains("retain_jobs"), "\(reloaded)")
        #expect(
            eventually(40) { (try? count("true", in: store)) == 2 },
            "\((try? count("true", in: store)) ?? -1) rows \(node.log())")
        #expect(try count("state = 3 AND id > 10", in: store) == 2)
        stop(node)
    }

    @Test("concurd hands a --store start to concurd-postgres, and says what to do without it")
    func handOver() throws {
        let store = try database("handover")
        let daemon = try TestDaemon([
            "--store", store.url, "--store-password-file", server.passwordFile, "--node", "handed", "--model", "processes",
            "--workers", "1",
        ])
        let command = try String(contentsOfFile: "/proc/\(daemon.pid)/cmdline", encoding: .utf8)
        #expect(command.hasPrefix(Binaries.concurdPostgres.path + "\u{0}"), "\(command)")
        #expect(try daemon.ctl(["status"]).status == 0)
        // Its process worker runs the lighter concurd: it needs no PostgreSQL client.
        var workers: [String] = []
        let started = eventually(10) {
            // A thread's children are listed under that thread: the workers' spawner is not the main one.
            let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(daemon.pid)/task")) ?? []
            let children = threads.map {
                (try? String(contentsOfFile: "/proc/\(daemon.pid)/task/\($0)/children", encoding: .utf8)) ?? ""
            }
            workers = children.joined(separator: " ").split(separator: " ").compactMap {
                try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\($0)/exe")
            }
            return !workers.isEmpty
        }
        #expect(started && workers.allSatisfy { $0 == Binaries.concurd.resolvingSymlinksInPath().path }, "\(workers)")
        // The same concurd alone in a folder: no PostgreSQL client beside it.
        let alone = folder.path + "/alone"
        try FileManager.default.createDirectory(atPath: alone, withIntermediateDirectories: true)
        // Copied by cp: a copy written from this process could be held open for writing by a
        // child another test forks meanwhile, and exec would fail with "Text file busy".
        let copy = try runCommand(URL(fileURLWithPath: "/bin/cp"), [Binaries.concurd.path, alone + "/concurd"])
        try #require(copy.status == 0, "\(copy)")
        let refused = try runCommand(
            URL(fileURLWithPath: alone + "/concurd"),
            ["--store", store.url, "--socket", folder.path + "/alone.sock", "--state-directory", folder.path + "/alone-state"])
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stderr.contains("concurd: --store needs \(alone)/concurd-postgres"), "\(refused)")
        #expect(refused.stderr.contains("scripts/install"), "\(refused)")
    }
}
