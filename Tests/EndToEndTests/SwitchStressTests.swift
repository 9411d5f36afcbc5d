import ConcurProtocol
import ConcurTestSupport
import Foundation
import Synchronization
import Testing
import Varlink

/// Live model switching on the real daemon: a steady stream of mixed jobs while a driver
/// switches between two models (graceful and preempting, now and then two at once) and resizes,
/// through the real `concurctl`. Every run of every job is recorded where it runs (the daemon's
/// execution log), apart from the pool's bookkeeping.
@Suite("Model switching on the real daemon")
struct SwitchStressTests {
    /// Seconds the driver switches for (CONCUR_STRESS_SECONDS, default 20).
    static let seconds = Double(ProcessInfo.processInfo.environment["CONCUR_STRESS_SECONDS"] ?? "") ?? 20

    /// Every pair of models, with child processes spawned; and once with the forkserver.
    static let pairs: [(ConcurrencyModel, ConcurrencyModel, String)] = [
        (.threads, .processes, "spawn"), (.threads, .tasks, "spawn"), (.processes, .tasks, "spawn"),
        (.processes, .tasks, "forkserver"),
    ]

    @Test(
        "jobs keep flowing through random switches and resizes: each done exactly once, nothing left over",
        .timeLimit(.minutes(5)), arguments: pairs)
    func stress(first: ConcurrencyModel, second: ConcurrencyModel, startMethod: String) throws {
        let executionLog = FileManager.default.temporaryDirectory.appendingPathComponent("concur-exec-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: executionLog) }
        let daemon = try TestDaemon([
            "--workers", "4", "--model", first.rawValue, "--max-workers", "8", "--execution-log", executionLog.path,
            "--start-method", startMethod,
        ])
        var random = SystemRandomNumberGenerator()
        let watcher = try Watcher(socket: daemon.socket)
        // Probe jobs until the watcher sees one: from then on it sees every job that ends.
        var probes = 0
        var watching = false
        for _ in 0..<20 where !watching {
            let reply = try daemon.ctlJSON(["submit", "sleep:0"])
            probes += 1
            guard case .array(let ids) = reply["ids"], case .int(let id) = ids.first else { continue }
            watching = eventually(2) { watcher.saw(UInt64(id)) }
        }
        try #require(watching, "the watcher never saw a job")
        let submitter = Submitter(socket: daemon.socket)

        // A control command that does not return in time fails the test with what the daemon
        // was doing.
        func control(_ arguments: [String]) throws -> CommandResult {
            do {
                return try daemon.ctl(arguments, timeout: 30)
            } catch {
                let stats = (try? daemon.ctl(["stats", "--json"], timeout: 10).stdout) ?? "no stats"
                // Every thread of the daemon and of its descendants: state, and where it waits.
                let script = """
                    for p in \(daemon.pid) $(pgrep -P \(daemon.pid)) $(for c in $(pgrep -P \(daemon.pid)); do pgrep -P $c; done); do
                      for t in /proc/$p/task/*; do echo "$p $(cat $t/comm) $(cut -d' ' -f3 $t/stat) $(cat $t/wchan)"; done
                    done
                    if [ -n "$CONCUR_DEBUG_GDB" ]; then
                      for c in $(pgrep -P \(daemon.pid)); do for g in $(pgrep -P $c); do
                        gdb -p $g -batch -ex 'thread apply all bt 8' 2>/dev/null | grep -E '^#|^Thread'
                      done; done
                    fi
                    """
                let threads = (try? runCommand(URL(fileURLWithPath: "/bin/sh"), ["-c", script]).stdout) ?? ""
                throw TestFailure("\(error)\nstats: \(stats)\nthreads: \(threads)\nlog:\n\(daemon.log().suffix(6000))")
            }
        }

        // The driver.
        let deadline = Date().addingTimeInterval(Self.seconds)
        var switches = 0  // those concurctl saw change the model
        var superseded = 0
        var seenPIDs = Set<Int32>()
        while Date() < deadline {
            usleep(UInt32.random(in: 100_000...300_000, using: &random))
            let target = Bool.random(using: &random) ? first : second
            let preempt = Bool.random(using: &random) ? ["--preempt"] : []
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<5:
                let result = try control(["model", target.rawValue] + preempt)
                #expect(result.status == 0, "\(result)")
                if result.stdout.contains(" -> ") { switches += 1 }
            case 5:
                // Two switches at once, in either order: one may replace the other.
                let other = target == first ? second : first
                let background = try daemon.startCtl(["model", target.rawValue] + preempt)
                let foreground = try control(["model", other.rawValue])
                let backgroundResult = try #require(background.finish())
                let outcomes = [(foreground.status, foreground.stderr), (backgroundResult.status, background.output().stderr)]
                switches += [foreground.stdout, backgroundResult.output].filter { $0.contains(" -> ") }.count
                #expect(outcomes.contains { $0.0 == 0 }, "\(outcomes)")
                for (status, stderr) in outcomes where status != 0 {
                    superseded += 1
                    #expect(stderr.contains("another switch"), "\(stderr)")
                }
            default:
                let workers = Int.random(in: 1...8, using: &random)
                let result = try control(["resize", "--workers", "\(workers)"])
                #expect(result.status == 0, "\(result)")
            }
            for child in ProcEntry.children(of: daemon.pid) {
                seenPIDs.insert(child.pid)
                for grandchild in ProcEntry.children(of: child.pid) { seenPIDs.insert(grandchild.pid) }
            }
        }
        let streamed = submitter.stop()
        #expect(streamed > 100, "too few jobs to mean anything")
        let submitted = streamed + probes

        // Every job reaches its end.
        let finished = eventually(120) { (try? daemon.status().totals.finished) == submitted }
        let status = try daemon.status()
        try #require(finished, "jobs left: \(status)")
        #expect(status.totals.submitted == submitted)
        #expect(status.totals.done == submitted, "\(status.totals)")
        #expect(status.queued == 0 && status.running == 0)
        #expect(status.switches >= switches && switches >= 3, "\(switches) switches seen by concurctl")

        // The watcher saw each job end once, done.
        #expect(eventually(10) { watcher.count == streamed + 1 })
        let ends = watcher.snapshot()
        #expect(ends.count == streamed + 1)
        #expect(ends.values.allSatisfy { $0 == [.done] }, "a job ended twice or not done")

        // Each job ran to the end exactly once; every run that started ended.
        let runs = try ExecutionRecord(contentsOf: executionLog)
        #expect(runs.done.count == submitted)
        #expect(runs.done.values.allSatisfy { $0 == 1 }, "a job ran to the end twice")
        #expect(runs.unfinished.isEmpty, "runs that never ended: \(runs.unfinished.prefix(10))")
        #expect(runs.other.isEmpty, "runs that failed: \(runs.other.prefix(10))")
        // Without crashes, a job runs again only after a preempted run.
        #expect(status.totals.retried == runs.cancelled)

        // No worker left over: exactly the target, of the model, and nothing else running.
        let stats = try daemon.stats()
        let model = stats.status.model
        #expect(stats.workers.count == stats.status.workers.target)
        #expect(stats.workers.allSatisfy { $0.model == model && $0.state != .retiring })
        #expect(stats.status.handingOver == 0)
        // Spawned workers are the daemon's children; forked ones, the forkserver's.
        let helpers = startMethod == "forkserver" ? ProcEntry.children(of: daemon.pid) : []
        let children = (helpers.isEmpty ? ProcEntry.children(of: daemon.pid) : helpers.flatMap { ProcEntry.children(of: $0.pid) })
            .filter { $0.state != "Z" }
        #expect(helpers.count == (startMethod == "forkserver" ? 1 : 0))
        #expect(children.count == (model == .processes ? stats.workers.count : 0), "children: \(children.map(\.pid))")
        #expect(ProcEntry.threads(of: daemon.pid, named: "concur-worker-").count == (model == .threads ? stats.workers.count : 0))
        #expect(stats.workerDeaths == 0)

        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit() == 0, "\(daemon.log())")
        watcher.join()
        for pid in seenPIDs.union(children.map(\.pid)) {
            #expect(kill(pid, 0) != 0 && errno == ESRCH, "child \(pid) outlived the daemon")
        }
        print(
            "\(first.rawValue)/\(second.rawValue) (\(startMethod)): \(submitted) jobs, \(status.switches) switches (\(superseded) superseded), "
                + "\(runs.cancelled) runs preempted, \(status.totals.retried) retried")
    }

}

/// The execution log read back: per job, the runs that ended done, and anything unexpected.
struct ExecutionRecord {
    var done: [UInt64: Int] = [:]
    var cancelled = 0
    var other: [String] = []
    var unfinished: [UInt64] = []

    init(contentsOf file: URL) throws {
        var open: [UInt64: Int] = [:]
        for line in try String(contentsOf: file, encoding: .utf8).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3, let id = UInt64(fields[1]) else {
                other.append(String(line))
                continue
            }
            switch (fields[0], fields[2]) {
            case ("start", _): open[id, default: 0] += 1
            case ("end", "done"):
                open[id, default: 0] -= 1
                done[id, default: 0] += 1
            case ("end", "cancelled"):
                open[id, default: 0] -= 1
                cancelled += 1
            default:
                open[id, default: 0] -= 1
                other.append(String(line))
            }
        }
        unfinished = open.filter { $0.value != 0 }.map(\.key).sorted()
    }
}

/// Watches every job that ends (WatchJobs without ids), on a thread of its own.
final class Watcher: Sendable {
    private let ends = Mutex<[UInt64: [JobState]]>([:])
    private let finished = DispatchSemaphore(value: 0)

    init(socket: String) throws {
        let sent = DispatchSemaphore(value: 0)
        Thread { [self] in
            let connection = try? VarlinkConnection(unixPath: socket)
            let call = VarlinkCall(method: SupervisorInterface.method(.watchJobs), parameters: [:], more: true)
            let watching = (try? connection?.send(call)) != nil
            sent.signal()
            // Ends when the daemon closes the connection.
            while watching, let reply = try? connection?.receive() {
                guard case .object(let job) = reply.parameters["job"], case .int(let id) = job["id"],
                    case .string(let state) = job["state"], let parsed = JobState(rawValue: state)
                else { continue }
                ends.withLock { $0[UInt64(id), default: []].append(parsed) }
            }
            finished.signal()
        }.start()
        sent.wait()
    }

    /// Whether the watcher saw job `id` end.
    func saw(_ id: UInt64) -> Bool { ends.withLock { $0[id] != nil } }

    var count: Int { ends.withLock { $0.count } }
    func snapshot() -> [UInt64: [JobState]] { ends.withLock { $0 } }
    func join() { finished.wait() }
}

/// Submits small batches of mixed jobs (cpu, prime, sleep) every 20 ms, keeping the queue short.
final class Submitter: Sendable {
    private let running = Atomic<Bool>(true)
    private let submitted = Atomic<Int>(0)
    private let finished = DispatchSemaphore(value: 0)

    init(socket: String) {
        Thread { [self] in
            var random = SystemRandomNumberGenerator()
            guard let connection = try? VarlinkConnection(unixPath: socket) else {
                finished.signal()
                return
            }
            while running.load(ordering: .acquiring) {
                let queued: Int
                if case .object(let status) = try? connection.call(SupervisorInterface.method(.status))["status"],
                    case .int(let count) = status["queued"]
                {
                    queued = Int(count)
                } else {
                    queued = 0
                }
                if queued < 200 {
                    let jobs: [JSON] = (0..<8).map { _ in
                        switch Int.random(in: 0..<3, using: &random) {
                        case 0: ["kind": "cpu", "size": .double(Double.random(in: 0.005...0.05, using: &random))]
                        case 1: ["kind": "prime", "n": .int(Int64.random(in: 1_000_000_000...1_000_000_000_000, using: &random))]
                        default: ["kind": "sleep", "ms": .int(Int64.random(in: 1...40, using: &random))]
                        }
                    }
                    if (try? connection.call(SupervisorInterface.method(.submit), ["jobs": .array(jobs)])) != nil {
                        submitted.add(jobs.count, ordering: .relaxed)
                    }
                }
                usleep(20_000)
            }
            finished.signal()
        }.start()
    }

    /// Stops submitting; returns how many jobs were accepted.
    func stop() -> Int {
        running.store(false, ordering: .releasing)
        finished.wait()
        return submitted.load(ordering: .relaxed)
    }
}
