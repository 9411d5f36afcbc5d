import ConcurProtocol
import ConcurTestSupport
import Foundation
import Testing
import Varlink

/// `concurctl cancel`, `wait` and `shutdown` against the real daemon.
@Suite("cancel, wait and shutdown", .serialized)
struct CancelWaitTests {
    /// A command that writes its shell's pid and its child's to `file`, then waits on the child.
    static func pidWriter(_ file: String) -> [String] {
        ["submit", "--exec", "--", "sh", "-c", "sleep 600 & echo $$ $! > \(file).tmp; mv \(file).tmp \(file); wait"]
    }

    /// The pids a ``pidWriter(_:)`` command wrote, once it has.
    static func pids(in file: String) throws -> [Int32] {
        try #require(eventually { FileManager.default.fileExists(atPath: file) }, "the command never wrote \(file)")
        return try String(contentsOfFile: file, encoding: .utf8).split(separator: " ").compactMap {
            Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// Whether `pid` is gone (or a zombie nobody has reaped yet: it runs nothing).
    static func isGone(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return errno == ESRCH }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
    }

    @Test(
        "cancel ends a queued job at once and interrupts running exec, sleep and cpu jobs in every model; the command's group is gone",
        arguments: ConcurrencyModel.allCases)
    func cancelEveryKind(model: ConcurrencyModel) throws {
        let daemon = try TestDaemon(["--workers", "3", "--model", model.rawValue, "--allow-exec"])
        let pidFile = daemon.directory.appendingPathComponent("pids").path
        #expect(try daemon.ctl(Self.pidWriter(pidFile)).status == 0)
        let pids = try Self.pids(in: pidFile)
        #expect(pids.count == 2)
        _ = try daemon.ctl(["submit", "sleep:600000", "cpu:1000", "prime:97"])
        #expect(try eventually { try daemon.status().running == 3 && daemon.status().queued == 1 })
        let waiter = try daemon.startCtl(["wait", "1", "2", "3", "4"])
        let reply = try daemon.ctlJSON(["cancel", "1", "2", "3", "4"])
        #expect(reply["cancelled"] == .array([.int(4)]), "\(reply)")
        #expect(reply["stopping"] == .array([.int(1), .int(2), .int(3)]), "\(reply)")
        let waited = try #require(waiter.finish(timeout: 30), "wait did not return: \(daemon.log())")
        #expect(waited.status == 1, "\(waited.output)")
        for id in 1...4 {
            #expect(waited.output.contains("job \(id) "), "\(waited.output)")
        }
        #expect(waited.output.components(separatedBy: "cancelled by uid \(getuid())").count == 5, "\(waited.output)")
        #expect(waited.output.contains("4 jobs ended: 0 done, 0 failed, 4 cancelled"), "\(waited.output)")
        for pid in pids {
            #expect(eventually(5) { Self.isGone(pid) }, "process \(pid) of the cancelled command still runs")
        }
        // Nothing else ran meanwhile; the pool serves on.
        #expect(try daemon.ctl(["submit", "prime:7", "--wait"]).status == 0)
    }

    @Test("cancel refuses an unknown id and a finished job with what to do, and changes nothing")
    func cancelRefusals() throws {
        let daemon = try TestDaemon(["--workers", "1"])
        _ = try daemon.ctl(["submit", "prime:7", "--wait"])
        _ = try daemon.ctl(["pause"])
        _ = try daemon.ctl(["submit", "prime:11"])
        let unknown = try daemon.ctl(["cancel", "2", "99"])
        #expect(unknown.status == 1 && unknown.stderr.contains("no job 99"), "\(unknown)")
        let finished = try daemon.ctl(["cancel", "1"])
        #expect(finished.status == 1 && finished.stderr.contains("job 1 has already ended (done)"), "\(finished)")
        #expect(try daemon.status().queued == 1)
        for (arguments, message) in [
            (["cancel"], "nothing to cancel"), (["cancel", "2", "--queued"], "not both"), (["cancel", "0"], "start at 1"),
            (["cancel", "x"], "x"),
        ] {
            let result = try daemon.ctl(arguments)
            #expect(result.status == 64 && result.stderr.contains(message), "\(arguments): \(result)")
        }
        let queued = try daemon.ctl(["cancel", "--queued"])
        #expect(queued.status == 0 && queued.stdout.contains("cancelled 1 job: 2"), "\(queued)")
        #expect(try daemon.ctl(["cancel", "--queued"]).stdout.contains("no queued job to cancel"))
    }

    @Test("a cancelled job is not run again after a restart, even when concurd is killed while it stops")
    func cancelSurvivesRestart() throws {
        let state = NSTemporaryDirectory() + "concur-cancel-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let runs = state + "-runs"
        defer { try? FileManager.default.removeItem(atPath: runs) }
        var daemon: TestDaemon? = try TestDaemon(["--workers", "1", "--allow-exec"], stateDirectory: state)
        // It ignores SIGTERM, so it is still stopping (for the 2 s grace) when concurd is killed.
        let stubborn = "echo $$ >> \(runs); trap '' TERM; sleep 600"
        _ = try daemon!.ctl(["submit", "--exec", "--", "sh", "-c", stubborn])
        _ = try daemon!.ctl(["submit", "sleep:1"])
        #expect(eventually { FileManager.default.fileExists(atPath: runs) })
        let reply = try daemon!.ctlJSON(["cancel", "1", "2"])
        #expect(reply["stopping"] == .array([.int(1)]) && reply["cancelled"] == .array([.int(2)]), "\(reply)")
        daemon!.signal(SIGKILL)
        _ = daemon!.waitForExit()
        daemon = nil
        let again = try TestDaemon(["--workers", "1", "--allow-exec"], stateDirectory: state)
        let jobs = try again.ctlJSON(["jobs", "1", "2"])
        let listed = try [JobInfo](json: jobs["jobs"] ?? .null, path: "jobs")
        #expect(listed.map(\.state) == [.cancelled, .cancelled], "\(listed)")
        #expect(listed.first?.error?.contains("cancelled by uid \(getuid()); concurd stopped before the job ended") == true)
        #expect(again.log().contains("1 cancelled: a cancel was under way"), "\(again.log())")
        let started = try String(contentsOfFile: runs, encoding: .utf8).split(separator: "\n")
        #expect(started.count == 1, "the command ran \(started.count) times")
        // Whatever of its group outlived the daemon (see the orphan tests) goes now.
        for pid in started.compactMap({ Int32($0) }) { kill(-pid, SIGKILL) }
    }

    @Test("wait: 0 when every job is done, 1 when one failed, 124 on its timeout, and --all waits for what runs now")
    func waitOutcomes() throws {
        let gate = Gate()
        let daemon = try TestDaemon(["--workers", "2", "--allow-exec"])
        _ = try daemon.ctl(["submit", "prime:7", "prime:11", "fail", "--wait"])
        let done = try daemon.ctl(["wait", "1", "2"])
        #expect(done.status == 0 && done.stdout.contains("2 jobs ended: 2 done, 0 failed, 0 cancelled"), "\(done)")
        let failed = try daemon.ctl(["wait", "1", "3"])
        #expect(failed.status == 1 && failed.stdout.contains("job 3 fail: failed"), "\(failed)")
        _ = try daemon.ctl(gate.job)
        let timedOut = try daemon.ctl(["wait", "4", "1", "--timeout", "0.3"])
        #expect(timedOut.status == 124 && timedOut.stderr.contains("jobs 4 not ended yet"), "\(timedOut)")
        #expect(timedOut.stdout.contains("job 1 "), "a finished job is printed at once: \(timedOut)")
        let all = try daemon.startCtl(["wait", "--all"])
        #expect(all.wait(timeout: 0.3) == nil, "wait --all returned while job 4 ran")
        gate.open()
        let waited = try #require(all.finish(timeout: 30))
        #expect(waited.status == 0 && waited.output.contains("1 job ended: 1 done"), "\(waited.output)")
        let idle = try daemon.ctl(["wait", "--all"])
        #expect(idle.status == 0 && idle.stdout.contains("no job was queued or running"), "\(idle)")
        for (arguments, message) in [
            (["wait"], "nothing to wait for"), (["wait", "1", "--all"], "not both"),
            (["wait", "1", "--timeout", "0"], "--timeout"),
            (["wait", "1", "--timeout", "-1"], "--timeout"), (["wait", "0"], "start at 1"),
        ] {
            let result = try daemon.ctl(arguments)
            #expect(result.status == 64 && result.stderr.contains(message), "\(arguments): \(result)")
        }
        let unknown = try daemon.ctl(["wait", "77"])
        #expect(unknown.status == 1 && unknown.stderr.contains("no job 77"), "\(unknown)")
    }

    @Test("shutdown drains as SIGTERM does, shutdown --now interrupts as a second one does")
    func shutdownModes() throws {
        let gate = Gate()
        let draining = try TestDaemon(["--workers", "1", "--allow-exec"])
        _ = try draining.ctl(gate.job)
        #expect(try eventually { try draining.status().running == 1 })
        let first = try draining.ctl(["shutdown"])
        #expect(first.status == 0 && first.stdout.contains("concurd is draining"), "\(first)")
        #expect(try eventually(5) { try draining.status().phase == .draining })
        #expect(try draining.ctl(["shutdown"]).stdout.contains("already draining"))
        #expect(draining.waitForExit(timeout: 0.5) == nil, "the drain ended while job 1 ran")
        gate.open()
        #expect(draining.waitForExit() == 0, "\(draining.log())")
        #expect(draining.log().contains("Shutdown(drain) by uid \(getuid())"), "\(draining.log())")

        let stopping = try TestDaemon(["--workers", "1", "--drain-timeout", "600", "--ephemeral"])
        let waiter = try stopping.startCtl(["submit", "sleep:600000", "--wait"])
        #expect(try eventually { try stopping.status().running == 1 })
        let now = try stopping.ctl(["shutdown", "--now"])
        #expect(now.status == 0 && now.stdout.contains("running jobs are being interrupted"), "\(now)")
        #expect(stopping.waitForExit(timeout: 10) == 75, "\(stopping.log())")
        let waited = try #require(waiter.finish())
        #expect(waited.output.contains("interrupted: Shutdown(interrupt) by uid"), "\(waited.output)")
        let wrong = try runCommand(Binaries.concurctl, ["shutdown", "--socket", stopping.socket, "--later"])
        #expect(wrong.status == 64 && wrong.stderr.contains("--later"), "\(wrong)")
    }
}
