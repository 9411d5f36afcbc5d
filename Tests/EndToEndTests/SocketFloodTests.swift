import ConcurProtocol
import ConcurTestSupport
import Foundation
import Testing
import Varlink

/// Clients that flood, pipeline without reading, watch without reading, or exhaust the daemon's
/// descriptors: each costs the daemon a bounded amount, and a well-behaved client is served
/// throughout. Bounds here are gross (the figures are in the benchmark).
@Suite("Floods and clients that never read", .serialized)
struct SocketFloodTests {
    static let script = Binaries.clients.appendingPathComponent("attack_client.py").path

    static func python(_ arguments: [String], timeout: Double = 120) throws -> JSONObject {
        let result = try runCommand(URL(fileURLWithPath: "/usr/bin/env"), ["python3", script] + arguments, timeout: timeout)
        guard result.status == 0, let line = result.lines.last,
            case .object(let object) = try JSON.parse(line)
        else { throw TestFailure("attack_client \(arguments): \(result)") }
        return object
    }

    static func number(_ value: JSON?) -> Double {
        switch value {
        case .int(let number)?: Double(number)
        case .double(let number)?: number
        default: .nan
        }
    }

    /// The daemon's resident memory (VmRSS), from /proc.
    static func residentBytes(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kilobytes * 1024
    }

    /// CPU ticks (user + system) the process has used.
    static func cpuTicks(_ pid: Int32) -> Int {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
    }

    @Test("clients that pipeline thousands of calls and never read are closed; a well-behaved client is answered meanwhile")
    func pipeliningWithoutReading() throws {
        let daemon = try TestDaemon(["--workers", "2", "--ephemeral"])
        let report = try Self.python(["pipeline", daemon.socket, "10", "20000", "300"])
        guard case .array(let flooders) = report["flooders"] ?? .null else { throw TestFailure("\(report)") }
        let closed = flooders.filter { if case .object(let flooder) = $0 { flooder["closed"] == true } else { false } }
        #expect(closed.count == 10, "flooders still open: \(flooders)")
        #expect(Self.number(report["status_p99_ms"]) < 250, "Status p99 while flooded: \(report)")
        #expect(Self.residentBytes(daemon.pid) < 150 << 20, "RSS \(Self.residentBytes(daemon.pid))")
        #expect(daemon.log().contains("closing a connection that sent more than 64 calls without reading the replies"))
        #expect(try daemon.status().phase == .serving)
    }

    @Test("watchers that never read are cut off at their share of memory, with a log line; the jobs all run")
    func unreadWatchers() throws {
        let daemon = try TestDaemon(["--workers", "2", "--ephemeral", "--max-queue", "1000000"])
        let watchers = try ChildProcess("/usr/bin/env", ["python3", Self.script, "watchers", daemon.socket, "30", "60"])
        defer {
            watchers.signal(SIGKILL)
            _ = watchers.wait(timeout: 10)
        }
        Thread.sleep(forTimeInterval: 2)  // the watchers connect and start watching
        let jobs = 300_000
        #expect(try daemon.ctl(["submit", "--jobs", String(jobs), "--kind", "cpu", "--scale", "0"]).status == 0)
        var peak = 0
        #expect(
            try eventually(120) {
                peak = max(peak, Self.residentBytes(daemon.pid))
                return try daemon.status().totals.done == jobs
            })
        let cutOff = daemon.log().components(separatedBy: "dropping a watcher of jobs").count - 1
        #expect(cutOff == 30, "\(cutOff) of 30 watchers cut off")
        #expect(peak < 250 << 20, "peak RSS \(peak)")
        #expect(try daemon.status().phase == .serving)
    }

    @Test(
        "clients that ask for long lists and never read: Status stays prompt, those leaving the most unread are closed, and concurctl still lists 10,000 jobs"
    )
    func unreadLists() throws {
        let daemon = try TestDaemon(["--workers", "1", "--ephemeral"])
        #expect(try daemon.ctl(["pause"]).status == 0)
        #expect(try daemon.ctl(["submit", "--jobs", "10000", "--kind", "sleep"]).status == 0)
        // 150 lists of 4,000 jobs (about 500 kB each, most of it left unread): past the 32 MiB all may leave unread.
        let listers = try ChildProcess(
            "/usr/bin/env", ["python3", Self.script, "lists", daemon.socket, "150", "4000", "100", "60"])
        defer {
            listers.signal(SIGKILL)
            _ = listers.wait(timeout: 10)
        }
        var peak = 0
        var slowest = 0.0
        let connection = try VarlinkConnection(unixPath: daemon.socket, receiveTimeout: 30)
        #expect(
            try eventually(90) {
                peak = max(peak, Self.residentBytes(daemon.pid))
                let start = Date()
                _ = try connection.call(SupervisorInterface.method(.status))
                slowest = max(slowest, Date().timeIntervalSince(start) * 1_000)
                return daemon.log().contains("all clients together left more than 32 MiB")
            }, "\(daemon.log())")
        #expect(slowest < 1_000, "the slowest Status took \(slowest) ms")
        #expect(peak < 250 << 20, "peak RSS \(peak)")
        let listed = try daemon.ctl(["jobs", "--limit", "10000", "--state", "queued"])
        #expect(listed.status == 0 && listed.lines.count == 10_001, "\(listed.lines.count) lines")
        #expect(try daemon.status().phase == .serving)
    }

    @Test(
        "out of file descriptors: no spinning, a log line a second, the open connections served, new ones again once there is room"
    )
    func outOfDescriptors() throws {
        let daemon = try TestDaemon(["--workers", "1", "--ephemeral"])
        let kept = try VarlinkConnection(unixPath: daemon.socket, receiveTimeout: 10)
        let limited = try runCommand(URL(fileURLWithPath: "/usr/bin/prlimit"), ["--pid", String(daemon.pid), "--nofile=48:48"])
        #expect(limited.status == 0, "\(limited)")
        let holder = try ChildProcess("/usr/bin/env", ["python3", Self.script, "hold", daemon.socket, "200", "4"])
        defer {
            holder.signal(SIGKILL)
            _ = holder.wait(timeout: 10)
        }
        Thread.sleep(forTimeInterval: 1)
        let before = Self.cpuTicks(daemon.pid)
        Thread.sleep(forTimeInterval: 2)
        let used = Self.cpuTicks(daemon.pid) - before
        #expect(used < 60, "the daemon used \(used) ticks of CPU in 2 s while out of descriptors")
        #expect(try kept.call(SupervisorInterface.method(.status))["status"] != nil)
        let lines = daemon.log().components(separatedBy: "cannot accept connections: Too many open files").count - 1
        #expect(lines >= 1 && lines <= 6, "\(lines) log lines about it\n\(daemon.log())")
        let held = try #require(holder.finish(timeout: 20))
        #expect(held.status == 0)
        // Those beyond the limit were accepted and closed at once, not left hanging.
        if case .object(let report)? = try? JSON.parse(held.output.split(separator: "\n").last.map(String.init) ?? "") {
            #expect(Self.number(report["closed"]) > 0, "\(report)")
        } else {
            Issue.record("no report from the holder: \(held.output)")
        }
        #expect(try eventually(10) { try daemon.ctl(["status"]).status == 0 })
    }

    @Test("peers that may not call cannot evict a connection that may, however many they open", .enabled(if: getuid() == 0))
    func refusedPeersDoNotEvict() throws {
        let daemon = try TestDaemon(["--workers", "1", "--ephemeral"])
        chmod(URL(fileURLWithPath: daemon.socket).deletingLastPathComponent().path, 0o755)
        chmod(daemon.socket, 0o666)
        let root = try VarlinkConnection(unixPath: daemon.socket, receiveTimeout: 10)
        let holder = try ChildProcess(
            "/usr/bin/setpriv",
            [
                "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/env", "python3", Self.script, "hold",
                daemon.socket, "300", "3",
            ])
        defer {
            holder.signal(SIGKILL)
            _ = holder.wait(timeout: 10)
        }
        #expect(eventually(15) { daemon.log().contains("closed an idle connection to make room") }, "\(daemon.log())")
        // root's idle connection is still there: it answers.
        #expect(try root.call(SupervisorInterface.method(.status))["status"] != nil)
        #expect(holder.wait(timeout: 20) == 0)
    }
}
