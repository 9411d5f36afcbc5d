import ConcurProtocol
import ConcurTestSupport
import Foundation
import Synchronization
import Testing
import Varlink

/// The job journal on the real daemon: nothing accepted is lost to a kill -9 or a restart.
@Suite("Durability of accepted jobs", .serialized)
struct DurabilityTests {
    /// A folder that outlives each daemon of a test (its state directory and execution log).
    final class Folder {
        let path: String
        init() throws {
            path = NSTemporaryDirectory() + "concur-durable-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        var state: String { path + "/state" }
        var executionLog: String { path + "/execution.log" }
    }

    /// Every `start ID` line of the execution log, counted by id.
    static func runs(in log: String) throws -> [UInt64: Int] {
        var runs: [UInt64: Int] = [:]
        for line in try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, fields[0] == "start", let id = UInt64(fields[1]) { runs[id, default: 0] += 1 }
        }
        return runs
    }

    /// Jobs that ran again after a run of theirs had ended done at least `margin` before the
    /// next kill (nanoseconds of CLOCK_MONOTONIC, the execution log's clock): their finish should
    /// have been in the journal by then. The log's order is the order of its lines' writes.
    static func rerunAfterRecordedFinish(in log: String, kills: [UInt64], margin: UInt64) throws -> [UInt64] {
        var ended: [UInt64: UInt64] = [:]
        var stale: Set<UInt64> = []
        for line in try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 2, let id = UInt64(fields[1]) else { continue }
            if fields[0] == "end", fields.count >= 4, fields[2] == "done", let time = UInt64(fields[3]) {
                ended[id] = ended[id] ?? time
            } else if fields[0] == "start", let time = ended[id],
                // An end written just after a kill came from the dying process: it could not be
                // recorded, and runs again rightly.
                !kills.contains(where: { $0 <= time && time - $0 < 200_000_000 }),
                let kill = kills.first(where: { $0 > time }), kill - time >= margin
            {
                stale.insert(id)
            }
        }
        return stale.sorted()
    }

    /// Now on CLOCK_MONOTONIC, in nanoseconds (the execution log's clock).
    static func monotonicNow() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// The execution log's lines about `ids`, for a failure's message.
    static func lines(of ids: some Sequence<UInt64>, in log: String) throws -> [String] {
        let wanted = Set(ids.map(String.init))
        return try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").filter { line in
            let fields = line.split(separator: " ")
            return fields.count >= 2 && wanted.contains(String(fields[1]))
        }.map(String.init)
    }

    /// The states of `ids` as `ListJobs` reports them.
    static func states(of ids: [UInt64], daemon: TestDaemon) throws -> [UInt64: JobState] {
        let connection = try VarlinkConnection(unixPath: daemon.socket, receiveTimeout: 30)
        defer { connection.close() }
        var states: [UInt64: JobState] = [:]
        for start in stride(from: 0, to: ids.count, by: 1_000) {
            let chunk = Array(ids[start..<min(ids.count, start + 1_000)])
            let reply = try connection.call(
                SupervisorInterface.method(.listJobs), ["ids": .array(chunk.map { .int(Int64($0)) })])
            guard case .array(let jobs) = reply["jobs"] ?? .null else { throw TestFailure("no jobs in \(reply)") }
            for job in jobs {
                let info = try JobInfo(json: job, path: "job")
                states[info.id] = info.state
            }
        }
        return states
    }

    @Test(
        "kill -9 at random moments under a steady workload, 6 times: every accepted job ends, duplicates stay within the jobs in flight"
    )
    func crashRecovery() throws {
        let folder = try Folder()
        let models = ["threads", "processes", "tasks"]
        var generator = SystemRandomNumberGenerator()
        let kills = 6
        var rounds = KillRounds()
        for round in 0..<kills {
            // A steady workload: a batch of 20 short jobs every ~10 ms, from one client, while
            // the daemon is killed at a random moment.
            try rounds.run(
                folder: folder, arguments: ["--workers", "4", "--model", models[round % models.count]],
                killAfter: Double.random(in: 0.3...1.2, using: &generator), pause: 0.01
            ) {
                (0..<20).map { index in
                    index % 4 == 0
                        ? .object(["kind": "cpu", "size": .double(0.02)])
                        : .object(["kind": "sleep", "ms": .int(Int64.random(in: 1...15))])
                }
            }
        }
        // The last start runs everything that is left, then drains.
        let daemon = try rounds.lastStart(folder: folder)
        let (accepted, killTimes, inFlight) = (rounds.accepted, rounds.killTimes, rounds.inFlight)
        let states = try Self.states(of: accepted, daemon: daemon)
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit() == 0, "\(daemon.log())")

        #expect(accepted.count > 500, "the workload was too small to mean anything: \(accepted.count) jobs")
        #expect(Set(accepted).count == accepted.count, "an id was given twice")
        let lost = accepted.filter { states[$0] != .done }
        #expect(
            lost.isEmpty,
            "accepted jobs not done: \(lost.prefix(20)) (states \(lost.prefix(20).map { states[$0].map(\.rawValue) ?? "unknown" }))"
        )
        let runs = try Self.runs(in: folder.executionLog)
        let neverRan = accepted.filter { runs[$0] == nil }
        #expect(neverRan.isEmpty, "accepted jobs that never ran: \(neverRan.prefix(20))")
        let duplicates = runs.values.reduce(0) { $0 + max(0, $1 - 1) }
        #expect(inFlight > 0, "no kill landed while jobs ran; the test proved nothing about them")
        #expect(
            duplicates <= inFlight,
            "\(duplicates) repeated runs, more than the \(inFlight) jobs the journal held in flight at the \(kills) kills")
        let stale = try Self.rerunAfterRecordedFinish(in: folder.executionLog, kills: killTimes, margin: 1_000_000_000)
        let staleLines = try Self.lines(of: stale.prefix(3), in: folder.executionLog)
        #expect(
            stale.isEmpty,
            "jobs ran again although they had finished 1 s or more before a kill: \(stale.prefix(10)); kills at \(killTimes); \(staleLines)"
        )
        print(
            "crash recovery: \(accepted.count) jobs accepted over \(kills) kills, \(inFlight) in flight, \(duplicates) ran twice")
    }

    /// Rounds of a daemon started on one state directory, fed batches by one client, and
    /// killed with SIGKILL at a set moment: what was accepted, when each kill came, and what the
    /// journal found in flight at each start.
    struct KillRounds {
        var accepted: [UInt64] = []
        var killTimes: [UInt64] = []
        var inFlight = 0

        /// One round: a daemon with `arguments`, a batch from `batch` every `pause` seconds
        /// until the kill after `killAfter` seconds ends it.
        mutating func run(
            folder: Folder, arguments: [String], killAfter: Double, pause: Double, batch: () -> [JSON]
        ) throws {
            let daemon = try TestDaemon(
                // Workers at the control plane's priority: on a machine busy with other tests, nice
                // workers can wait hundreds of milliseconds for a core, and the check below is
                // about the journal, not the scheduler.
                arguments + [
                    "--max-attempts", "20", "--execution-log", folder.executionLog, "--retain-jobs", "1000000",
                    "--worker-nice", "0",
                ],
                stateDirectory: folder.state)
            inFlight += try DurabilityTests.inFlight(in: daemon.log())
            let pid = daemon.pid
            let killed = Mutex<UInt64>(0)
            let killer = Thread {
                Thread.sleep(forTimeInterval: killAfter)
                killed.withLock { $0 = DurabilityTests.monotonicNow() }
                kill(pid, SIGKILL)
            }
            killer.start()
            let connection = try VarlinkConnection(unixPath: daemon.socket, receiveTimeout: 10)
            while true {
                guard let reply = try? connection.call(SupervisorInterface.method(.submit), ["jobs": .array(batch())]) else {
                    break
                }
                guard case .array(let ids) = reply["ids"] ?? .null else { throw TestFailure("no ids in \(reply)") }
                accepted += ids.compactMap { if case .int(let id) = $0 { UInt64(id) } else { nil } }
                Thread.sleep(forTimeInterval: pause)
            }
            connection.close()
            #expect(daemon.waitForExit(timeout: 10) != nil)
            killTimes.append(killed.withLock { $0 })
        }

        /// The start after the last kill, once it has run everything left (still running).
        mutating func lastStart(folder: Folder) throws -> TestDaemon {
            let daemon = try TestDaemon(
                ["--workers", "4", "--execution-log", folder.executionLog, "--retain-jobs", "1000000"],
                stateDirectory: folder.state)
            inFlight += try DurabilityTests.inFlight(in: daemon.log())
            #expect(
                try eventually(120) {
                    let status = try daemon.status()
                    return status.queued == 0 && status.running == 0
                })
            return daemon
        }
    }

    /// The jobs in flight that the start-up found (the journal's log line).
    static func inFlight(in log: String) throws -> Int {
        guard let line = log.split(separator: "\n").first(where: { $0.contains("job journal ") }),
            let field = line.split(separator: " ").first(where: { $0.hasPrefix("in_flight=") }),
            let count = Int(field.dropFirst("in_flight=".count))
        else { throw TestFailure("no journal line in:\n\(log)") }
        return count
    }

    @Test(
        "kill -9 with batches where a long job follows many short ones: a job that had finished is not run again after the restart",
        arguments: ["threads", "tasks", "processes"])
    func finishedJobsStayFinished(model: String) throws {
        let folder = try Folder()
        var generator = SystemRandomNumberGenerator()
        let kills = 3
        var rounds = KillRounds()
        for _ in 0..<kills {
            try rounds.run(
                folder: folder, arguments: ["--workers", "2", "--model", model],
                killAfter: Double.random(in: 1.0...2.5, using: &generator), pause: 0.1
            ) {
                Array(repeating: .object(["kind": "cpu", "size": .double(0)]), count: 150) + [
                    .object(["kind": "sleep", "ms": 1500])
                ]
            }
        }
        let daemon = try rounds.lastStart(folder: folder)
        let (accepted, killTimes, inFlight) = (rounds.accepted, rounds.killTimes, rounds.inFlight)
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit() == 0, "\(daemon.log())")
        let runs = try Self.runs(in: folder.executionLog)
        #expect(accepted.allSatisfy { runs[$0] != nil }, "an accepted job never ran")
        let repeated = runs.values.reduce(0) { $0 + max(0, $1 - 1) }
        let stale = try Self.rerunAfterRecordedFinish(in: folder.executionLog, kills: killTimes, margin: 1_000_000_000)
        #expect(
            stale.isEmpty,
            "\(stale.count) jobs ran again after a kill although they had finished 1 s or more before it: \(stale.prefix(10))")
        #expect(repeated <= inFlight, "\(repeated) repeated runs, more than the \(inFlight) in flight")
        print(
            "finished jobs after kill -9 (\(model)): \(accepted.count) jobs over \(kills) kills, \(inFlight) in flight, \(repeated) ran twice (\(String(format: "%.1f", Double(repeated) / Double(kills))) per kill)"
        )
    }

    @Test(
        "a job's finish is in the journal file soon after it ends, even while a long job runs behind it in the same batch",
        arguments: ["threads", "tasks", "processes"])
    func finishesReachTheFile(model: String) throws {
        let folder = try Folder()
        let daemon = try TestDaemon(["--workers", "1", "--model", model, "--worker-nice", "0"], stateDirectory: folder.state)
        // Many no-op jobs first: the worker's batches grow to hundreds.
        #expect(
            try daemon.ctl(["submit", "--jobs", "5000", "--kind", "cpu", "--scale", "0", "--wait"], timeout: 120).status == 0)
        // Then 300 more with a long one last: the last batch holds finished jobs and the long one.
        let connection = try VarlinkConnection(unixPath: daemon.socket, receiveTimeout: 10)
        let jobs: [JSON] =
            Array(repeating: .object(["kind": "cpu", "size": .double(0)]), count: 300) + [.object(["kind": "sleep", "ms": 5000])]
        let reply = try connection.call(SupervisorInterface.method(.submit), ["jobs": .array(jobs)])
        guard case .array(let ids) = reply["ids"] ?? .null, case .int(let first)? = ids.first, case .int(let last)? = ids.last
        else { throw TestFailure("no ids in \(reply)") }
        #expect(
            try eventually(20) { try daemon.ctl(["jobs", "--state", "running", "--json"]).stdout.contains("\"id\":\(last)") })
        // While the long job runs, every short one before it is recorded done in the file itself.
        let query = "SELECT COUNT(*) FROM jobs WHERE id BETWEEN \(first) AND \(last - 1) AND state = 3"
        var recorded = ""
        #expect(
            try eventually(1) {
                let result = try runCommand(
                    URL(fileURLWithPath: "/usr/bin/env"),
                    [
                        "python3", "-c",
                        "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])",
                        folder.state + "/journal.sqlite", query,
                    ])
                recorded = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                return recorded == "300"
            }, "\(recorded) of 300 finished jobs in the journal while the long job runs")
        #expect(try daemon.status().running == 1, "the long job ended before the check")
        daemon.signal(SIGQUIT)
        _ = daemon.waitForExit()
    }

    @Test("a graceful restart with a full queue: every queued job runs after it, once")
    func restartWithFullQueue() throws {
        let folder = try Folder()
        let arguments = ["--workers", "1", "--max-queue", "300", "--execution-log", folder.executionLog]
        let first = try TestDaemon(arguments, stateDirectory: folder.state)
        // One job runs; the paused worker then takes no more, and the queue fills up.
        #expect(try first.ctl(["submit", "sleep:300"]).status == 0)
        #expect(try eventually { try first.status().running == 1 })
        #expect(try first.ctl(["pause"]).status == 0)
        let submitted = try first.ctl(["submit"] + Array(repeating: "sleep:20", count: 300))
        #expect(submitted.status == 0, "\(submitted)")
        let full = try first.ctl(["submit", "sleep:1"])
        #expect(full.status != 0 && full.stderr.contains("no room"), "\(full)")
        first.signal(SIGTERM)
        #expect(first.waitForExit() == 0, "\(first.log())")
        #expect(first.log().contains("unfinished kept queued in the journal for the next start"), "\(first.log())")
        #expect(try Self.runs(in: folder.executionLog) == [1: 1])

        let second = try TestDaemon(["--workers", "4"] + arguments.dropFirst(2), stateDirectory: folder.state)
        #expect(second.log().contains("300 queued, 1 finished kept"), "\(second.log())")
        #expect(second.log().contains("in_flight=0"), "a drain left jobs in flight:\n\(second.log())")
        #expect(
            try eventually(60) {
                let status = try second.status()
                return status.queued == 0 && status.running == 0
            })
        let states = try Self.states(of: Array(1...301), daemon: second)
        #expect(states.values.filter { $0 == .done }.count == 301)
        let runs = try Self.runs(in: folder.executionLog)
        #expect(
            runs.count == 301 && runs.values.allSatisfy { $0 == 1 },
            "runs: \(runs.count), repeated: \(runs.filter { $0.value != 1 })")
        // New ids continue after the journal's.
        let next = try second.ctl(["submit", "sleep:1", "--json"])
        #expect(next.stdout.contains("302"), "\(next)")
    }

    @Test("a corrupt journal stops concurd at start with what to do; --ephemeral runs without one")
    func corruptJournal() throws {
        let folder = try Folder()
        try FileManager.default.createDirectory(atPath: folder.state, withIntermediateDirectories: true)
        try Data(repeating: 0x42, count: 4096).write(to: URL(fileURLWithPath: folder.state + "/journal.sqlite"))
        let refused = try runCommand(
            Binaries.concurd, ["--socket", folder.path + "/s.sock", "--state-directory", folder.state], timeout: 20)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("is damaged or not a job journal"), "\(refused)")
        #expect(refused.stderr.contains("mv \(folder.state)/journal.sqlite"), "\(refused)")
        let ephemeral = try TestDaemon(["--ephemeral"])
        #expect(try ephemeral.status().phase == .serving)
        #expect(ephemeral.log().contains("ephemeral: jobs are kept in memory only"))
    }
}
