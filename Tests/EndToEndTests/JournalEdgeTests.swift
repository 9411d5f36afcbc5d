import ConcurProtocol
import ConcurTestSupport
import Foundation
import Testing
import Varlink

/// The journal at the edges, on the real daemon: a full disk, a state directory deleted under
/// it, and files no concurd wrote.
@Suite("The job journal at the edges", .serialized, .enabled(if: getuid() == 0))
struct JournalEdgeTests {
    @Test(
        "a full disk: status and STATUS= say degraded, nothing starts, the log names what waits; with room again all is recorded, and nothing runs twice after a restart"
    )
    func fullDisk() throws {
        let disk = try TinyDisk(bytes: 4 << 20)
        let folder = try DurabilityTests.Folder()
        let state = disk.path + "/state"
        let listener = try NotifyListener(path: folder.path + "/notify.sock")
        let arguments = ["--workers", "2", "--execution-log", folder.executionLog]
        let daemon = try TestDaemon(arguments, stateDirectory: state, environment: ["NOTIFY_SOCKET": listener.path])
        // Long enough that a loaded machine's polls still see two running.
        #expect(try daemon.ctl(["submit"] + Array(repeating: "sleep:2000", count: 6)).status == 0)
        #expect(try eventually { try daemon.status().running == 2 })
        disk.fill()
        // SQLite reuses the room its write-ahead log already has: commits go on until the log
        // must grow. Jobs keep coming (a few a call) until a submit is refused.
        var accepted = 6
        let connection = try VarlinkConnection(unixPath: daemon.socket, receiveTimeout: 10)
        let more: [JSON] = Array(repeating: .object(["kind": "sleep", "ms": 1]), count: 4)
        while accepted < 20_000, (try? connection.call(SupervisorInterface.method(.submit), ["jobs": .array(more)])) != nil {
            accepted += more.count
        }
        #expect(try eventually(10) { try daemon.status().phase == .degraded }, "\(daemon.log())")
        let status = try daemon.status()
        #expect(status.warnings.contains { $0.contains("cannot record") }, "\(status.warnings)")
        #expect(listener.receive(until: "STATUS=degraded, the job journal cannot record", timeout: 10) != nil)
        let refused = try daemon.ctl(["submit", "sleep:1"])
        #expect(refused.status == 1 && refused.stderr.contains("cannot record jobs in its journal"), "\(refused)")
        // The jobs running when it failed finish; the queued ones do not start.
        let atFailure = try daemon.status()
        #expect(try eventually(10) { try daemon.status().running == 0 })
        Thread.sleep(forTimeInterval: 0.5)
        let waiting = try daemon.status()
        #expect(waiting.running == 0 && waiting.queued == atFailure.queued, "\(atFailure) then \(waiting)")
        #expect(waiting.totals.done == atFailure.totals.done + atFailure.running, "\(atFailure) then \(waiting)")
        #expect(waiting.queued > 0, "the disk filled too late to leave a job waiting")
        let failure = try #require(daemon.log().split(separator: "\n").first { $0.contains("not recorded yet:") })
        #expect(failure.contains("critical") && failure.contains(where: \.isNumber), "\(failure)")

        disk.free()
        #expect(try eventually(15) { try daemon.status().phase == .serving }, "\(daemon.log())")
        #expect(daemon.log().contains("the job journal records again"))
        // The jobs of the refused call were accepted (they waited in the queue): they run too.
        #expect(try eventually(60) { try daemon.status().queued == 0 && daemon.status().running == 0 })
        let done = try daemon.status().totals.done
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit() == 0, "\(daemon.log())")

        let next = try TestDaemon(arguments, stateDirectory: state)
        #expect(next.log().contains("0 queued") && next.log().contains("in_flight=0"), "\(next.log())")
        let runs = try DurabilityTests.runs(in: folder.executionLog)
        #expect(
            done >= accepted && runs.count == done, "\(done) done, \(runs.count) ran, \(accepted) accepted before the refusal")
        #expect(runs.values.allSatisfy { $0 == 1 }, "ran twice: \(runs.filter { $0.value > 1 }.keys.sorted().prefix(10))")
    }

    @Test("a small disk that holds only the journal: its write-ahead log never fills it, and every job is kept")
    func smallDisk() throws {
        let disk = try TinyDisk(bytes: 3 << 20)
        let daemon = try TestDaemon(["--workers", "2"], stateDirectory: disk.path + "/state")
        let connection = try VarlinkConnection(unixPath: daemon.socket, receiveTimeout: 30)
        let noop: [JSON] = Array(repeating: .object(["kind": "cpu", "size": .double(0)]), count: 5)
        for call in 0..<400 {
            do {
                _ = try connection.call(SupervisorInterface.method(.submit), ["jobs": .array(noop)])
            } catch {
                Issue.record("submit \(call) was refused: \(error)\n\(daemon.log())")
                break
            }
        }
        #expect(try eventually(30) { try daemon.status().totals.done == 2_000 })
        #expect(!daemon.log().contains("cannot record"), "\(daemon.log())")
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit() == 0)
        let next = try TestDaemon(["--workers", "2"], stateDirectory: disk.path + "/state")
        #expect(next.log().contains("0 queued, 2000 finished kept"), "\(next.log())")
    }

    @Test("a state directory deleted while concurd runs: submits are refused, and the stop does not claim to keep what it cannot")
    func deletedStateDirectory() throws {
        let folder = try DurabilityTests.Folder()
        let daemon = try TestDaemon(["--workers", "1"], stateDirectory: folder.state)
        #expect(try daemon.ctl(["pause"]).status == 0)
        #expect(try daemon.ctl(["submit", "sleep:1", "sleep:1", "sleep:1"]).status == 0)
        try FileManager.default.removeItem(atPath: folder.state)
        #expect(
            try eventually(5) {
                let result = try daemon.ctl(["submit", "sleep:1"])
                return result.status == 1 && result.stderr.contains("was deleted")
            }, "\(daemon.log())")
        #expect(try daemon.status().phase == .degraded)
        daemon.signal(SIGTERM)
        _ = daemon.waitForExit()
        let log = daemon.log()
        #expect(!log.contains("kept queued in the journal for the next start"), "\(log)")
        #expect(log.contains("unfinished jobs could not be kept for the next start"), "\(log)")
    }

    /// Starts concurd on `state`; what it printed and how it ended.
    static func start(_ folder: DurabilityTests.Folder) throws -> CommandResult {
        try runCommand(Binaries.concurd, ["--socket", folder.path + "/s.sock", "--state-directory", folder.state], timeout: 20)
    }

    /// A state directory whose journal holds three queued jobs.
    static func journal(_ folder: DurabilityTests.Folder) throws {
        let daemon = try TestDaemon(["--workers", "1"], stateDirectory: folder.state)
        #expect(try daemon.ctl(["pause"]).status == 0)
        #expect(try daemon.ctl(["submit", "sleep:1", "sleep:2", "sleep:3"]).status == 0)
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit() == 0)
    }

    @Test("an empty journal next to its lock is refused as damaged, not started empty")
    func emptyJournal() throws {
        let folder = try DurabilityTests.Folder()
        try Self.journal(folder)
        #expect(truncate(folder.state + "/journal.sqlite", 0) == 0)
        let refused = try Self.start(folder)
        #expect(refused.status == 1 && refused.stderr.contains("is empty (0 bytes) where a journal was"), "\(refused)")
    }

    @Test(
        "a value out of range in the journal stops the start with a message, not a crash",
        arguments: [
            ("UPDATE jobs SET attempts = -5 WHERE id = 2", "job 2: attempts is -5"),
            ("UPDATE jobs SET id = 9223372036854775807 WHERE id = 3", "id is 9223372036854775807"),
        ])
    func outOfRange(sql: String, message: String) throws {
        let folder = try DurabilityTests.Folder()
        try Self.journal(folder)
        let edit = try runCommand(
            URL(fileURLWithPath: "/usr/bin/env"),
            [
                "python3", "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()",
                folder.state + "/journal.sqlite", sql,
            ])
        #expect(edit.status == 0, "\(edit)")
        let refused = try Self.start(folder)
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stderr.contains(message), "\(refused)")
    }
}
