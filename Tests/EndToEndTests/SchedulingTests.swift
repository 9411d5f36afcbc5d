import ConcurProtocol
import ConcurTestSupport
import Foundation
import Testing
import Varlink

/// Priorities, start times and dependencies against the real daemon and the real concurctl,
/// and across a kill -9. What ran, and in what order, comes from the execution log the jobs'
/// workers write.
@Suite("priorities, start times and dependencies", .serialized)
struct SchedulingTests {
    /// The ids of the execution log's `start` lines, in the order they were written.
    static func starts(in log: String) throws -> [UInt64] {
        guard FileManager.default.fileExists(atPath: log) else { return [] }
        return try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            return fields.count >= 2 && fields[0] == "start" ? UInt64(fields[1]) : nil
        }
    }

    static func job(_ id: UInt64, _ daemon: TestDaemon) throws -> JobInfo {
        let reply = try daemon.ctlJSON(["jobs", String(id)])
        guard case .array(let jobs) = reply["jobs"] ?? .null, let first = jobs.first else {
            throw TestFailure("no job in \(reply)")
        }
        return try JobInfo(json: first, path: "job")
    }

    @Test("a paused pool's workers take the higher priorities first when it resumes, first in first out within one")
    func priorities() throws {
        let folder = try DurabilityTests.Folder()
        let daemon = try TestDaemon(["--workers", "1", "--execution-log", folder.executionLog])
        #expect(try daemon.ctl(["pause"]).status == 0)
        _ = try daemon.ctl(["submit", "sleep:1", "sleep:2"])
        _ = try daemon.ctl(["submit", "--priority", "5", "sleep:3", "sleep:4"])
        _ = try daemon.ctl(["submit", "--priority", "-2", "sleep:5"])
        _ = try daemon.ctl(["submit", "--priority", "10", "sleep:6"])
        let queued = try daemon.ctlJSON(["jobs", "--state", "queued"])
        guard case .array(let listed) = queued["jobs"] ?? .null else { throw TestFailure("\(queued)") }
        let ids = try listed.map { try JobInfo(json: $0, path: "job").id }
        #expect(ids == [6, 3, 4, 1, 2, 5], "\(queued)")
        #expect(try daemon.ctl(["resume"]).status == 0)
        #expect(try daemon.ctl(["wait", "--all", "--timeout", "30"]).status == 0)
        let starts = try Self.starts(in: folder.executionLog)
        #expect(starts == [6, 3, 4, 1, 2, 5], "\(starts)")
        // Jobs the worker took ahead (it prefetches) do not overtake a higher priority that
        // comes after them: it gives them back.
        _ = try daemon.ctl(["submit", "--priority", "-5", "sleep:300", "sleep:300", "sleep:300", "sleep:300"])
        #expect(try eventually { try daemon.status().running == 1 })
        _ = try daemon.ctl(["submit", "--priority", "10", "sleep:1"])
        #expect(try daemon.ctl(["wait", "--all", "--timeout", "30"]).status == 0)
        let later = try Self.starts(in: folder.executionLog).dropFirst(6)
        #expect(Array(later) == [7, 11, 8, 9, 10], "\(later)")
    }

    @Test("a delayed job is listed scheduled with its time, does not start before it, and starts once it passed; --at too")
    func delayed() throws {
        let daemon = try TestDaemon(["--workers", "2"])
        let submitted = Date().timeIntervalSince1970
        #expect(try daemon.ctl(["submit", "--delay", "1.5s", "sleep:1"]).status == 0)
        // --at with an explicit offset: two seconds from now, in UTC.
        let at = Date(timeIntervalSince1970: (submitted + 2.5).rounded(.up))
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        #expect(try daemon.ctl(["submit", "--at", formatter.string(from: at), "sleep:1"]).status == 0)
        let first = try Self.job(1, daemon)
        #expect(first.state == .scheduled && abs((first.spec.startAt ?? 0) - (submitted + 1.5)) < 1)
        let listed = try daemon.ctl(["jobs", "--state", "scheduled"])
        #expect(listed.stdout.contains("starts "), "\(listed)")
        #expect(try daemon.status().scheduled == 2)
        #expect(try daemon.ctl(["wait", "1", "2", "--timeout", "30"]).status == 0)
        for id: UInt64 in [1, 2] {
            let job = try Self.job(id, daemon)
            let startAt = try #require(job.spec.startAt)
            let started = try #require(job.startedAt)
            #expect(started >= startAt, "job \(id) started \(startAt - started) s early")
        }
        // Generated jobs get the delay too, every one of them.
        let generated = try daemon.ctl(["submit", "--jobs", "50", "--scale", "0", "--delay", "1s", "--priority", "2"])
        #expect(generated.status == 0 && generated.stdout.contains("ids 3-52"), "\(generated)")
        #expect(try daemon.status().scheduled == 50)
        #expect(try daemon.ctl(["wait", "--all", "--timeout", "30"]).status == 0)
        let last = try Self.job(52, daemon)
        #expect(last.spec.priority == 2 && (last.startedAt ?? 0) >= (last.spec.startAt ?? .infinity))
    }

    @Test("dependencies run in order; a failure cancels the chain after it, naming the job; unknown ids are refused")
    func dependencies() throws {
        let folder = try DurabilityTests.Folder()
        let daemon = try TestDaemon(["--workers", "3", "--execution-log", folder.executionLog])
        _ = try daemon.ctl(["submit", "sleep:300"])  // 1
        _ = try daemon.ctl(["submit", "sleep:100"])  // 2
        _ = try daemon.ctl(["submit", "--after", "1,2", "sleep:1"])  // 3
        _ = try daemon.ctl(["submit", "--after", "3", "sleep:1"])  // 4
        _ = try daemon.ctl(["submit", "fail"])  // 5
        _ = try daemon.ctl(["submit", "--after", "5", "sleep:1"])  // 6
        _ = try daemon.ctl(["submit", "--after", "6,4", "sleep:1"])  // 7
        let shown = try daemon.ctl(["jobs", "3"])
        #expect(shown.stdout.contains("job 3 runs after 1, 2"), "\(shown)")
        let waited = try daemon.ctl(["wait", "4", "7", "--timeout", "30"])
        #expect(waited.status == 1, "\(waited)")
        let order = try Self.starts(in: folder.executionLog)
        let position = { (id: UInt64) in order.firstIndex(of: id) ?? -1 }
        #expect(position(3) > position(1) && position(3) > position(2) && position(4) > position(3), "\(order)")
        #expect(!order.contains(6) && !order.contains(7), "\(order)")
        #expect(try Self.job(6, daemon).error == "job 5, which it runs after, failed")
        #expect(try Self.job(7, daemon).error == "job 6, which it runs after, was cancelled")
        let unknown = try daemon.ctl(["submit", "--after", "99", "sleep:1"])
        #expect(unknown.status == 1 && unknown.stderr.contains("job 99 was never submitted"), "\(unknown)")
        let past = try daemon.ctl(["submit", "--at", "2020-01-01T00:00Z", "sleep:1"])
        #expect(past.status == 64 && past.stderr.contains("in the past"), "\(past)")
    }

    @Test("scheduled and waiting jobs survive kill -9: each runs once, after its time and after its job")
    func survivesKill() throws {
        let folder = try DurabilityTests.Folder()
        let arguments = ["--workers", "2", "--execution-log", folder.executionLog]
        let first = try TestDaemon(arguments, stateDirectory: folder.state)
        _ = try first.ctl(["submit", "sleep:2500"])  // 1: runs through the kill
        _ = try first.ctl(["submit", "--after", "1", "sleep:1"])  // 2
        _ = try first.ctl(["submit", "--delay", "3s", "--priority", "4", "sleep:1"])  // 3
        _ = try first.ctl(["submit", "--delay", "1h", "sleep:1"])  // 4: never due in this test
        #expect(try eventually { try first.status().running == 1 })
        first.signal(SIGKILL)
        _ = first.waitForExit()

        let second = try TestDaemon(arguments, stateDirectory: folder.state)
        #expect(try Self.job(2, second).state == .waiting)
        #expect(try Self.job(3, second).state == .scheduled && Self.job(4, second).state == .scheduled)
        #expect(try second.ctl(["wait", "1", "2", "3", "--timeout", "30"]).status == 0)
        let runs = try DurabilityTests.runs(in: folder.executionLog)
        // Job 1 ran when concurd was killed, and again (at least once); the others exactly once.
        #expect(runs[2] == 1 && runs[3] == 1 && runs[4] == nil, "\(runs)")
        let two = try Self.job(2, second)
        let one = try Self.job(1, second)
        #expect((two.startedAt ?? 0) >= (one.finishedAt ?? .infinity))
        let three = try Self.job(3, second)
        #expect((three.startedAt ?? 0) >= (three.spec.startAt ?? .infinity))
        #expect(try second.ctl(["cancel", "4"]).status == 0)
        #expect(try Self.job(4, second).state == .cancelled)
    }

    @Test("a job waiting out a retry's delay when concurd is killed waits for the rest of it after the restart")
    func retryWaitSurvivesKill() throws {
        let folder = try DurabilityTests.Folder()
        let arguments = ["--workers", "1", "--execution-log", folder.executionLog]
        let first = try TestDaemon(arguments, stateDirectory: folder.state)
        _ = try first.ctl(["submit", "--retries", "1", "--retry-delay", "30", "fail"])
        #expect(try eventually { try Self.job(1, first).retryAt != nil })
        let retryAt = try #require(try Self.job(1, first).retryAt)
        // A submit's reply waits for the journal, and the journal writes in order: once it
        // comes, the failed run is durable too (killed before, the run would count for nothing
        // and the job run again at the restart, as any run cut short is).
        #expect(try first.ctl(["submit", "--delay", "1h", "sleep:1"]).status == 0)
        first.signal(SIGKILL)
        _ = first.waitForExit()

        let second = try TestDaemon(arguments, stateDirectory: folder.state)
        let restored = try Self.job(1, second)
        #expect(restored.state == .queued && restored.history.count == 1)
        #expect(abs((restored.retryAt ?? 0) - retryAt) < 0.5, "retry at \(String(describing: restored.retryAt)), was \(retryAt)")
        Thread.sleep(forTimeInterval: 1)
        let runs = try DurabilityTests.runs(in: folder.executionLog)
        #expect(runs[1] == 1, "the retry ran before its delay ended: \(runs)\n\(second.log())")
        #expect(try second.ctl(["cancel", "1", "2"]).status == 0)
    }
}
