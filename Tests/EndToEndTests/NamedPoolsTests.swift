import ConcurProtocol
import ConcurTestSupport
import Foundation
import Testing
import Varlink

/// Named pools against the real daemon and the real concurctl: several models serving at once,
/// one pool changed while another runs, jobs across pools, a kill -9, and reloads that add and
/// remove a pool. What ran comes from the execution log the jobs' workers write.
@Suite("named pools", .serialized)
struct NamedPoolsTests {
    static func jobs(_ daemon: TestDaemon, _ arguments: [String] = []) throws -> [JobInfo] {
        let reply = try daemon.ctlJSON(["jobs", "--limit", "1000"] + arguments)
        guard case .array(let jobs) = reply["jobs"] ?? .null else { throw TestFailure("\(reply)") }
        return try jobs.map { try JobInfo(json: $0, path: "job") }
    }

    static func pools(_ daemon: TestDaemon) throws -> [PoolStatus] {
        let reply = try daemon.ctlJSON(["status"])
        return try [PoolStatus](json: reply["pools"] ?? .null, path: "pools")
    }

    @Test("three pools with three models serve at once; each job runs in its own pool's model, once")
    func threeModels() throws {
        let folder = try DurabilityTests.Folder()
        let daemon = try TestDaemon(
            ["--workers", "2", "--pool", "io=tasks:8", "--pool", "cpu=processes:2", "--execution-log", folder.executionLog])
        #expect(
            try Self.pools(daemon).map { "\($0.pool) \($0.model.rawValue) \($0.workers.live)" } == [
                "default threads 2", "cpu processes 2", "io tasks 8",
            ])
        #expect(try daemon.ctl(["pause", "--pool", "io"]).status == 0)
        #expect(try daemon.ctl(["submit", "--jobs", "40", "--kind", "sleep", "--scale", "0.2", "--pool", "io"]).status == 0)
        #expect(try daemon.ctl(["submit", "--jobs", "6", "--kind", "cpu", "--scale", "0.1", "--pool", "cpu"]).status == 0)
        #expect(try daemon.ctl(["submit", "--jobs", "6", "--kind", "cpu", "--scale", "0.1"]).status == 0)
        // --all waits for every pool's unfinished jobs: io's 40 are held until it resumes.
        let waiter = try daemon.startCtl(["wait", "--all", "--timeout", "60"])
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try daemon.ctl(["resume", "--pool", "io"]).status == 0)
        let waited = try #require(waiter.finish())
        let sleeps = waited.output.split(separator: "\n").filter { $0.contains(" sleep(") }
        #expect(waited.status == 0 && sleeps.count == 40, "\(waited)")
        let jobs = try Self.jobs(daemon)
        #expect(jobs.count == 52 && jobs.allSatisfy { $0.state == .done })
        let models = Dictionary(grouping: jobs, by: \.pool).mapValues { Set($0.compactMap(\.model)) }
        #expect(models == ["io": [.tasks], "cpu": [.processes], "default": [.threads]], "\(models)")
        #expect(try DurabilityTests.runs(in: folder.executionLog).values.allSatisfy { $0 == 1 })
        #expect(try Self.jobs(daemon, ["--pool", "cpu"]).map(\.pool) == Array(repeating: "cpu", count: 6))
        let table = try daemon.ctl(["status"]).stdout
        #expect(table.contains("3 pools") && table.contains("io          tasks           8"), "\(table)")
        let one = try daemon.ctl(["status", "--pool", "io"]).stdout
        #expect(one.contains("pool io") && one.contains("40 submitted: 40 done"), "\(one)")
        let listed = try daemon.ctl(["jobs", "--limit", "20"]).stdout
        #expect(listed.contains("POOL"), "\(listed)")
    }

    @Test("a switch, a resize and a pause of one pool while another runs: its workers and jobs are left alone")
    func changeOneWhileOtherRuns() throws {
        let folder = try DurabilityTests.Folder()
        let daemon = try TestDaemon(["--workers", "2", "--pool", "io=threads:2", "--execution-log", folder.executionLog])
        let before = try daemon.ctlJSON(["stats"])
        let workers = { (stats: JSONObject) throws -> [Int] in
            try PoolStats(json: .object(stats), path: "stats").workers.map(\.id)
        }
        #expect(try daemon.ctl(["submit", "sleep:800", "sleep:800"]).status == 0)
        #expect(try eventually { try daemon.status().running == 2 })
        #expect(try daemon.ctl(["model", "--pool", "io", "tasks"]).status == 0)
        #expect(try daemon.ctl(["resize", "--pool", "io", "--workers", "5"]).status == 0)
        #expect(try daemon.ctl(["pause", "--pool", "io"]).status == 0)
        #expect(try daemon.ctl(["submit", "--pool", "io", "sleep:1"]).status == 0)
        let status = try daemon.status()
        #expect(status.model == .threads && status.running == 2 && !status.paused && status.workers.target == 2)
        #expect(try workers(daemon.ctlJSON(["stats"])) == workers(before))
        let io = try #require(try Self.pools(daemon).first { $0.pool == "io" })
        #expect(io.model == .tasks && io.workers.target == 5 && io.paused && io.queued == 1)
        #expect(try daemon.ctl(["wait", "1", "2", "--timeout", "30"]).status == 0)
        let done = try Self.jobs(daemon, ["--pool", "default"])
        #expect(done.allSatisfy { $0.model == .threads && $0.attempts == 1 }, "\(done)")
        #expect(try daemon.ctl(["resume", "--pool", "io"]).status == 0)
        #expect(try daemon.ctl(["wait", "3", "--timeout", "30"]).status == 0)
        #expect(try Self.jobs(daemon, ["--pool", "io"]).first?.model == .tasks)
    }

    @Test("jobs across pools run in order, cancel across pools, and keep it all through kill -9")
    func acrossPoolsAndKill() throws {
        let folder = try DurabilityTests.Folder()
        let arguments = [
            "--workers", "1", "--pool", "io=tasks:2", "--pool", "cpu=processes:1", "--execution-log", folder.executionLog,
        ]
        let first = try TestDaemon(arguments, stateDirectory: folder.state)
        _ = try first.ctl(["submit", "sleep:2000"])  // 1, default: runs through the kill
        _ = try first.ctl(["submit", "--pool", "io", "--after", "1", "sleep:1"])  // 2, io
        _ = try first.ctl(["submit", "--pool", "cpu", "--after", "2", "sleep:1"])  // 3, cpu
        _ = try first.ctl(["submit", "--pool", "io", "fail"])  // 4, io: fails
        _ = try first.ctl(["submit", "--pool", "cpu", "--after", "4", "sleep:1"])  // 5, cpu: cancelled
        _ = try first.ctl(["submit", "--after", "5", "sleep:1"])  // 6, default: cancelled in turn
        #expect(try eventually { try SchedulingTests.job(6, first).state == .cancelled })
        #expect(try SchedulingTests.job(5, first).error == "job 4, which it runs after, failed")
        #expect(try SchedulingTests.job(6, first).error == "job 5, which it runs after, was cancelled")
        #expect(try SchedulingTests.job(3, first).state == .waiting && SchedulingTests.job(3, first).waitingFor == [2])
        #expect(try eventually { try first.status().running == 1 })
        first.signal(SIGKILL)
        _ = first.waitForExit()

        let second = try TestDaemon(arguments, stateDirectory: folder.state)
        #expect(try SchedulingTests.job(2, second).state == .waiting && SchedulingTests.job(3, second).state == .waiting)
        // One wait for jobs of three pools: it ends after the last of them.
        let waited = try second.ctl(["wait", "3", "1", "2", "--timeout", "30"])
        #expect(waited.status == 0 && waited.stdout.contains("3 jobs ended: 3 done"), "\(waited)")
        let runs = try DurabilityTests.runs(in: folder.executionLog)
        #expect(runs[2] == 1 && runs[3] == 1 && runs[5] == nil && runs[6] == nil, "\(runs)")
        let (one, two, three) = try (
            SchedulingTests.job(1, second), SchedulingTests.job(2, second), SchedulingTests.job(3, second)
        )
        #expect((two.startedAt ?? 0) >= (one.finishedAt ?? .infinity) && (three.startedAt ?? 0) >= (two.finishedAt ?? .infinity))
        #expect(two.pool == "io" && three.pool == "cpu" && three.model == .processes)
        // Ids go on above every pool's.
        let next = try second.ctl(["submit", "--pool", "cpu", "sleep:1"])
        #expect(next.stdout.contains("ids 7"), "\(next)")
    }

    @Test("a reload adds a pool, removes it keeping its queued jobs, and takes it back; a restart without it keeps them")
    func reload() throws {
        let folder = try DurabilityTests.Folder()
        let config = folder.path + "/concurd.toml"
        let withIO = "workers = 1\n[pools.io]\nmodel = \"tasks\"\nworkers = 2\n"
        try "workers = 1\n".write(toFile: config, atomically: true, encoding: .utf8)
        let arguments = ["--config", config, "--execution-log", folder.executionLog]
        let daemon = try TestDaemon(arguments, stateDirectory: folder.state)
        let unknown = try daemon.ctl(["submit", "--pool", "io", "sleep:1"])
        #expect(
            unknown.status == 1 && unknown.stderr.contains("concurd runs no pool named io; its pools: default"), "\(unknown)")

        try withIO.write(toFile: config, atomically: true, encoding: .utf8)
        let added = try daemon.ctl(["reload"])
        #expect(added.status == 0 && added.stdout.contains("pools.io: added (tasks, 2 workers)"), "\(added)")
        #expect(try daemon.ctl(["submit", "--pool", "io", "--wait", "sleep:1"]).status == 0)
        #expect(try daemon.ctl(["pause", "--pool", "io"]).status == 0)
        #expect(try daemon.ctl(["submit", "--pool", "io", "sleep:1", "sleep:1", "sleep:1"]).status == 0)  // 2-4
        #expect(try daemon.ctl(["submit", "--after", "2", "sleep:1"]).status == 0)  // 5, default, waits for io's 2

        try "workers = 1\n".write(toFile: config, atomically: true, encoding: .utf8)
        let removed = try daemon.ctl(["reload"])
        #expect(removed.status == 0 && removed.stdout.contains("pools.io: removed"), "\(removed)")
        let refused = try daemon.ctl(["submit", "--pool", "io", "sleep:1"])
        #expect(refused.status == 1 && refused.stderr.contains("pool io was removed"), "\(refused)")
        let io = try #require(try Self.pools(daemon).first { $0.pool == "io" })
        #expect(io.removed && io.queued == 3 && io.workers.live == 0, "\(io)")
        #expect(try daemon.ctl(["status"]).stdout.contains("removed: takes no work, 3 unfinished kept"))
        #expect(try SchedulingTests.job(5, daemon).state == .waiting)

        // A restart without it: the jobs are still there, and still kept.
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit() == 0)
        let again = try TestDaemon(arguments, stateDirectory: folder.state)
        #expect(eventually { again.log().contains("pool io is not configured: its unfinished jobs are kept") }, "\(again.log())")
        #expect(try Self.pools(again).first { $0.pool == "io" }?.queued == 3)
        #expect(try SchedulingTests.job(5, again).state == .waiting)

        // Back: the kept jobs run, and the one in default that waited for one of them.
        try withIO.write(toFile: config, atomically: true, encoding: .utf8)
        #expect(try again.ctl(["reload"]).status == 0)
        #expect(try again.ctl(["resume", "--pool", "io"]).status == 0)
        #expect(try eventually { try SchedulingTests.job(5, again).state == .done })
        let runs = try DurabilityTests.runs(in: folder.executionLog)
        #expect((1...5).allSatisfy { runs[UInt64($0)] == 1 }, "\(runs)")
    }

    @Test("wait --all over 100,000 jobs of two pools accounts for every one when the client falls behind")
    func waitForMany() throws {
        let daemon = try TestDaemon(["--workers", "2", "--ephemeral", "--max-queue", "1000000", "--pool", "io=tasks:2"])
        #expect(try daemon.ctl(["pause"]).status == 0 && daemon.ctl(["pause", "--pool", "io"]).status == 0)
        #expect(try daemon.ctl(["submit", "--jobs", "50000", "--kind", "cpu", "--scale", "0"]).status == 0)
        #expect(try daemon.ctl(["submit", "--pool", "io", "--jobs", "50000", "--kind", "cpu", "--scale", "0"]).status == 0)
        let waiter = try daemon.startCtl(["wait", "--all", "--timeout", "120"])
        Thread.sleep(forTimeInterval: 0.5)
        // The client stops reading while every job ends: far more than a watch may hold.
        waiter.signal(SIGSTOP)
        #expect(try daemon.ctl(["resume"]).status == 0 && daemon.ctl(["resume", "--pool", "io"]).status == 0)
        #expect(try eventually { try NamedPoolsTests.pools(daemon).reduce(0) { $0 + $1.totals.done } == 100_000 })
        waiter.signal(SIGCONT)
        let waited = try #require(waiter.finish(timeout: 120))
        #expect(waited.status == 0, "\(waited.status): \(waiter.output().stderr.suffix(500))")
        #expect(
            waited.output.hasSuffix("100000 jobs ended: 100000 done, 0 failed, 0 cancelled\n"), "\(waited.output.suffix(300))")
        #expect(waited.output.contains("more jobs ended while this client was too far behind"), "\(waited.output.suffix(300))")
        #expect(!daemon.log().contains("dropping a watcher"), "\(daemon.log().suffix(500))")
    }

    @Test("wrong pools are refused with what to do: the flag, the name's form, an unknown pool, ids with a pool")
    func wrongValues() throws {
        let bad = try runCommand(
            Binaries.concurd, ["--ephemeral", "--socket", "/tmp/concur-unused.sock", "--pool", "io=fibers:2"])
        #expect(bad.status == 2 && bad.stderr.contains("--pool io: the model must be one of"), "\(bad)")
        let daemon = try TestDaemon(["--ephemeral", "--pool", "io=threads:1"])
        let form = try daemon.ctl(["submit", "--pool", "Bad Name", "sleep:1"])
        #expect(form.status == 64 && form.stderr.contains("is not a pool name"), "\(form)")
        for command in [
            ["resize", "--workers", "2"], ["model", "tasks"], ["pause"], ["resume"], ["cancel", "--queued"], ["stats"],
        ] {
            let result = try daemon.ctl(command + ["--pool", "nope"])
            #expect(
                result.status == 1 && result.stderr.contains("no pool named nope; its pools: default, io"),
                "\(command): \(result)")
        }
        let ids = try daemon.ctl(["cancel", "1", "--pool", "io"])
        #expect(ids.status == 64 && ids.stderr.contains("--pool goes with --queued"), "\(ids)")
        // The same over Varlink, from a client that is not concurctl.
        let connection = try VarlinkConnection(unixPath: daemon.socket, receiveTimeout: 10)
        for (method, parameters, expected) in [
            ("Submit", ["jobs": JSON.array([["kind": "sleep", "ms": 1]]), "pool": 5] as JSONObject, "InvalidParameter"),
            ("Status", ["pool": "a b"], "InvalidValue"), ("Resize", ["workers": 2, "pool": "gone"], "UnknownPool"),
            ("Cancel", ["ids": [1], "pool": "io"], "InvalidValue"), ("ListJobs", ["pool": ""], "InvalidValue"),
        ] {
            do {
                _ = try connection.call("io.concur.Supervisor.\(method)", parameters)
                Issue.record("\(method) \(parameters) was accepted")
            } catch {
                #expect("\(error)".contains(expected), "\(method): \(error)")
            }
        }
    }
}
