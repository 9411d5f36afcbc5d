import ConcurProtocol
import ConcurTestSupport
import Foundation
import Testing
import Varlink

/// A process as /proc shows it.
struct ProcEntry {
    let pid: Int32
    let parent: Int32
    let group: Int32
    let state: Character

    /// Every process whose parent is `parent`.
    /// The processes whose parent is `parent`; the daemon's command guard only when asked for.
    static func children(of parent: Int32, includingGuard: Bool = false) -> [ProcEntry] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> ProcEntry? in
            if !includingGuard, let cmdline = try? String(contentsOfFile: "/proc/\(entry)/cmdline", encoding: .utf8),
                cmdline.hasPrefix("concurd\0__guard\0")
            {
                return nil
            }
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            // After "pid (comm) ": state ppid pgrp ...
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 3, let parentPID = Int32(fields[1]), let group = Int32(fields[2]), parentPID == parent else {
                return nil
            }
            return ProcEntry(pid: pid, parent: parentPID, group: group, state: fields[0].first ?? "?")
        }
    }

    /// Whether `pid` has ended: gone, or a zombie nobody reaps (the sandbox's PID 1 does not).
    static func hasEnded(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")")
        else { return true }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
    }

    /// The descriptors the process has open.
    static func descriptors(of pid: Int32) -> [Int] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).compactMap(Int.init).sorted()
    }

    /// The nice value of a process, or of one of its threads.
    static func nice(_ pid: Int32, thread: Int32? = nil) -> Int? {
        let path = thread.map { "/proc/\(pid)/task/\($0)/stat" } ?? "/proc/\(pid)/stat"
        guard let stat = try? String(contentsOfFile: path, encoding: .utf8), let close = stat.lastIndex(of: ")") else {
            return nil
        }
        // After "pid (comm) ", field 19 (nice) is the 17th.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 16 ? Int(fields[16]) : nil
    }

    /// The threads of `pid` whose name starts with `prefix`.
    static func threads(of pid: Int32, named prefix: String) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.compactMap { task in
            let name = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8)) ?? ""
            return name.hasPrefix(prefix) ? Int32(task) : nil
        }
    }

    /// A field of /proc/PID/status, such as `SigBlk`.
    static func status(_ pid: Int32, _ field: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix(field + ":") }
            .map { $0.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces) }
    }
}

extension TestDaemon {
    /// The statistics, through the real client.
    func stats() throws -> PoolStats {
        try PoolStats(json: .object(ctlJSON(["stats"])), path: "stats")
    }

    /// The job `id`, through the real client.
    func job(_ id: Int) throws -> JobInfo {
        let jobs = try [JobInfo](json: ctlJSON(["jobs", "\(id)"])["jobs"] ?? .null, path: "jobs")
        return try #require(jobs.first)
    }

    /// The pids of the live worker processes.
    func workerPIDs() throws -> [Int32] {
        try stats().workers.compactMap { $0.pid.map(Int32.init) }
    }
}

/// The processes model, on the real daemon.
@Suite("The processes model end to end", .serialized)
struct ProcessModelTests {
    @Test("children are clean: own process group, empty signal mask, only fds 0-4, the daemon's binary in worker mode")
    func cleanChildren() throws {
        let daemon = try TestDaemon(["--workers", "2", "--model", "processes"])
        #expect(try eventually { try daemon.workerPIDs().count == 2 })
        let children = ProcEntry.children(of: daemon.pid)
        #expect(children.count == 2)
        for child in children {
            #expect(child.group == child.pid, "a child in the daemon's group would take its terminal's Ctrl-C")
            // 3: the channel to the daemon; 4: the shared progress page.
            #expect(ProcEntry.descriptors(of: child.pid) == [0, 1, 2, 3, 4])
            let page = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(child.pid)/fd/4")) ?? ""
            #expect(page.contains("memfd:concur-progress"))
            #expect(ProcEntry.status(child.pid, "SigBlk") == "0000000000000000")
            let cmdline = (try? String(contentsOfFile: "/proc/\(child.pid)/cmdline", encoding: .utf8)) ?? ""
            #expect(cmdline.hasPrefix("concurd\0__worker\0--parent\0\(daemon.pid)"))
            // Workers yield the CPU to the daemon's control plane.
            #expect(ProcEntry.nice(child.pid) == 10)
        }
        #expect(ProcEntry.nice(daemon.pid) == 0)
        // No command ran in the daemon itself: no command guard was started.
        #expect(ProcEntry.children(of: daemon.pid, includingGuard: true).count == children.count)
        let stats = try daemon.stats()
        #expect(stats.workers.allSatisfy { $0.model == .processes && ($0.rssBytes ?? 0) > 1_000_000 })
        #expect(stats.status.model == .processes)
    }

    @Test("the forkserver: one helper in a group of its own forks the workers; they are as clean as spawned ones")
    func forkServer() throws {
        let daemon = try TestDaemon(["--workers", "2", "--model", "processes", "--start-method", "forkserver"])
        #expect(try eventually { try daemon.workerPIDs().count == 2 })
        let helpers = ProcEntry.children(of: daemon.pid)
        let helper = try #require(helpers.first)
        #expect(helpers.count == 1 && helper.group == helper.pid)
        let workers = ProcEntry.children(of: helper.pid)
        #expect(Set(workers.map(\.pid)) == Set(try daemon.workerPIDs()))
        for worker in workers {
            #expect(worker.group == worker.pid)
            #expect(ProcEntry.descriptors(of: worker.pid) == [0, 1, 2, 3, 4])
            #expect(ProcEntry.status(worker.pid, "SigBlk") == "0000000000000000")
            // Only SIGPIPE is ignored (the worker's own choice, as a spawned one), besides
            // glibc's internal signals 32 and 33, which sigaction may not touch.
            let ignored = UInt64(ProcEntry.status(worker.pid, "SigIgn") ?? "", radix: 16) ?? .max
            #expect(ignored & ~(UInt64(0b11) << 31) == 1 << (UInt64(SIGPIPE) - 1))
            #expect(ProcEntry.nice(worker.pid) == 10)
        }
        #expect(try daemon.ctl(["submit", "primes", "--wait"]).status == 0)
    }

    @Test(
        "kill -9 of a busy worker: its job is retried on another worker and completes, and a new child replaces it",
        arguments: ["spawn", "forkserver"])
    func killBusyWorker(startMethod: String) throws {
        let daemon = try TestDaemon(["--workers", "2", "--model", "processes", "--start-method", startMethod])
        _ = try daemon.ctl(["submit", "sleep:4000"])  // long enough to be found and killed on a slow machine
        #expect(try eventually { try daemon.stats().workers.contains { $0.job == 1 } })
        let victim = try #require(try daemon.stats().workers.first { $0.job == 1 }?.pid)
        kill(Int32(victim), SIGKILL)
        #expect(try eventually(20) { try daemon.job(1).state == .done })
        let job = try daemon.job(1)
        #expect(job.attempts == 2)
        let stats = try daemon.stats()
        #expect(stats.workerDeaths == 1 && stats.workerRestarts == 1)
        #expect(try eventually { try daemon.workerPIDs().count == 2 })
        #expect(try !daemon.workerPIDs().contains(Int32(victim)))
        #expect(stats.status.totals == JobTotals(submitted: 1, done: 1, failed: 0, cancelled: 0, retried: 1))
        #expect(daemon.log().contains("worker") && daemon.log().contains("(pid \(victim)) killed by SIGKILL"))
    }

    @Test(
        "a crash job among 100 normal ones: exactly one failure, 99 done, and the daemon carries on",
        arguments: ["spawn", "forkserver"])
    func crashAmongMany(startMethod: String) throws {
        let daemon = try TestDaemon(["--workers", "2", "--model", "processes", "--start-method", startMethod])
        let specs = (0..<50).map { _ in "prime:97" } + ["crash"] + (0..<49).map { _ in "sleep:1" }
        let result = try daemon.ctl(["submit"] + specs + ["--wait"])
        #expect(result.status == 1)
        let summary = try #require(result.lines.last)
        #expect(summary.hasPrefix("100 jobs finished in ") && summary.hasSuffix(": 99 done, 1 failed, 0 cancelled"), "\(summary)")
        let crash = try daemon.job(51)
        #expect(crash.state == .failed && crash.attempts == 3)
        #expect(crash.error?.contains("killed by SIGABRT (attempt 3 of 3)") == true)
        let totals = try daemon.status().totals
        #expect(totals.submitted == 100 && totals.done == 99 && totals.failed == 1 && totals.cancelled == 0)
        // The crash job's two retries, and any job that finished in a crashed child before its
        // result was sent (it runs again: at least once across crashes).
        #expect(totals.retried >= 2)
        #expect(try eventually { try daemon.workerPIDs().count == 2 })
    }

    @Test("a job over its time limit is stopped by its child and failed; the child keeps serving")
    func timeLimit() throws {
        let daemon = try TestDaemon(["--workers", "1", "--model", "processes"])
        let before = try #require(try daemon.workerPIDs().first)
        let result = try daemon.ctl(["submit", "cpu:1000", "--timeout", "0.5", "--wait"])
        #expect(result.status == 1)
        #expect(result.stdout.contains("exceeded its time limit of 0.5 s"), "\(result)")
        #expect(try daemon.workerPIDs() == [before])
        #expect(try daemon.stats().workerDeaths == 0)
        #expect(try daemon.ctl(["submit", "prime:97", "--wait"]).status == 0)
    }

    @Test("a child that does not stop an overlong job is stopped itself (SIGTERM, then SIGKILL) and replaced")
    func unresponsiveChild() throws {
        let daemon = try TestDaemon(["--workers", "1", "--model", "processes"])
        _ = try daemon.ctl(["submit", "sleep:60000", "--timeout", "0.5"])
        #expect(try eventually { try daemon.stats().workers.first?.job == 1 })
        let frozen = try #require(try daemon.workerPIDs().first)
        // A stopped process cannot read the interrupt, nor act on SIGTERM: only SIGKILL ends it.
        kill(frozen, SIGSTOP)
        #expect(try eventually(20) { try daemon.job(1).state == .failed })
        let job = try daemon.job(1)
        #expect(job.error == "exceeded its time limit of 0.5 s", "\(job)")
        #expect(try eventually { try daemon.workerPIDs().count == 1 && daemon.workerPIDs() != [frozen] })
        #expect(kill(frozen, 0) != 0)
        #expect(daemon.log().contains("(pid \(frozen)) was stopped: killed by SIGKILL"), "\(daemon.log())")
        #expect(try daemon.stats().workerDeaths == 0)
        #expect(try daemon.ctl(["submit", "prime:97", "--wait"]).status == 0)
    }

    @Test("resize 4 -> 1 -> 4 while jobs run loses no job and kills no child")
    func resize() throws {
        let daemon = try TestDaemon(["--workers", "4", "--model", "processes"])
        let waiter = try daemon.startCtl(["submit", "--jobs", "80", "--kind", "sleep", "--scale", "0.5", "--wait"])
        #expect(try eventually { try daemon.status().running > 0 })
        _ = try daemon.ctl(["resize", "--workers", "1"])
        usleep(300_000)
        _ = try daemon.ctl(["resize", "--workers", "4"])
        let finished = try #require(waiter.finish())
        #expect(finished.status == 0, "\(finished.output)")
        #expect(finished.output.contains("80 jobs finished") && finished.output.contains("80 done"))
        let stats = try daemon.stats()
        #expect(stats.status.totals == JobTotals(submitted: 80, done: 80, failed: 0, cancelled: 0, retried: 0))
        #expect(stats.workerDeaths == 0)
        #expect(try eventually { try daemon.workerPIDs().count == 4 })
    }

    @Test(
        "SIGTERM drains the children: their jobs complete, all exit before the daemon, no zombie is left",
        arguments: ["spawn", "forkserver"])
    func drain(startMethod: String) throws {
        let daemon = try TestDaemon(["--workers", "2", "--model", "processes", "--start-method", startMethod])
        let waiter = try daemon.startCtl(["submit", "sleep:1000", "sleep:1000", "--wait"])
        #expect(try eventually { try daemon.status().running == 2 })
        // The workers, and with a forkserver its helper, the daemon's only child.
        let children = try daemon.workerPIDs() + ProcEntry.children(of: daemon.pid).map(\.pid)
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit() == 0, "\(daemon.log())")
        let waited = try #require(waiter.finish())
        #expect(waited.output.contains("2 done"), "\(waited.output)")
        // Gone, not zombies: the daemon (or the forkserver, which the daemon reaps) reaped them.
        for child in children { #expect(kill(child, 0) != 0, "child \(child) outlived the daemon") }
    }

    @Test("kill -9 of the daemon: its children exit within a second", arguments: ["spawn", "forkserver"])
    func orphans(startMethod: String) throws {
        let daemon = try TestDaemon(["--workers", "3", "--model", "processes", "--start-method", startMethod])
        let workers = try daemon.workerPIDs()
        #expect(workers.count == 3)
        let children = workers + ProcEntry.children(of: daemon.pid).map(\.pid)
        daemon.signal(SIGKILL)
        _ = daemon.waitForExit()
        let start = Date()
        #expect(
            eventually(5) { children.allSatisfy { kill($0, 0) != 0 || ProcEntry.status($0, "State")?.hasPrefix("Z") == true } })
        #expect(Date().timeIntervalSince(start) < 1.5)
    }

    @Test("exec jobs are refused unless allowed; allowed, they keep exit status and output, and stop at their time limit")
    func exec() throws {
        let refusing = try TestDaemon(["--model", "processes"])
        let refused = try refusing.ctl(["submit", "--exec", "--", "true"])
        #expect(refused.status == 1 && refused.stderr.contains("--allow-exec"), "\(refused)")
        let daemon = try TestDaemon(["--workers", "2", "--model", "processes", "--allow-exec"])
        let failing = try daemon.ctl([
            "submit", "--exec", "--wait", "--", "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 4",
        ])
        #expect(failing.status == 1)
        let job = try daemon.job(1)
        #expect(job.state == .failed && job.error == "the command exited with status 4")
        #expect(job.result?.exitCode == 4 && job.result?.output == "to-stdout\nto-stderr\n")
        let marker = "concur-e2e-\(UUID().uuidString.prefix(8))"
        let timed = try daemon.ctl([
            "submit", "--exec", "--timeout", "0.5", "--wait", "--", "bash", "-c", "sleep 30 & exec -a \(marker) sleep 30",
        ])
        #expect(timed.stdout.contains("exceeded its time limit of 0.5 s"), "\(timed)")
        #expect(eventually(5) { runningProcesses(named: marker).isEmpty })
    }

    @Test("an exec job's command never outlives a daemon that is stopped")
    func execOnShutdown() throws {
        let daemon = try TestDaemon(["--workers", "1", "--model", "threads", "--allow-exec"])
        let marker = "concur-e2e-\(UUID().uuidString.prefix(8))"
        _ = try daemon.ctl(["submit", "--exec", "--", "bash", "-c", "exec -a \(marker) sleep 60"])
        #expect(eventually(5) { !runningProcesses(named: marker).isEmpty })
        daemon.signal(SIGTERM)
        // A second signal sent before the first is taken would merge with it.
        #expect(try eventually(5) { try daemon.status().phase == .draining })
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 15) == 75)
        #expect(eventually(5) { runningProcesses(named: marker).isEmpty })
    }

    @Test("crash jobs are refused outside the processes model, unless forced (which takes the daemon down)")
    func crashOutsideProcesses() throws {
        let daemon = try TestDaemon(["--workers", "1"])
        let refused = try daemon.ctl(["submit", "crash"])
        #expect(refused.status == 1 && refused.stderr.contains("under the threads model"), "\(refused)")
        #expect(try daemon.status().totals.submitted == 0)
        _ = try daemon.ctl(["submit", "crash", "--force"])
        #expect(daemon.waitForExit(timeout: 10) == 128 + SIGABRT)
    }
}

/// Live processes whose command name (argv[0]) is `name`.
func runningProcesses(named name: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { entry in
        guard let pid = Int32(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
            let first = data.split(separator: 0).first
        else { return nil }
        return String(decoding: first, as: UTF8.self) == name ? pid : nil
    }
}
