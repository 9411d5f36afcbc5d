import ConcurProtocol
import ConcurTestSupport
import Foundation
import Testing
import Varlink

/// The real concurd driven by the real concurctl over a temporary socket.
@Suite("concurd and concurctl end to end", .serialized)
struct ControlSocketTests {
    @Test("submit --wait runs the primes preset and reports each job")
    func submitAndWait() throws {
        let daemon = try TestDaemon(["--workers", "2"])
        let result = try daemon.ctl(["submit", "primes", "--wait"])
        #expect(result.status == 0, "\(result)")
        #expect(result.lines.first == "submitted 20 jobs: ids 1-20")
        let jobLines = result.lines.filter { $0.hasPrefix("job ") }
        #expect(jobLines.count == 20)
        #expect(jobLines.filter { $0.hasSuffix(": prime") }.count == 9)
        #expect(result.lines.last?.contains("20 jobs finished") == true)
        let status = try daemon.status()
        #expect(status.totals == JobTotals(submitted: 20, done: 20, failed: 0, cancelled: 0, retried: 0))
        #expect(status.queued == 0 && status.running == 0)
    }

    @Test("submit --wait --json prints the ids, then one job per line; a failed job makes it exit 1")
    func submitJSON() throws {
        let daemon = try TestDaemon(["--workers", "2"])
        let result = try daemon.ctl(["submit", "prime:97", "fail", "--wait", "--json"])
        #expect(result.status == 1)
        let objects = try result.lines.map { try JSON.parse($0) }
        #expect(objects.count == 3)
        guard case .object(let first) = objects[0] else { throw TestFailure("not an object") }
        #expect(first["ids"] == [1, 2])
        let states = try objects.dropFirst().map { object -> JobState in
            guard case .object(let fields) = object else { throw TestFailure("not an object") }
            return try JobInfo(json: fields["job"] ?? .null, path: "job").state
        }
        #expect(Set(states) == [.done, .failed])
    }

    @Test("generated jobs are the same for the same seed")
    func seededGeneration() throws {
        let daemon = try TestDaemon(["--workers", "2"])
        let first = try daemon.ctlJSON(["submit", "--jobs", "5", "--seed", "7", "--kind", "mixed", "--scale", "0.01"])
        #expect(first["seed"] == 7 && first["first"] == 1 && first["last"] == 5)
        _ = try daemon.ctlJSON(["submit", "--jobs", "5", "--seed", "7", "--kind", "mixed", "--scale", "0.01"])
        let jobs = try [JobInfo](
            json: daemon.ctlJSON(["jobs", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"])["jobs"] ?? .null, path: "jobs")
        #expect(jobs.prefix(5).map(\.kind) == jobs.suffix(5).map(\.kind))
        let human = try daemon.ctl(["submit", "--jobs", "2", "--scale", "0"])
        #expect(human.stdout.hasPrefix("submitted 2 jobs: ids 11-12 (seed "))
    }

    @Test("resize up and down while jobs run loses no job and ends at the target")
    func resizeUnderLoad() throws {
        let daemon = try TestDaemon(["--workers", "2"])
        let waiter = try daemon.startCtl(["submit", "--jobs", "60", "--kind", "sleep", "--scale", "0.5", "--wait", "--json"])
        #expect(try eventually { try daemon.status().running > 0 })
        for workers in [8, 1, 5, 3] {
            let result = try daemon.ctl(["resize", "--workers", "\(workers)"])
            #expect(result.status == 0 && result.stdout.hasSuffix("-> \(workers)\n"), "\(result)")
            usleep(100_000)
        }
        let finished = try #require(waiter.finish())
        #expect(finished.status == 0, "\(finished.output)")
        #expect(finished.output.split(separator: "\n").count == 61)
        #expect(try eventually { try daemon.status().workers == WorkerCounts(target: 3, live: 3, busy: 0, idle: 3, retiring: 0) })
        let stats = try PoolStats(json: .object(daemon.ctlJSON(["stats"])), path: "stats")
        #expect(stats.status.totals == JobTotals(submitted: 60, done: 60, failed: 0, cancelled: 0, retried: 0))
        #expect(stats.resizes == 4)
        #expect(stats.workers.count == 3)
        #expect(stats.latency.run.count == 60)
        #expect(stats.latency.run.p50 >= 0.02 && stats.latency.run.p50 < 1)
        #expect(stats.process.rssBytes > 1_000_000 && stats.process.threads >= 4)
    }

    @Test("shrinking retires idle workers at once and busy ones after their job")
    func shrinkSemantics() throws {
        let gate = Gate()
        let daemon = try TestDaemon(["--workers", "4", "--allow-exec"])
        _ = try daemon.ctl(gate.job)
        _ = try daemon.ctl(gate.job)
        #expect(try eventually { try daemon.status().running == 2 })
        _ = try daemon.ctl(["resize", "--workers", "1"])
        let during = try daemon.status()
        #expect(during.workers.target == 1)
        #expect(during.running == 2)
        #expect(try eventually(5) { try daemon.status().workers.live == 2 })
        gate.open()
        #expect(try eventually { try daemon.status().workers.live == 1 })
        #expect(try daemon.status().totals.done == 2)
    }

    @Test("status, stats and jobs read well for people")
    func humanOutput() throws {
        let daemon = try TestDaemon(["--workers", "3", "--max-queue", "500"])
        _ = try daemon.ctl(["submit", "prime:97", "--wait"])
        let status = try daemon.ctl(["status"])
        #expect(status.status == 0)
        #expect(status.lines.contains("model     threads"))
        #expect(status.lines.contains("workers   3 live (0 busy, 3 idle, 0 retiring), target 3"))
        #expect(status.lines.contains("queue     0 queued, 0 running (limit 500)"))
        let stats = try daemon.ctl(["stats"])
        #expect(stats.lines.contains { $0.hasPrefix("  run") })
        #expect(stats.lines.filter { $0.contains("threads") && ($0.contains("idle") || $0.contains("busy")) }.count == 3)
        let jobs = try daemon.ctl(["jobs"])
        #expect(jobs.lines.count == 2 && jobs.lines[1].contains("prime(97)") && jobs.lines[1].hasSuffix("prime"))
    }

    @Test("concurctl model switches the running pool; status and stats show it; workers run below the control plane")
    func modelSwitch() throws {
        let gate = Gate()
        let daemon = try TestDaemon(["--workers", "3", "--allow-exec"])
        let workerThreads = ProcEntry.threads(of: daemon.pid, named: "concur-worker-")
        #expect(workerThreads.count == 3)
        #expect(workerThreads.allSatisfy { ProcEntry.nice(daemon.pid, thread: $0) == 10 })
        #expect(ProcEntry.threads(of: daemon.pid, named: "NIO-ELT").allSatisfy { ProcEntry.nice(daemon.pid, thread: $0) == 0 })
        _ = try daemon.ctl(gate.job)
        #expect(try eventually { try daemon.status().running == 1 })
        let switched = try daemon.ctl(["model", "tasks", "--preempt"])
        #expect(switched.status == 0 && switched.stdout.hasPrefix("model: threads -> tasks (serving after "), "\(switched)")
        #expect(try daemon.ctl(["model", "tasks"]).stdout == "model: already tasks\n")
        // The preempted command stops within the runner's 50 ms between looks: until then the
        // line also names the old worker finishing.
        #expect(try eventually { try daemon.ctl(["status"]).lines.contains("model     tasks, 1 switch since start") })
        gate.open()
        #expect(try eventually { try daemon.status().totals.done == 1 })
        let stats = try daemon.ctl(["stats"])
        #expect(stats.lines.contains { $0.hasPrefix("switch    threads -> tasks (preempting): serving after ") }, "\(stats)")
        #expect(eventually { ProcEntry.threads(of: daemon.pid, named: "concur-worker-").isEmpty })
        // The preempted job ran again, on a task.
        let job = try daemon.job(1)
        #expect(job.state == .done && job.model == .tasks && job.attempts == 2, "\(job)")
    }

    @Test("command-line conventions: options before the subcommand, --quiet, one error style, did you mean, exit statuses")
    func conventions() throws {
        let daemon = try TestDaemon(["--workers", "1"])
        func ctl(_ arguments: [String]) throws -> CommandResult { try runCommand(Binaries.concurctl, arguments) }
        let before = try ctl(["--socket", daemon.socket, "status"])
        #expect(before.status == 0 && before.stdout.contains("model     threads"), "\(before)")
        let json = try ctl(["--json", "--socket=\(daemon.socket)", "status"])
        #expect(json.status == 0 && json.stdout.hasPrefix(#"{"status":"#), "\(json)")
        let quiet = try ctl(["-q", "--socket", daemon.socket, "submit", "--wait", "sleep:1"])
        #expect(quiet.status == 0 && quiet.stdout.isEmpty && quiet.stderr.isEmpty, "\(quiet)")
        let quietRefusal = try ctl(["jobs", "42", "--quiet", "--socket", daemon.socket])
        #expect(quietRefusal.status == 1 && quietRefusal.stdout.isEmpty, "\(quietRefusal)")
        #expect(quietRefusal.stderr.hasPrefix("concurctl: no job 42"), "\(quietRefusal)")
        let both = try ctl(["status", "--json", "-q", "--socket", daemon.socket])
        #expect(both.status == 64 && both.stderr.hasPrefix("concurctl: give --json or --quiet, not both"), "\(both)")
        // Parse errors read as every other error, with the usage after them.
        let typo = try ctl(["stauts", "--socket", daemon.socket])
        #expect(
            typo.status == 64 && typo.stderr.hasPrefix("concurctl: unknown command 'stauts'; did you mean 'status'?"), "\(typo)")
        let option = try ctl(["status", "--bogus"])
        #expect(option.status == 64 && option.stderr.hasPrefix("concurctl: unknown option '--bogus'"), "\(option)")
        #expect(!option.stderr.contains("Error:"), "\(option)")
        // top has no --json to offer (stats --follow --json streams JSON).
        let top = try ctl(["top", "--json"])
        #expect(top.status == 64 && top.stderr.contains("unknown option '--json'"), "\(top)")
        #expect(!(try ctl(["top", "--help"])).stdout.contains("--json"))
        // A default is said once in help: no option's text says it and has the parser say it again.
        let helps =
            try ["submit", "wait", "cancel", "resize", "stats", "top", "jobs", "logs"].map { try ctl([$0, "--help"]).stdout }
            + ["serve", "compare"].map { try runCommand(Binaries.concurd, [$0, "--help"]).stdout }
        for help in helps {
            let options = help.components(separatedBy: "\n  -").map {
                $0.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            }
            for option in options.dropFirst() where option.contains("(default ") && option.contains("(default: ") {
                Issue.record("a default said twice: \(option)")
            }
        }
        // concurd: a wrong option is a wrong configuration value (2), in the same style.
        let model = try runCommand(Binaries.concurd, ["--model", "fibers", "--socket", daemon.socket + ".other"])
        #expect(model.status == 2 && model.stderr.hasPrefix("concurd: the value 'fibers' is invalid"), "\(model)")
        // Ids as lists and ranges.
        #expect(try daemon.ctl(["submit", "sleep:1", "sleep:1", "sleep:1"]).status == 0)
        let ranged = try daemon.ctl(["wait", "1-2,3", "4", "--timeout", "20"])
        #expect(ranged.status == 0 && ranged.stdout.contains("4 jobs ended: 4 done"), "\(ranged)")
        let listed = try daemon.ctlJSON(["jobs", "2-4"])
        #expect((try [JobInfo](json: listed["jobs"] ?? .null, path: "jobs")).map(\.id) == [2, 3, 4])
        let pooled = try daemon.ctl(["wait", "--all", "--pool", "default"])
        #expect(pooled.status == 0, "\(pooled)")
        let idsInPool = try daemon.ctl(["wait", "1", "--pool", "default"])
        #expect(idsInPool.status == 64 && idsInPool.stderr.contains("--pool goes with --all"), "\(idsInPool)")
        let reversed = try daemon.ctl(["cancel", "4-2"])
        #expect(reversed.status == 64 && reversed.stderr.contains("'4-2' is invalid for '<ids>'"), "\(reversed)")
        let help = try runCommand(Binaries.concurctl, ["--help"])
        #expect(help.status == 0 && help.stdout.contains("SUBCOMMANDS"), "\(help)")
    }

    @Test("a socket passed by the service manager named varlink is served, as one named control is")
    func activatedVarlinkSocket() throws {
        let folder = NSTemporaryDirectory() + "concur-activate-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let socket = folder + "/varlink.sock"
        // systemd-socket-activate listens, then execs concurd in its place with LISTEN_FDNAMES=varlink.
        let activator = try ChildProcess(
            "/usr/bin/systemd-socket-activate",
            ["-l", socket, "--fdname=varlink", Binaries.concurd.path, "--ephemeral", "--socket", folder + "/unused.sock"],
            environment: ["SWIFT_BACKTRACE": "enable=no", "PATH": "/usr/bin:/bin"])
        defer {
            activator.signal(SIGKILL)
            _ = activator.wait(timeout: 10)
        }
        #expect(eventually(10) { FileManager.default.fileExists(atPath: socket) })
        let status = try runCommand(Binaries.concurctl, ["status", "--socket", socket])
        #expect(status.status == 0 && status.stdout.contains("serving"), "\(status)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/unused.sock"), "it bound a socket of its own")
        let info = try runCommand(
            URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-m", "varlink.cli", "info", "unix:\(socket)"])
        #expect(info.status == 0 && info.stdout.contains("Vendor: concur") && info.stdout.contains("man:concurd(8)"), "\(info)")
        activator.signal(SIGTERM)
        #expect(activator.wait(timeout: 20) == 0)
    }

    @Test("every refusal is one line with a hint and a distinct exit status")
    func errorPaths() throws {
        let daemon = try TestDaemon(["--workers", "1", "--max-queue", "2"])
        let cases: [([String], Int32, String)] = [
            // Refused by concurd (1), unlike what concurctl itself finds wrong (64).
            (["resize", "--workers", "300"], 1, "workers must be between 1 and 256"),
            (["jobs", "42"], 1, "no job 42"),
            (["submit", "prime:x"], 64, "expected prime:N"),
            (["submit", "--jobs", "3", "--kind", "quantum"], 64, "quantum"),
            (["submit", "--jobs", "5"], 1, "the queue has no room for these jobs (0 of its 2 places taken): submit fewer"),
            (["model", "fibers"], 64, "fibers"),
        ]
        for (arguments, status, message) in cases {
            let result = try daemon.ctl(arguments)
            #expect(result.status == status, "\(arguments): \(result)")
            #expect(result.stderr.contains(message), "\(arguments): \(result)")
            #expect(result.stdout.isEmpty, "\(arguments): \(result)")
        }
    }

    @Test("concurctl says how to start concurd when nothing listens")
    func daemonNotRunning() throws {
        try Binaries.check()
        let missing = try runCommand(Binaries.concurctl, ["status", "--socket", "/tmp/concur-e2e-missing/control.sock"])
        #expect(missing.status == 69)
        #expect(missing.stderr.contains("is concurd running?") && missing.stderr.contains("/tmp/concur-e2e-missing/control.sock"))
        let fromEnvironment = try runCommand(
            Binaries.concurctl, ["status"], environment: ["CONCUR_SOCKET": "/tmp/concur-e2e-env/x.sock", "PATH": "/usr/bin"])
        #expect(fromEnvironment.stderr.contains("/tmp/concur-e2e-env/x.sock"))
        let tooLong = try runCommand(Binaries.concurctl, ["status", "--socket", "/tmp/" + String(repeating: "s", count: 120)])
        #expect(tooLong.status == 64 && tooLong.stderr.contains("at most 107 bytes"))
    }

    @Test("the socket is 0600, a second daemon is refused, and a stale socket is replaced")
    func socketFile() throws {
        let daemon = try TestDaemon()
        var info = stat()
        #expect(stat(daemon.socket, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        let second = try runCommand(Binaries.concurd, ["--socket", daemon.socket, "--ephemeral"], timeout: 20)
        #expect(second.status != 0)
        #expect(second.stderr.contains("another concurd is already serving on \(daemon.socket)"))
        #expect(try daemon.ctl(["status"]).status == 0)
        // A daemon killed with SIGKILL leaves its socket; the next one replaces it.
        daemon.signal(SIGKILL)
        _ = daemon.waitForExit()
        let stale = try daemon.ctl(["status"])
        #expect(stale.status == 69 && stale.stderr.contains("nothing listens"))
        let next = try TestDaemon(socket: daemon.socket)
        #expect(try next.ctl(["status"]).status == 0)
    }

    @Test("wrong calls on the wire get typed Varlink errors")
    func wireErrors() throws {
        let daemon = try TestDaemon()
        let connection = try VarlinkConnection(unixPath: daemon.socket, receiveTimeout: 10)
        let cases: [(String, JSONObject, String)] = [
            ("io.concur.Supervisor.Resize", ["workers": "eight"], "org.varlink.service.InvalidParameter"),
            ("io.concur.Supervisor.Resize", ["workers": 8, "force": true], "org.varlink.service.InvalidParameter"),
            ("io.concur.Supervisor.Launch", [:], "org.varlink.service.MethodNotFound"),
            ("io.concur.Nothing.Status", [:], "org.varlink.service.InterfaceNotFound"),
            ("io.concur.Supervisor.WatchJobs", ["ids": [1]], "org.varlink.service.ExpectedMore"),
            ("io.concur.Supervisor.Submit", ["jobs": [["kind": "sleep", "ms": -1]]], "io.concur.Supervisor.InvalidValue"),
        ]
        for (method, parameters, errorName) in cases {
            #expect {
                try connection.call(method, parameters)
            } throws: { error in
                guard case .remote(let remote) = error as? VarlinkClientError else { return false }
                return remote.name == errorName
            }
        }
        // Garbage gets an error reply that says why, then the connection closes; the daemon
        // carries on. So does JSON nested past the parser's limit.
        for garbage in [Array("{not json".utf8), Array(String(repeating: "[", count: 5_000).utf8)] {
            let probe = try VarlinkConnection(unixPath: daemon.socket, receiveTimeout: 10)
            try probe.writeAll(garbage + [0])
            let reply = try probe.receive()
            #expect(reply.varlinkError?.name == "io.concur.Supervisor.InvalidMessage", "\(reply)")
            guard case .string(let reason)? = reply.varlinkError?.parameters["reason"] else {
                Issue.record("no reason in \(reply)")
                continue
            }
            #expect(reason.contains("JSON") || reason.contains("nest"), "\(reason)")
            #expect(throws: VarlinkClientError.closedByPeer) { try probe.receive() }
        }
        // A message over the size limit too, before it has even ended.
        let large = try VarlinkConnection(unixPath: daemon.socket, receiveTimeout: 10)
        try large.writeAll(Array(repeating: UInt8(ascii: " "), count: (1 << 20) + 4096))
        #expect(try large.receive().varlinkError?.name == "io.concur.Supervisor.InvalidMessage")
        #expect(try daemon.ctl(["status"]).status == 0)
    }

    @Test("the shipped unit passes systemd-analyze verify")
    func unitFile() throws {
        try Binaries.check()
        let source = Binaries.clients.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("systemd/concurd.service")
        let unit = try String(contentsOf: source, encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/concurctl", with: Binaries.concurctl.path)
            .replacingOccurrences(of: "/usr/local/bin/concurd", with: Binaries.concurd.path)
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "concur-unit-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let copy = directory.appendingPathComponent("concurd.service")
        try unit.write(to: copy, atomically: true, encoding: .utf8)
        let socket = directory.appendingPathComponent("concurd.socket")
        try String(contentsOf: source.deletingLastPathComponent().appendingPathComponent("concurd.socket"), encoding: .utf8)
            .write(to: socket, atomically: true, encoding: .utf8)
        // verify also looks up the pages Documentation= names: the ones scripts/install installs.
        let manuals = directory.appendingPathComponent("man")
        for section in ["man1", "man5", "man8"] {
            try FileManager.default.createDirectory(
                at: manuals.appendingPathComponent(section), withIntermediateDirectories: true)
        }
        let pages = Binaries.packageRoot.appendingPathComponent("docs/man")
        try FileManager.default.copyItem(
            at: pages.appendingPathComponent("concurd.8"), to: manuals.appendingPathComponent("man8/concurd.8"))
        try FileManager.default.copyItem(
            at: pages.appendingPathComponent("concurctl.1"), to: manuals.appendingPathComponent("man1/concurctl.1"))
        let configPage = try runCommand(Binaries.concurd, ["__config-manual"])
        try configPage.stdout.write(to: manuals.appendingPathComponent("man5/concurd.toml.5"), atomically: true, encoding: .utf8)
        let result = try runCommand(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["MANPATH=\(manuals.path)", "/usr/bin/systemd-analyze", "verify", copy.path, socket.path])
        #expect(result.status == 0 && result.stderr.isEmpty, "\(result)")
        #expect(unit.contains("Type=notify") && unit.contains("KillMode=mixed"))
    }

    @Test("the independent Python Varlink client reads the interface, calls and streams")
    func pythonClient() throws {
        let daemon = try TestDaemon(["--workers", "2"])
        let python = URL(fileURLWithPath: "/usr/bin/env")
        let info = try runCommand(python, ["python3", "-m", "varlink.cli", "info", "unix:\(daemon.socket)"])
        #expect(info.status == 0, "\(info) (is the Python package 'varlink' installed? pip install varlink)")
        #expect(info.stdout.contains("io.concur.Supervisor") && info.stdout.contains("concurd"))
        let help = try runCommand(python, ["python3", "-m", "varlink.cli", "help", "unix:\(daemon.socket)/io.concur.Supervisor"])
        #expect(help.status == 0, "\(help)")
        #expect(help.stdout.contains("method Generate("))
        let call = try runCommand(
            python, ["python3", "-m", "varlink.cli", "call", "unix:\(daemon.socket)/io.concur.Supervisor.Status", "{}"])
        #expect(call.status == 0, "\(call)")
        #expect(call.stdout.contains("\"model\": \"threads\""))

        try Self.conformance(of: "varlink_client.py", with: daemon)
    }

    @Test("a second independent client, asyncvarlink, passes the same steps")
    func asyncvarlinkClient() throws {
        let daemon = try TestDaemon(["--workers", "2"])
        try Self.conformance(of: "asyncvarlink_client.py", with: daemon)
    }

    /// Runs one of the Python clients' scripted steps against a fresh `daemon` and checks what
    /// it printed: the interfaces, the methods its definition declares, a streamed submit, a
    /// switch, three WatchStats frames, a typed error, a cancel and the JobFinished after it.
    static func conformance(of client: String, with daemon: TestDaemon) throws {
        let python = URL(fileURLWithPath: "/usr/bin/env")
        let script = Binaries.clients.appendingPathComponent(client).path
        let run = try runCommand(python, ["python3", script, daemon.socket])
        #expect(run.status == 0, "\(run)")
        var steps: [String: JSONObject] = [:]
        for line in run.lines {
            guard case .object(let object) = try JSON.parse(line), case .string(let step) = object["step"] else { continue }
            steps[step] = object
        }
        #expect(steps["interfaces"]?["value"] == ["org.varlink.service", "io.concur.Supervisor"])
        #expect(
            steps["parsed"]?["methods"] == [
                "Cancel", "ClusterStatus", "Generate", "ListJobs", "Logs", "Pause", "Reload", "Resize", "Resume", "SetModel",
                "Shutdown", "Stats",
                "Status", "Submit", "WatchJobs", "WatchStats",
            ])
        guard case .array(let frames) = steps["watchstats"]?["frames"] else { throw TestFailure("no WatchStats step: \(run)") }
        #expect(frames.count == 3)
        guard case .object(let first) = steps["submit"]?["first"], case .array(let jobs) = steps["submit"]?["jobs"] else {
            throw TestFailure("no submit step: \(run)")
        }
        #expect(first["ids"] == [1, 2])
        guard case .object(let switched) = steps["switch"]?["value"], case .object(let status) = steps["switch"]?["status"] else {
            throw TestFailure("no switch step: \(run)")
        }
        #expect(switched["model"] == "tasks" && switched["changed"] == true && switched["previous"] == "threads")
        #expect(status["model"] == "tasks" && status["switches"] == 1)
        #expect(jobs.count == 2)
        #expect(steps["error"]?["name"] == "io.concur.Supervisor.InvalidWorkers")
        guard case .object(let cancelled) = steps["cancel"]?["value"], case .object(let ended) = steps["cancel"]?["job"],
            case .object(let again) = steps["cancel"]?["again"]
        else { throw TestFailure("no cancel step: \(run)") }
        #expect(cancelled["stopping"] == [3] && cancelled["cancelled"] == [])
        #expect(ended["state"] == "cancelled" && ended["error"] == .string("cancelled by uid \(getuid())"))
        #expect(again["name"] == "io.concur.Supervisor.JobFinished" && again["parameters"] == ["id": 3, "state": "cancelled"])
    }

    @Test(
        "callers other than root and the daemon's user get PermissionDenied, and the refusal is logged",
        .enabled(if: getuid() == 0, "needs root, to run a client as another user (CI runs as root)"))
    func peerCredentials() throws {
        let daemon = try TestDaemon()
        // Open the file modes so that only the credential check stands in the way.
        chmod(daemon.directory.path, 0o755)
        chmod(URL(fileURLWithPath: daemon.socket).deletingLastPathComponent().path, 0o755)
        chmod(daemon.socket, 0o666)
        let result = try runCommand(
            URL(fileURLWithPath: "/usr/bin/setpriv"),
            ["--reuid=65534", "--regid=65534", "--clear-groups", Binaries.concurctl.path, "status", "--socket", daemon.socket])
        #expect(result.status == 77, "\(result)")
        #expect(result.stderr.contains("concurd refused the call"))
        #expect(eventually(5) { daemon.log().contains("refused a call from a peer that is not allowed") })
        #expect(daemon.log().contains("uid 65534"))
        #expect(try daemon.ctl(["status"]).status == 0)
    }
}
