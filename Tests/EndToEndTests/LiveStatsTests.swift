import ConcurProtocol
import ConcurTestSupport
import Foundation
import Testing
import Varlink

/// Live statistics on the real daemon: WatchStats frames, a watcher that stops reading,
/// `stats --follow`, `stats --format prometheus`, and `top` as a person sees it in tmux.
@Suite("Live statistics end to end", .serialized)
struct LiveStatsTests {
    @Test("WatchStats sends a frame per interval with consistent counters while jobs run")
    func watchStatsFrames() throws {
        let daemon = try TestDaemon(["--workers", "3"])
        // About 3 s of work: it still runs when the last frame comes.
        _ = try daemon.ctl(["submit", "--jobs", "900", "--kind", "sleep", "--scale", "0.1"])
        let connection = try VarlinkConnection(unixPath: daemon.socket, receiveTimeout: 10)
        var frames: [(received: Double, stats: PoolStats)] = []
        let start = Date()
        try connection.stream(SupervisorInterface.method(.watchStats), ["interval": 0.1]) { reply throws(VarlinkClientError) in
            do throws(VarlinkError) {
                frames.append((Date().timeIntervalSince(start), try PoolStats(json: .object(reply), path: "")))
            } catch {
                throw .remote(error)
            }
            return frames.count < 12
        }
        #expect(frames.count == 12)
        // 11 intervals of 0.1 s by the daemon's clock, give or take a scheduling hiccup.
        let span = frames.last!.stats.status.uptimeSeconds - frames.first!.stats.status.uptimeSeconds
        #expect(span > 0.9 && span < 2.5, "frames spanned \(span) s")
        for (earlier, later) in zip(frames, frames.dropFirst()) {
            let before = earlier.stats.status.totals
            let after = later.stats.status.totals
            #expect(after.done >= before.done && after.failed >= before.failed && after.submitted >= before.submitted)
            #expect(later.stats.status.uptimeSeconds > earlier.stats.status.uptimeSeconds)
        }
        for (_, stats) in frames {
            let workers = stats.status.workers
            #expect(workers.busy <= workers.live && workers.live <= 3)
            #expect(stats.workers.count == workers.live)
            #expect(stats.recentLatency.run.count <= stats.latency.run.count)
        }
        #expect(frames.last!.stats.status.totals.done > frames.first!.stats.status.totals.done)
    }

    @Test("a watcher that stops reading slows nothing and is disconnected after the watcher timeout")
    func slowWatcher() throws {
        // Ephemeral: the pool's pace, not the journal's, is what a stuck watcher must not slow.
        let daemon = try TestDaemon(["--workers", "2", "--watcher-timeout", "2", "--max-queue", "1000000", "--ephemeral"])
        func runNoOps() throws {
            let before = try daemon.status().totals.done
            let submitted = try daemon.ctl(["submit", "--jobs", "100000", "--scale", "0"])
            try #require(submitted.status == 0, "\(submitted)")
            // Generous: the workers run at nice 10, so a busy machine starves them first.
            #expect(try eventually(180) { try daemon.status().totals.done >= before + 100_000 })
        }
        // A client with a tiny receive buffer asks for 20 frames a second and reads none.
        let stuck = try RawClient(path: daemon.socket, receiveBuffer: 4096)
        try stuck.send(#"{"method":"io.concur.Supervisor.WatchStats","parameters":{"interval":0.05},"more":true}"#)
        // The jobs all run while it reads nothing. How fast, next to a run without it, is a
        // figure of bench/run (its hostile-clients section), not a timed bound here: the
        // ratio went past 3x on a loaded CI machine with nothing wrong.
        try runNoOps()
        // Meanwhile others are served.
        #expect(try daemon.status().phase == .serving)
        #expect(eventually(30) { daemon.log().contains("disconnecting a client that has left its replies unread") })
        // What it had buffered, then the end of the connection.
        #expect(stuck.readUntilClosed(timeout: 10), "the stuck watcher was not disconnected")
    }

    @Test("stats --follow prints a header and a line per interval; --json lines parse; it ends when concurd stops")
    func follow() throws {
        let daemon = try TestDaemon(["--workers", "2"])
        _ = try daemon.ctl(["submit", "--jobs", "100", "--kind", "sleep", "--scale", "0.1"])
        let text = try daemon.startCtl(["stats", "--follow", "--interval", "100ms"])
        let json = try daemon.startCtl(["stats", "-f", "--json", "--interval", "0.1"])
        Thread.sleep(forTimeInterval: 1.2)
        daemon.signal(SIGTERM)
        let textEnd = try #require(text.finish(timeout: 30))
        let jsonEnd = try #require(json.finish(timeout: 30))
        #expect(textEnd.status == 0 && jsonEnd.status == 0)
        let lines = textEnd.output.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("time     model") == true)
        #expect(lines.count >= 6, "\(lines)")
        #expect(lines.dropFirst().first?.contains("threads") == true)
        #expect(lines.last?.hasPrefix("-- concurd is stopping") == true, "\(lines)")
        let objects = try jsonEnd.output.split(separator: "\n").map { line -> JSONObject in
            guard case .object(let object) = try JSON.parse(String(line)) else { throw TestFailure("not an object: \(line)") }
            return object
        }
        #expect(objects.count >= 6)
        let frames = try objects.dropLast().map { try PoolStats(json: .object($0), path: "") }
        #expect(zip(frames, frames.dropFirst()).allSatisfy { $1.status.totals.done >= $0.status.totals.done })
        #expect(objects.last?["end"] != nil)
    }

    @Test("stats --format prometheus passes promtool; workers are series by place, as many after switches and deaths")
    func prometheus() throws {
        let daemon = try TestDaemon(["--workers", "2", "--pool", "io=tasks:3"])
        _ = try daemon.ctl(["submit", "primes", "--wait"])
        _ = try daemon.ctl(["submit", "--pool", "io", "--jobs", "5", "--scale", "0", "--wait"])
        let result = try daemon.ctl(["stats", "--format", "prometheus"])
        #expect(result.status == 0, "\(result)")
        var samples: [String: Double] = [:]
        for line in result.lines where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            try #require(parts.count == 2, "not a sample line: \(line)")
            samples[String(parts[0])] = Double(parts[1])
        }
        #expect(samples[#"concur_jobs_finished_total{pool="default",outcome="done"}"#] == 20)
        #expect(samples[#"concur_jobs_finished_total{pool="io",outcome="done"}"#] == 5)
        #expect(samples[#"concur_model{pool="default",model="threads"}"#] == 1)
        #expect(samples[#"concur_model{pool="io",model="tasks"}"#] == 1)
        #expect(samples[#"concur_workers_target{pool="default"}"#] == 2 && samples[#"concur_workers_target{pool="io"}"#] == 3)
        let runTime = #"concur_job_run_seconds{pool="default",window="10s",quantile="0.99"}"#
        #expect(samples.keys.contains { $0.hasPrefix(runTime) })
        #expect(samples[#"concur_job_run_seconds_count{pool="default",window="all"}"#] == 20)
        #expect(samples.keys.filter { $0.hasPrefix("concur_process_threads") } == ["concur_process_threads"])
        #expect(result.lines.contains("# TYPE concur_jobs_finished_total counter"))
        try Self.promtool(result.stdout)

        // Switches and a resize replace every worker; the series stay one per place.
        _ = try daemon.ctl(["model", "tasks"])
        _ = try daemon.ctl(["model", "processes"])
        _ = try daemon.ctl(["resize", "--workers", "3"])
        _ = try daemon.ctl(["submit", "--jobs", "30", "--scale", "0", "--wait"])
        let again = try daemon.ctl(["stats", "--format", "prometheus"])
        try Self.promtool(again.stdout)
        let busy = again.lines.filter { $0.hasPrefix(#"concur_worker_busy_ratio{pool="default","#) }
        #expect(busy.count == 3, "\(busy)")
        #expect((1...3).allSatisfy { slot in busy.contains { $0.contains(#"slot="\#(slot)""#) } }, "\(busy)")
        // The families come in the same order from scrape to scrape (the processes model adds
        // its children's memory, at the end).
        let families = { (text: String) in text.split(separator: "\n").filter { $0.hasPrefix("# TYPE") } }
        let first = families(result.stdout)
        #expect(first == families(again.stdout).filter(first.contains))
        #expect(families(again.stdout).last == "# TYPE concur_worker_resident_memory_bytes gauge")
    }

    /// Checks exposition text with Prometheus's own `promtool check metrics`: the one in PATH,
    /// or the one scripts/install-deps fetched from Debian's `prometheus` package into
    /// .test-tools/ (without installing it, which would start a Prometheus server).
    static func promtool(_ text: String) throws {
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("concur-metrics-\(UUID().uuidString)").path
        try text.write(toFile: input, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: input) }
        let fetched = Binaries.packageRoot.appendingPathComponent(".test-tools/prometheus/usr/bin/promtool").path
        let tool = FileManager.default.isExecutableFile(atPath: fetched) ? fetched : "promtool"
        let checked = try runCommand(URL(fileURLWithPath: "/bin/sh"), ["-c", #""$1" check metrics < "$0""#, input, tool])
        #expect(checked.status == 0, "promtool: \(checked.stdout)\(checked.stderr)")
    }

    @Test("pause holds jobs in the queue, resume runs them; both show in status and events")
    func pauseAndResume() throws {
        let daemon = try TestDaemon(["--workers", "2"])
        #expect(try daemon.ctl(["pause"]).stdout == "paused: workers take no new jobs\n")
        #expect(try daemon.ctl(["pause"]).stdout == "already paused\n")
        _ = try daemon.ctl(["submit", "--jobs", "10", "--scale", "0"])
        Thread.sleep(forTimeInterval: 0.3)
        var status = try daemon.status()
        #expect(status.paused && status.queued == 10 && status.totals.done == 0)
        #expect(try daemon.ctl(["resume"]).stdout == "resumed\n")
        #expect(try eventually { try daemon.status().totals.done == 10 })
        status = try daemon.status()
        #expect(!status.paused)
        let stats = try PoolStats(json: .object(daemon.ctlJSON(["stats"])), path: "")
        #expect(stats.events.map(\.kind) == [.paused, .resumed])
    }

    @Test("WatchJobs without ids streams the pool's events next to the jobs")
    func watchEvents() throws {
        let daemon = try TestDaemon(["--workers", "2"])
        let connection = try VarlinkConnection(unixPath: daemon.socket, receiveTimeout: 10)
        try connection.send(VarlinkCall(method: SupervisorInterface.method(.watchJobs), parameters: [:], more: true))
        _ = try daemon.ctl(["resize", "--workers", "3"])
        _ = try daemon.ctl(["model", "tasks"])
        _ = try daemon.ctl(["submit", "prime:97"])
        var kinds: [String] = []
        while kinds.count < 4 {
            let reply = try connection.receive()
            if case .object(let event) = reply.parameters["event"], case .string(let kind) = event["kind"] { kinds.append(kind) }
            if reply.parameters["job"] != nil { kinds.append("job") }
        }
        #expect(kinds == ["resized", "switchRequested", "switchServing", "job"])
    }

    @Test("top shows the model and the workers, follows model and resize changes, and q restores the shell")
    func topInTmux() throws {
        let tmux = try Tmux()
        let daemon = try TestDaemon(["--workers", "2"])
        try tmux.type("\(Binaries.concurctl.path) top --socket \(daemon.socket) --interval 200ms")
        #expect(tmux.waitFor { $0.contains("model threads") && $0.contains("ID  MODEL") }, "\(tmux.screen())")
        let screen = tmux.screen()
        #expect(screen.components(separatedBy: "\n").filter { $0.contains(" threads   idle") }.count == 2, "\(screen)")
        _ = try daemon.ctl(["model", "processes"])
        #expect(tmux.waitFor { $0.contains("model processes") && $0.contains(" processes idle") }, "\(tmux.screen())")
        try tmux.keys("+")
        #expect(tmux.waitFor { $0.contains("resized to 3 workers") && $0.contains("target 3") }, "\(tmux.screen())")
        try tmux.keys("p")
        #expect(tmux.waitFor { $0.contains("paused") && $0.contains("p resume") }, "\(tmux.screen())")
        // A smaller terminal: the view is redrawn to fit, the keys still on its last line.
        try tmux.resize(width: 70, height: 14)
        #expect(
            tmux.waitFor { screen in
                let lines = screen.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                // The events gave way; the header, the three workers and the keys remain.
                return lines.count <= 15 && lines.allSatisfy { $0.count <= 70 }
                    && lines.contains { $0.hasPrefix("keys: m ") && $0.hasSuffix("q quit") }
                    && !screen.contains("recent events") && lines.filter { $0.contains(" processes idle") }.count == 3
            }, "\(tmux.screen())")
        try tmux.resize(width: 120, height: 40)
        try tmux.keys("q")
        // The screen is the shell's again: the command line, then a fresh prompt under it.
        #expect(
            tmux.waitFor { screen in
                let lines = screen.split(separator: "\n")
                return !screen.contains("ID  MODEL") && (screen.hasPrefix("$ ") || screen.hasPrefix("# "))
                    && screen.contains("concurctl top --socket") && (lines.last == "$" || lines.last == "#")
            }, "\(tmux.screen())")
        #expect(try daemon.status().workers.target == 3)
        // Ctrl-C ends it just as cleanly.
        try tmux.type("\(Binaries.concurctl.path) top --socket \(daemon.socket)")
        #expect(tmux.waitFor { $0.contains("ID  MODEL") }, "\(tmux.screen())")
        try tmux.control("C-c")
        #expect(
            tmux.waitFor { screen in
                let lines = screen.split(separator: "\n")
                return !screen.contains("ID  MODEL") && (lines.last == "$" || lines.last == "#")
            }, "\(tmux.screen())")
        // A terminal that cannot move its cursor: refused with what to use, nothing drawn.
        try tmux.type("TERM=dumb \(Binaries.concurctl.path) top --socket \(daemon.socket); echo status=$?")
        #expect(
            tmux.waitFor { $0.contains("which TERM=dumb cannot; use `concurctl stats --follow`") && $0.contains("status=64") },
            "\(tmux.screen())")
        #expect(!tmux.screen().contains("ID  MODEL"))
    }

    @Test("top with pools: a row per pool, tab moves the keys to the next pool, and they act on that pool only")
    func topWithPools() throws {
        let tmux = try Tmux()
        let daemon = try TestDaemon(["--workers", "2", "--pool", "io=tasks:3"])
        /// The screen's row of `pool` in the pools table, its cells split on spaces.
        func row(_ screen: String, _ pool: String) -> [String] {
            let line = screen.split(separator: "\n").first { $0.hasPrefix("> \(pool) ") || $0.hasPrefix("  \(pool) ") }
            return line.map { $0.split(separator: " ").map(String.init) } ?? []
        }
        try tmux.type("\(Binaries.concurctl.path) top --socket \(daemon.socket) --interval 200ms")
        #expect(
            tmux.waitFor { screen in
                screen.contains("pool default  model threads")
                    && row(screen, "default").prefix(4) == [">", "default", "threads", "2/2"]
                    && row(screen, "io").prefix(3) == ["io", "tasks", "3/3"] && screen.contains("keys (pool default):")
            }, "\(tmux.screen())")
        try tmux.control("Tab")
        #expect(
            tmux.waitFor { screen in
                screen.contains("pool io  model tasks") && row(screen, "io").first == ">" && screen.contains("keys (pool io):")
            }, "\(tmux.screen())")
        try tmux.keys("+")
        #expect(
            tmux.waitFor { $0.contains("resized to 4 workers") && row($0, "io").prefix(4) == [">", "io", "tasks", "4/4"] },
            "\(tmux.screen())")
        let pools = try NamedPoolsTests.pools(daemon)
        #expect(pools.map { "\($0.pool) \($0.workers.target)" } == ["default 2", "io 4"])
        try tmux.keys("q")
        #expect(tmux.waitFor { !$0.contains("keys (pool") }, "\(tmux.screen())")
    }

    @Test("at 80 x 24, top, stats --follow, stats and jobs fit, as a person sees them in tmux; COLUMNS narrows a pipe")
    func eightyColumns() throws {
        let tmux = try Tmux(width: 80, height: 24)
        let daemon = try TestDaemon(["--workers", "2", "--ephemeral", "--pool", "a-pool-with-a-long-name=tasks:6"])
        _ = try daemon.ctl(["submit", "--jobs", "30", "--kind", "sleep", "--scale", "0.2", "--pool", "a-pool-with-a-long-name"])
        /// Every line of the screen, none wider than the terminal.
        func fits(_ screen: String) -> Bool {
            screen.split(separator: "\n", omittingEmptySubsequences: false).allSatisfy { $0.count <= 80 }
        }
        try tmux.type("\(Binaries.concurctl.path) top --socket \(daemon.socket) --interval 200ms --pool a-pool-with-a-long-name")
        #expect(
            tmux.waitFor { screen in
                fits(screen) && screen.contains("6 tasks on ") && screen.contains("a-pool…")
                    && screen.split(separator: "\n").contains { $0.hasSuffix("q quit") }
            }, "\(tmux.screen())")
        try tmux.keys("q")
        #expect(tmux.waitFor { !$0.contains("q quit") }, "\(tmux.screen())")
        try tmux.type("clear; \(Binaries.concurctl.path) stats --follow --socket \(daemon.socket) --interval 200ms")
        #expect(
            tmux.waitFor { screen in
                fits(screen) && screen.contains("time     pool") && screen.contains("a-pool…")
                    && screen.split(separator: "\n").filter { $0.hasPrefix("1") || $0.hasPrefix("0") || $0.hasPrefix("2") }
                        .count >= 4
            }, "\(tmux.screen())")
        try tmux.control("C-c")
        try tmux.type("clear; \(Binaries.concurctl.path) stats --socket \(daemon.socket) --pool a-pool-with-a-long-name")
        #expect(tmux.waitFor { fits($0) && $0.contains("ID  MODEL") }, "\(tmux.screen())")
        try tmux.type("clear; \(Binaries.concurctl.path) jobs --socket \(daemon.socket) --limit 10")
        #expect(tmux.waitFor { fits($0) && $0.contains("POOL") && $0.contains("a-pool…") }, "\(tmux.screen())")
        // Through a pipe the lines are whole, unless COLUMNS says otherwise.
        var environment = ProcessInfo.processInfo.environment
        environment["COLUMNS"] = nil
        let jobs = ["jobs", "--socket", daemon.socket, "--limit", "10"]
        let whole = try runCommand(Binaries.concurctl, jobs, environment: environment).stdout
        #expect(whole.contains("a-pool-wit…") && whole.split(separator: "\n").contains { $0.count > 80 }, "\(whole)")
        environment["COLUMNS"] = "60"
        let narrow = try runCommand(Binaries.concurctl, jobs, environment: environment).stdout
        #expect(narrow.split(separator: "\n").allSatisfy { $0.count <= 60 }, "\(narrow)")
    }

    @Test("top refuses to run without a terminal, with a hint")
    func topWithoutTerminal() throws {
        let daemon = try TestDaemon(["--workers", "1"])
        let result = try daemon.ctl(["top"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("top needs a terminal; to stream to a pipe or a file use `concurctl stats --follow`"))
    }
}

/// A tmux session of its own (its own server socket), killed when the test ends.
final class Tmux {
    private let socketName = "concur-test-\(UUID().uuidString.prefix(8))"
    private let tmux = URL(fileURLWithPath: "/usr/bin/tmux")

    /// The tmux server's process id, to end it by PID.
    private var serverPID: pid_t = 0

    init(width: Int = 120, height: Int = 40) throws {
        guard FileManager.default.isExecutableFile(atPath: tmux.path) else {
            throw TestFailure("tmux is not installed (apt-get install tmux); .ci/run installs it")
        }
        let result = try runCommand(
            tmux, ["-L", socketName, "-f", "/dev/null", "new-session", "-d", "-x", "\(width)", "-y", "\(height)", "sh"],
            environment: ["PS1": "$ ", "PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "HOME": "/tmp"])
        guard result.status == 0 else { throw TestFailure("tmux did not start: \(result)") }
        let pid = try runCommand(tmux, ["-L", socketName, "display-message", "-p", "#{pid}"])
        serverPID = pid_t(pid.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        guard serverPID > 0 else { throw TestFailure("no tmux server pid: \(pid)") }
    }

    deinit {
        // Ended by its PID: asked first, killed if it is still there.
        kill(serverPID, SIGTERM)
        if !eventually(5, { ProcEntry.hasEnded(serverPID) }) { kill(serverPID, SIGKILL) }
    }

    /// Types `line` and Enter.
    func type(_ line: String) throws {
        _ = try runCommand(tmux, ["-L", socketName, "send-keys", "-t", "0", line, "Enter"])
    }

    /// Sends keys as they are.
    func keys(_ keys: String) throws {
        _ = try runCommand(tmux, ["-L", socketName, "send-keys", "-t", "0", "-l", keys])
    }

    /// Sends a key by its tmux name, such as `C-c`.
    func control(_ key: String) throws {
        _ = try runCommand(tmux, ["-L", socketName, "send-keys", "-t", "0", key])
    }

    /// Resizes the window, as a person resizing the terminal.
    func resize(width: Int, height: Int) throws {
        _ = try runCommand(tmux, ["-L", socketName, "resize-window", "-t", "0", "-x", "\(width)", "-y", "\(height)"])
    }

    /// What the pane shows now.
    func screen() -> String {
        (try? runCommand(tmux, ["-L", socketName, "capture-pane", "-t", "0", "-p"]).stdout) ?? ""
    }

    /// Waits (up to 10 s) until the screen satisfies `condition`.
    func waitFor(_ condition: (String) -> Bool) -> Bool {
        eventually(10) { condition(screen()) }
    }
}

/// A bare Unix socket client, for a peer that misbehaves (here: never reads).
final class RawClient {
    private let fd: Int32

    init(path: String, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw TestFailure("connect: \(errno)") }
    }

    deinit { close(fd) }

    /// Sends bytes as they are (no terminator): a partial message.
    func sendRaw(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard Glibc.send(fd, bytes, bytes.count, 0) == bytes.count else { throw TestFailure("send: \(errno)") }
    }

    /// Sends one message (its NUL terminator added).
    func send(_ message: String) throws {
        let bytes = Array(message.utf8) + [0]
        guard Glibc.send(fd, bytes, bytes.count, 0) == bytes.count else { throw TestFailure("send: \(errno)") }
    }

    /// Shuts the client's side down: the daemon reads the end of its input.
    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// The messages read until the peer closes the connection, or nil if `timeout` seconds pass
    /// first.
    func messagesUntilClosed(timeout: Double) -> [String]? {
        let deadline = Date().addingTimeInterval(timeout)
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 200) > 0 else { continue }
            let count = recv(fd, &buffer, buffer.count, 0)
            if count == 0 || (count < 0 && errno == ECONNRESET) {
                return bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            }
            if count > 0 { bytes += buffer[..<count] }
        }
        return nil
    }

    /// Reads until the peer closes the connection (true) or `timeout` seconds pass (false).
    func readUntilClosed(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 200) > 0 else { continue }
            let count = recv(fd, &buffer, buffer.count, 0)
            if count == 0 || (count < 0 && errno == ECONNRESET) { return true }
        }
        return false
    }
}

/// `concurd compare`, the real binary.
@Suite("concurd compare end to end")
struct CompareTests {
    @Test("runs each model at each pool size, repeated, prints JSON and writes a chart that renders to PNG")
    func compare() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "concur-compare-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let chart = directory.appendingPathComponent("compare.svg").path
        let result = try runCommand(
            Binaries.concurd,
            [
                "compare", "--jobs", "40", "--workers", "2", "--kind", "mixed", "--scale", "0.02", "--repeat", "2", "--json",
                "--plot", chart,
            ],
            environment: ["SWIFT_BACKTRACE": "enable=no", "PATH": "/usr/bin:/bin"])
        #expect(result.status == 0, "\(result)")
        guard case .object(let json) = try JSON.parse(result.stdout), case .array(let runs) = json["runs"],
            case .array(let points) = json["points"]
        else {
            throw TestFailure("not the JSON of compare: \(result.stdout)")
        }
        #expect(runs.count == 12 && points.count == 6)
        for case .object(let run) in runs {
            #expect(run["finished"] == 40)
            #expect(SocketFloodTests.number(run["jobsPerSecond"]) > 0, "\(run)")
        }
        let svg = try String(contentsOfFile: chart, encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains("processes") && svg.components(separatedBy: "<polyline").count == 8)
        // Rendered as a person sees it: a PNG with each model's colour in it.
        let png = directory.appendingPathComponent("compare.png").path
        let render = try runCommand(URL(fileURLWithPath: "/usr/bin/rsvg-convert"), [chart, "-o", png])
        #expect(render.status == 0, "\(render)")
        let pixels = try runCommand(URL(fileURLWithPath: "/usr/bin/python3"), ["-c", Self.countColours, png])
        #expect(pixels.status == 0, "\(pixels)")
        let counts = pixels.stdout.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(counts.count == 4 && counts[0] > 100_000, "white background: \(pixels.stdout)")
        #expect(counts.dropFirst().allSatisfy { $0 > 200 }, "each model's line is drawn: \(pixels.stdout)")

        // The seeds' Python pools on the same jobs: they must reach the same checksums, or the run fails.
        let python = try runCommand(
            Binaries.concurd,
            [
                "compare", "--jobs", "6", "--workers", "2", "--kind", "cpu", "--scale", "0.002", "--repeat", "2", "--python",
                "--models", "threads", "--json",
            ])
        #expect(python.status == 0, "\(python)")
        guard case .object(let both) = try JSON.parse(python.stdout), case .array(let pythonPoints) = both["points"] else {
            throw TestFailure("not the JSON of compare: \(python.stdout)")
        }
        let names = pythonPoints.compactMap { point -> String? in
            guard case .object(let members) = point, case .string(let name)? = members["model"] else { return nil }
            return name
        }
        #expect(Set(names) == ["threads", "python-threads", "python-processes", "python-asyncio"] && names.count == 8)
        let human = try runCommand(
            Binaries.concurd, ["compare", "--jobs", "20", "--workers", "1", "--models", "threads,tasks", "--repeat", "1"])
        #expect(
            human.status == 0 && human.stdout.contains("CPU/wall    jobs/s") && human.stdout.contains("Fastest in this one run:"))
        // A chart that cannot be written is refused before the runs start.
        for (path, reason) in [
            ("/nonexistent/dir/x.svg", "its directory /nonexistent/dir does not exist"), (directory.path + ".svg", ""),
        ] {
            if reason.isEmpty { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
            defer { if reason.isEmpty { try? FileManager.default.removeItem(atPath: path) } }
            let bad = try runCommand(Binaries.concurd, ["compare", "--plot", path, "--jobs", "5", "--models", "threads"])
            #expect(bad.status == 73 && bad.stderr.contains("cannot write the chart to \(path): "), "\(bad)")
            #expect(
                bad.stderr.contains(reason.isEmpty ? "it is a directory" : reason) && !bad.stderr.contains("worker"), "\(bad)")
        }
    }

    /// Counts a PNG's white pixels and those of the threads, processes and tasks colours
    /// (RGB or RGBA, 8 bits, as rsvg-convert writes them), with Python's zlib: `WHITE T P K`.
    static let countColours = #"""
        import struct, sys, zlib
        data = open(sys.argv[1], "rb").read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        pos, chunks = 8, {}
        while pos < len(data):
            size, kind = struct.unpack(">I4s", data[pos:pos + 8])
            chunks.setdefault(kind, b"")
            chunks[kind] += data[pos + 8:pos + 8 + size]
            pos += 12 + size
        width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
        assert depth == 8 and colour in (2, 6), (depth, colour)
        bpp = 4 if colour == 6 else 3
        raw, stride, rows, previous = zlib.decompress(chunks[b"IDAT"]), width * bpp, [], bytearray(width * bpp)
        for y in range(height):
            kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = previous[i]
                c = previous[i - bpp] if i >= bpp else 0
                if kind == 1: line[i] = (line[i] + a) & 255
                elif kind == 2: line[i] = (line[i] + b) & 255
                elif kind == 3: line[i] = (line[i] + (a + b) // 2) & 255
                elif kind == 4:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            rows.append(line)
            previous = line
        targets = [(255, 255, 255), (0x1f, 0x77, 0xb4), (0xd6, 0x27, 0x28), (0x2c, 0xa0, 0x2c)]
        counts = [0] * 4
        for line in rows:
            for x in range(width):
                r, g, b = line[x * bpp], line[x * bpp + 1], line[x * bpp + 2]
                for index, (tr, tg, tb) in enumerate(targets):
                    if abs(r - tr) + abs(g - tg) + abs(b - tb) < 30:
                        counts[index] += 1
        print(*counts)
        """#
}

/// Connections that hold a place without using it.
@Suite("Idle and half-open connections")
struct IdleConnectionTests {
    @Test("a silent connection and one stuck in a partial message are closed after the idle timeout; a stream is not")
    func idleTimeout() throws {
        let daemon = try TestDaemon(["--workers", "1", "--idle-timeout", "1"])
        let silent = try RawClient(path: daemon.socket)
        let partial = try RawClient(path: daemon.socket)
        try partial.sendRaw(#"{"method":"io.concur.Supervisor.Sta"#)
        let watching = try VarlinkConnection(unixPath: daemon.socket, receiveTimeout: 10)
        var frames = 0
        let started = Date()
        try watching.stream(SupervisorInterface.method(.watchStats), ["interval": 0.5]) { _ throws(VarlinkClientError) in
            frames += 1
            return Date().timeIntervalSince(started) < 3
        }
        #expect(frames >= 6, "the stream was cut after \(frames) frames")
        #expect(silent.readUntilClosed(timeout: 5), "a silent connection stayed open")
        #expect(partial.readUntilClosed(timeout: 5), "a half-sent message kept its connection open")
        #expect(try daemon.status().phase == .serving)
    }
}

/// A client that shuts its side down once it has sent its calls, as one behind `concurctl
/// bridge` does when its input ends.
@Suite("Half-closed connections")
struct HalfCloseTests {
    @Test("calls sent before a client shut its side down are all answered (a submit's after its commit), then it closes")
    func answeredThenClosed() throws {
        let daemon = try TestDaemon(["--workers", "1"])
        let client = try RawClient(path: daemon.socket)
        try client.send(#"{"method":"io.concur.Supervisor.Submit","parameters":{"jobs":[{"kind":"sleep","ms":1}]}}"#)
        try client.send(#"{"method":"io.concur.Supervisor.Status"}"#)
        client.shutdownWrite()
        let replies = try #require(client.messagesUntilClosed(timeout: 10), "the connection stayed open")
        #expect(replies.count == 2, "\(replies)")
        #expect(replies.first?.contains(#""ids":[1]"#) == true && replies.last?.contains(#""status""#) == true, "\(replies)")
        // A stream ends with its client's input: nobody would read it.
        let watcher = try RawClient(path: daemon.socket)
        try watcher.send(#"{"method":"io.concur.Supervisor.WatchStats","parameters":{"interval":60},"more":true}"#)
        watcher.shutdownWrite()
        #expect(watcher.messagesUntilClosed(timeout: 10) != nil, "a stream outlived its client's input")
        // Through the bridge: its input ends after the calls, and their replies still come out.
        let piped = try runCommand(
            URL(fileURLWithPath: "/bin/sh"),
            [
                "-c",
                #"printf '%s\0%s\0' '{"method":"io.concur.Supervisor.Submit","parameters":{"jobs":[{"kind":"sleep","ms":1}]}}' '{"method":"io.concur.Supervisor.Status"}' | "$0" bridge --socket "$1""#,
                Binaries.concurctl.path, daemon.socket,
            ])
        #expect(piped.status == 0 && piped.stdout.contains(#""ids":[2]"#) && piped.stdout.contains(#""status""#), "\(piped)")
        #expect(try daemon.status().totals.submitted == 2)
    }
}

/// Bad input against the running daemon: it answers what it can, closes what it must, and keeps
/// serving a well-behaved client throughout.
@Suite("Bad input")
struct FuzzTests {
    @Test("random bytes, truncated, oversized and deeply nested messages, wrong types, floods and slow writes")
    func fuzz() throws {
        let daemon = try TestDaemon(["--workers", "2", "--idle-timeout", "2"])
        let script = Binaries.clients.appendingPathComponent("fuzz_client.py").path
        let seconds = ProcessInfo.processInfo.environment["CONCUR_FUZZ_SECONDS"] ?? "8"
        let result = try runCommand(
            URL(fileURLWithPath: "/usr/bin/env"), ["python3", script, daemon.socket, seconds, "7"], timeout: 120)
        #expect(result.status == 0, "\(result)")
        guard case .object(let summary) = try JSON.parse(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestFailure("no summary: \(result)")
        }
        #expect(summary["wrong_count"] == 0, "the good client got wrong answers: \(summary)")
        #expect(SocketFloodTests.number(summary["good_calls"]) >= 10, "\(summary)")
        #expect(SocketFloodTests.number(summary["sent"]) > 50, "\(summary)")
        // Still serving, still itself.
        let status = try daemon.status()
        #expect(status.phase == .serving && status.workers.target == 2)
        let rss = try PoolStats(json: .object(daemon.ctlJSON(["stats"])), path: "").process.rssBytes
        #expect(rss < 300 << 20, "RSS after the fuzzing: \(rss)")
        #expect(!daemon.log().contains("Fatal error"))
    }
}
