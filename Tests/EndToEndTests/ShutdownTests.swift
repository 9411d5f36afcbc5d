import ConcurProtocol
import ConcurTestSupport
import Foundation
import Testing
import Varlink

/// Signals and systemd notifications of the real daemon.
@Suite("concurd shutdown and notifications", .serialized)
struct ShutdownTests {
    @Test("SIGTERM drains an ephemeral concurd: intake stops, the running job completes, queued ones are cancelled, exit 0")
    func drain() throws {
        let gate = Gate()
        let daemon = try TestDaemon(["--workers", "1", "--ephemeral", "--allow-exec"])
        _ = try daemon.ctl(gate.job)
        #expect(try eventually { try daemon.status().running == 1 })
        let waiter = try daemon.startCtl(["submit", "sleep:1", "--wait"])
        #expect(try eventually { try daemon.status().queued == 1 })
        daemon.signal(SIGTERM)
        #expect(try eventually(5) { try daemon.status().phase == .draining })
        let refused = try daemon.ctl(["submit", "prime:7"])
        #expect(refused.status == 1 && refused.stderr.contains("shutting down"), "\(refused)")
        #expect(daemon.waitForExit(timeout: 0.5) == nil, "the drain ended while job 1 ran: \(daemon.log())")
        gate.open()
        #expect(daemon.waitForExit() == 0, "\(daemon.log())")
        let waited = try #require(waiter.finish())
        #expect(waited.output.contains("job 2 sleep(1ms): cancelled"), "\(waited.output)")
        #expect(waited.status == 1)
        #expect(daemon.log().contains("stopped: every running job finished (1 done, 0 failed, 1 cancelled)"))
        #expect(!FileManager.default.fileExists(atPath: daemon.socket))
    }

    @Test("a second SIGTERM interrupts running jobs and exits at once with status 75")
    func doubleTerm() throws {
        let daemon = try TestDaemon(["--workers", "2", "--drain-timeout", "600", "--ephemeral"])
        let waiter = try daemon.startCtl(["submit", "cpu:1000", "sleep:600000", "--wait"])
        #expect(try eventually { try daemon.status().running == 2 })
        daemon.signal(SIGTERM)
        #expect(try eventually(5) { try daemon.status().phase == .draining })
        let start = Date()
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 10) == 75, "\(daemon.log())")
        #expect(Date().timeIntervalSince(start) < 5)
        let waited = try #require(waiter.finish())
        #expect(
            waited.output.contains("cancelled") && waited.output.contains("interrupted: SIGTERM during shutdown"),
            "\(waited.output)")
        #expect(daemon.log().contains("stopped: running jobs were interrupted (0 done, 0 failed, 2 cancelled)"))
    }

    @Test("the drain timeout interrupts what is still running")
    func drainTimeout() throws {
        let daemon = try TestDaemon(["--workers", "1", "--drain-timeout", "0.5", "--ephemeral"])
        _ = try daemon.ctl(["submit", "cpu:1000"])
        #expect(try eventually { try daemon.status().running == 1 })
        daemon.signal(SIGINT)
        #expect(daemon.waitForExit(timeout: 15) == 75, "\(daemon.log())")
        #expect(daemon.log().contains("1 cancelled"))
    }

    @Test("READY=1 comes once the socket accepts, STATUS= follows changes, STOPPING=1 at shutdown")
    func notifications() throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "concur-notify-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let listener = try NotifyListener(path: directory.appendingPathComponent("notify.sock").path)
        let daemon = try TestDaemon(["--workers", "3"], environment: ["NOTIFY_SOCKET": listener.path], waitForSocket: false)
        let startup = try #require(listener.receive(until: "READY=1", timeout: 20), "no READY=1; log:\n\(daemon.log())")
        let ready = try #require(startup.last)
        #expect(ready.contains("STATUS=threads, 3 workers (0 busy), 0 queued, 0 running, 0 done, 0 failed"))
        // READY=1 promises a socket that accepts.
        #expect(try daemon.ctl(["status"]).status == 0)
        _ = try daemon.ctl(["resize", "--workers", "2"])
        #expect(listener.receive(until: "STATUS=threads, 2 workers", timeout: 10) != nil)
        _ = try daemon.ctl(["submit", "prime:97", "--wait"])
        #expect(listener.receive(until: "1 done", timeout: 10) != nil)
        daemon.signal(SIGTERM)
        let stopping = try #require(listener.receive(until: "STOPPING=1", timeout: 10))
        #expect(!stopping.joined().contains("READY=1"))
        #expect(daemon.waitForExit() == 0)
    }

    @Test("SIGTTIN and SIGTTOU add and remove one worker")
    func ttinTtou() throws {
        let daemon = try TestDaemon(["--workers", "2"])
        // One signal at a time: the kernel merges a signal with one of its kind still pending.
        for (signal, target) in [(SIGTTIN, 3), (SIGTTOU, 2), (SIGTTOU, 1)] {
            daemon.signal(signal)
            #expect(try eventually(5) { try daemon.status().workers.target == target }, "\(daemon.log())")
        }
        #expect(
            try eventually(5) { try daemon.status().workers == WorkerCounts(target: 1, live: 1, busy: 0, idle: 1, retiring: 0) })
        daemon.signal(SIGTTOU)
        #expect(eventually(5) { daemon.log().contains("cannot resize to 0 workers") })
        #expect(try daemon.status().workers.target == 1)
    }
}

/// `concurd run`, the seed demo's foreground mode.
@Suite("concurd run")
struct ForegroundRunTests {
    @Test("runs the seed demo's workload and prints a line per job and a summary")
    func seedParity() throws {
        try Binaries.check()
        let result = try runCommand(
            Binaries.concurd,
            ["run", "--model", "threads", "--jobs", "20", "--workers", "4", "--seed", "1", "--time", "10", "--scale", "0.05"])
        #expect(result.status == 0, "\(result)")
        #expect(result.lines.first == "concurd run: 20 cpu jobs (seed 1) on 4 threads, time limit 10 s")
        #expect(result.lines.filter { $0.contains(" done in ") }.count == 20)
        #expect(result.lines.contains("20 jobs: 20 done, 0 failed"))
        #expect(result.lines.contains("every job ran to the end"))
        let again = try runCommand(
            Binaries.concurd, ["run", "--jobs", "20", "--workers", "2", "--seed", "1", "--time", "10", "--scale", "0.05"])
        // Same seed, same jobs: the sorted job lines match apart from timing and worker.
        func jobs(_ result: CommandResult) -> [String] {
            result.lines.compactMap { line in
                guard let range = line.range(of: "job ") else { return nil }
                return line[range.lowerBound...].replacingOccurrences(
                    of: #"done in [^:]+:"#, with: "", options: .regularExpression)
            }.sorted()
        }
        #expect(jobs(result) == jobs(again))
    }

    @Test("runs the same seeded workload under the processes model, with the same results")
    func processes() throws {
        try Binaries.check()
        let arguments = ["run", "--jobs", "12", "--workers", "2", "--seed", "3", "--kind", "prime", "--time", "30"]
        let threads = try runCommand(Binaries.concurd, arguments + ["--model", "threads"])
        let processes = try runCommand(Binaries.concurd, arguments + ["--model", "processes"])
        #expect(processes.status == 0, "\(processes)")
        #expect(processes.lines.first?.hasSuffix("on 2 processes, time limit 30 s") == true)
        func results(_ result: CommandResult) -> [String] {
            result.lines.filter { $0.contains(" done in ") }.map { line in
                String(line[line.range(of: "job ")!.lowerBound...]).replacingOccurrences(
                    of: #"done in [^:]+:"#, with: "", options: .regularExpression)
            }.sorted()
        }
        #expect(results(threads).count == 12)
        #expect(results(processes) == results(threads))
    }

    @Test("names the jobs that did not run when time runs out")
    func timeLimit() throws {
        try Binaries.check()
        let result = try runCommand(
            Binaries.concurd, ["run", "--jobs", "12", "--workers", "2", "--seed", "1", "--time", "0.3", "--scale", "5"])
        #expect(result.status == 1, "\(result)")
        #expect(result.lines.contains("stopped early: the --time limit of 0.3 s was reached"))
        #expect(result.lines.contains("12 jobs: 0 done, 0 failed"))
        #expect(result.lines.contains("not finished: 12 jobs"))
        #expect(result.lines.contains("  interrupted while running: 1-2"))
        #expect(result.lines.contains("  never started: 3-12"))
    }

    @Test("Ctrl-C lets running jobs finish and reports the rest; nothing hangs")
    func interrupt() throws {
        try Binaries.check()
        let run = try ChildProcess(
            Binaries.concurd.path,
            ["run", "--jobs", "6", "--workers", "2", "--kind", "sleep", "--scale", "16", "--seed", "1", "--time", "60"])
        // Seed 1 makes jobs 1 and 2 sleep 1.7 s and 2 s: Ctrl-C comes well after they start, well before they end.
        usleep(600_000)
        run.signal(SIGINT)
        let finished = try #require(run.finish(timeout: 10))
        #expect(finished.status == 1)
        #expect(finished.output.contains("stopped early: stopped by SIGINT"), "\(finished.output)")
        #expect(finished.output.contains("never started: 3-6"), "\(finished.output)")
        #expect(finished.output.contains("2 done"), "\(finished.output)")
    }
}
