import ConcurCore
import ConcurDaemon
import ConcurProtocol
import ConcurRuntime
import Glibc
import Synchronization
import Testing
import Varlink

/// Calls the control service in-process, with a responder that records replies.
final class ServiceHarness: Sendable {
    let supervisor: Supervisor
    let service: ControlService
    private let replies = Mutex<[VarlinkReply]>([])
    /// The connection's serial context (one per harness, like a connection's event loop).
    private let serial = SerialQueue()

    init(workers: Int = 2, maxQueue: Int = 1_000, allowExec: Bool = false) throws {
        supervisor = Supervisor(
            configuration: .init(
                model: .threads, workers: workers,
                limits: .init(maxQueue: maxQueue, maxWorkers: 8, retainFinished: 1_000, allowExec: allowExec)),
            models: [ThreadModel(), Self.tasks], version: "test")
        try supervisor.start(workers: workers)
        service = ControlService(supervisor: supervisor)
    }

    /// The tasks model shared by the tests (its executor's threads live as long as the process).
    static let tasks = try! TaskModel(threads: 2)

    /// Calls `method` and returns the replies received within `wait` seconds (or once a final one came).
    func call(_ method: String, _ parameters: JSONObject = [:], more: Bool = false, wait: Double = 10) -> [VarlinkReply] {
        replies.withLock { $0 = [] }
        let serial = serial
        let responder = VarlinkResponder(
            more: more, oneway: false, deliver: { reply in self.replies.withLock { $0.append(Self.decoded(reply)) } },
            onClose: { _ in },
            schedule: { body in serial.async(body) })
        service.handle(method: method, parameters: parameters, peer: VarlinkPeer(pid: 1, uid: 0, gid: 0), responder: responder)
        let deadline = MonotonicClock.now() + UInt64(wait * 1e9)
        while MonotonicClock.now() < deadline {
            if replies.withLock({ $0.last.map { !$0.continues } ?? false }) { break }
            usleep(1_000)
        }
        return replies.withLock { $0 }
    }

    /// A reply with parameters sent already serialized, as a client would read it.
    static func decoded(_ reply: VarlinkReply) -> VarlinkReply {
        guard let bytes = reply.encodedParameters,
            case .object(let parameters)? = try? bytes.withUnsafeBytes({ try JSON.parse($0) })
        else { return reply }
        var plain = reply
        plain.parameters = parameters
        plain.encodedParameters = nil
        return plain
    }

    func error(_ method: String, _ parameters: JSONObject = [:], more: Bool = false) -> VarlinkError? {
        call(method, parameters, more: more).last?.varlinkError
    }
}

/// Runs closures one after the other on a thread of its own, in the order given: the
/// connection's event loop, for a responder's deferred work (deliveries must not overlap).
final class SerialQueue: Sendable {
    private let lock = ConditionLock()
    private let pending = Mutex<[@Sendable () -> Void]>([])

    init() {
        try? OSThread.start(name: "test-serial") { [self] in
            while true {
                let next = lock.withLock { () -> [@Sendable () -> Void] in
                    while pending.withLock({ $0.isEmpty }) { lock.wait() }
                    return pending.withLock { queue in
                        defer { queue.removeAll() }
                        return queue
                    }
                }
                for body in next { body() }
            }
        }
    }

    func async(_ body: @escaping @Sendable () -> Void) {
        lock.withLock {
            pending.withLock { $0.append(body) }
            lock.broadcast()
        }
    }
}

@Suite("The control service, in-process")
struct ControlServiceTests {
    @Test("Submit queues jobs and returns their ids; Status counts them")
    func submit() throws {
        let harness = try ServiceHarness()
        let reply = harness.call("Submit", ["jobs": [["kind": "prime", "n": 97], ["kind": "sleep", "ms": 1]]])
        #expect(reply.last?.parameters["ids"] == [1, 2])
        let status = try PoolStatus(json: harness.call("Status").last?.parameters["status"] ?? .null, path: "status")
        #expect(status.totals.submitted == 2)
        #expect(status.model == .threads && status.workers.target == 2)
    }

    @Test("Submit with more streams each job as it finishes, the last ending the call")
    func submitStream() throws {
        let harness = try ServiceHarness()
        let replies = harness.call("Submit", ["jobs": [["kind": "prime", "n": 97], ["kind": "fail"]]], more: true)
        #expect(replies.count == 3)
        #expect(replies.first?.parameters["ids"] == [1, 2] && replies.first?.continues == true)
        let jobs = try replies.dropFirst().map { try JobInfo(json: $0.parameters["job"] ?? .null, path: "job") }
        #expect(Set(jobs.map(\.id)) == [1, 2])
        #expect(Set(jobs.map(\.state)) == [.done, .failed])
        #expect(replies.last?.continues == false)
    }

    @Test("ListJobs never answers over 1 MiB: a long list comes in parts with 'more', and without it is refused with what to do")
    func longLists() throws {
        let harness = try ServiceHarness(maxQueue: 20_000)
        _ = harness.call("Pause")
        let generated = harness.call("Generate", ["count": 9_000, "seed": 1, "kind": "sleep"]).last?.parameters
        #expect(generated?["count"] == 9_000)
        let whole = harness.call("ListJobs", ["limit": 9_000, "state": "queued"]).last?.varlinkError
        #expect(whole?.name == SupervisorError.invalidValue(parameter: "", reason: "").name, "\(String(describing: whole))")
        #expect(whole?.parameters["parameter"] == "limit")
        let reason: String = if case .string(let text)? = whole?.parameters["reason"] { text } else { "" }
        #expect(reason.contains("call with 'more' to receive them in parts"), "\(reason)")

        let parts = harness.call("ListJobs", ["limit": 9_000, "state": "queued"], more: true)
        #expect(parts.count >= 4, "\(parts.count) parts")
        #expect(parts.dropLast().allSatisfy(\.continues) && parts.last?.continues == false)
        #expect(parts.allSatisfy { $0.varlinkError == nil })
        var ids: [UInt64] = []
        for part in parts {
            var size: [UInt8] = []
            part.frame(into: &size)
            #expect(size.count < 1 << 20, "a part of \(size.count) bytes")
            ids += try [JobInfo](json: part.parameters["jobs"] ?? .null, path: "jobs").map(\.id)
        }
        #expect(ids == Array(1...9_000), "\(ids.count) ids")
        // A list that fits is one reply, with or without 'more'.
        let short = harness.call("ListJobs", ["limit": 50, "state": "queued"], more: true)
        #expect(short.count == 1 && short[0].continues == false)
        let ids50 = try [JobInfo](json: short[0].parameters["jobs"] ?? .null, path: "jobs").map(\.id)
        #expect(ids50 == Array(1...50))
        // Ids asked for are all checked before a part is sent.
        #expect(harness.error("ListJobs", ["ids": [1, 2, 99_999]], more: true) == SupervisorError.noSuchJob(99_999))
    }

    @Test("ListJobs parts stay under 1 MiB however large the jobs; a list whose client hung up is not built")
    func largeJobsAndHungUpClients() throws {
        let harness = try ServiceHarness(maxQueue: 1_000, allowExec: true)
        _ = harness.call("Pause")
        // 12 commands of 64 KiB of control characters each: about 390 KiB of JSON per job.
        let argument = String(repeating: "\u{1}", count: 4_000)
        let argv: [JSON] = [.string("/bin/true")] + Array(repeating: .string(argument), count: 16)
        let job: JSON = .object(["kind": "exec", "argv": .array(argv)])
        #expect(harness.call("Submit", ["jobs": .array(Array(repeating: job, count: 12))]).last?.varlinkError == nil)
        let parts = harness.call("ListJobs", ["limit": 200, "state": "queued"], more: true, wait: 120)
        #expect(parts.allSatisfy { $0.varlinkError == nil }, "\(parts.compactMap(\.varlinkError))")
        var count = 0
        for part in parts {
            var frame: [UInt8] = []
            part.frame(into: &frame)
            #expect(frame.count < 1 << 20, "a part of \(frame.count) bytes")
            count += try [JobInfo](json: part.parameters["jobs"] ?? .null, path: "jobs").count
        }
        #expect(count == 12 && parts.count > 3, "\(count) jobs in \(parts.count) parts")

        // The client is gone before the list is built: nothing is sent.
        let delivered = Mutex(0)
        let gone = VarlinkResponder(
            more: true, oneway: false, deliver: { _ in delivered.withLock { $0 += 1 } }, onClose: { $0() }, schedule: { $0() })
        harness.service.handle(
            method: "ListJobs", parameters: ["limit": 200, "state": "queued"], peer: VarlinkPeer(pid: 1, uid: 0, gid: 0),
            responder: gone)
        usleep(300_000)
        #expect(delivered.withLock { $0 } == 0)
    }

    @Test("Generate is deterministic for a seed and returns the id range")
    func generate() throws {
        let harness = try ServiceHarness()
        let reply = harness.call("Generate", ["count": 3, "seed": 7, "kind": "prime"]).last?.parameters
        #expect(reply?["first"] == 1 && reply?["last"] == 3 && reply?["count"] == 3 && reply?["seed"] == 7)
        let jobs = harness.call("ListJobs", ["ids": [1, 2, 3]]).last?.parameters["jobs"]
        let expected = WorkloadGenerator.jobs(for: WorkloadRequest(count: 3, kind: .prime), seed: 7)
        let listed = try [JobInfo](json: jobs ?? .null, path: "jobs").map(\.spec)
        #expect(listed == expected)
    }

    @Test("Resize changes the target and reports the previous one")
    func resize() throws {
        let harness = try ServiceHarness()
        #expect(harness.call("Resize", ["workers": 5]).last?.parameters == ["workers": 5, "previous": 2])
        #expect(harness.supervisor.status().workers.target == 5)
    }

    @Test("SetModel answers once the new model serves; asking for the model in use changes nothing")
    func setModel() throws {
        let harness = try ServiceHarness()
        let reply = try #require(harness.call("SetModel", ["model": "tasks", "preempt": true]).last?.parameters)
        #expect(reply["model"] == "tasks" && reply["previous"] == "threads" && reply["changed"] == true)
        guard case .double(let seconds) = reply["servingAfter"] else { throw VarlinkError.invalidParameter("servingAfter") }
        #expect(seconds > 0 && seconds < 30, "servingAfter \(seconds)")
        let status = harness.supervisor.status()
        #expect(status.model == .tasks && status.switches == 1)
        let same = try #require(harness.call("SetModel", ["model": "tasks"]).last?.parameters)
        #expect(same["changed"] == false && same["previous"] == "tasks")
        let stats = harness.supervisor.stats()
        #expect(stats.lastSwitch?.from == .threads && stats.lastSwitch?.to == .tasks && stats.lastSwitch?.preempt == true)
        #expect(stats.lastSwitch?.servingAfter != nil)
        #expect(harness.supervisor.drain(timeout: 5) == .drained)
    }

    @Test("WatchJobs needs more, streams finished jobs, and refuses unknown ids")
    func watch() throws {
        let harness = try ServiceHarness()
        _ = harness.call("Submit", ["jobs": [["kind": "prime", "n": 7]]])
        #expect(harness.error("WatchJobs", ["ids": [1]]) == .expectedMore)
        let replies = harness.call("WatchJobs", ["ids": [1]], more: true)
        #expect(replies.count == 1 && replies[0].continues == false)
        #expect(harness.error("WatchJobs", ["ids": [42]], more: true) == SupervisorError.noSuchJob(42))
        #expect(harness.error("WatchJobs", ["ids": "all"], more: true) == VarlinkError.invalidParameter("ids"))
        #expect(harness.error("WatchJobs", ["ids": [-1]], more: true) == VarlinkError.invalidParameter("ids[0]"))
        #expect(harness.error("WatchJobs", ["since": 3], more: true) == VarlinkError.invalidParameter("since"))
    }

    @Test(
        "answers every wrong call with a typed error",
        arguments: [
            (
                "Submit", ["jobs": []] as JSONObject,
                SupervisorError.invalidValue(parameter: "jobs", reason: "give at least one job")
            ),
            ("Submit", [:], VarlinkError.invalidParameter("jobs")),
            (
                "Submit", ["jobs": [["kind": "cpu", "size": -1]]],
                SupervisorError.invalidValue(parameter: "jobs[0].size", reason: "cpu size must be between 0 and 1000")
            ),
            ("Submit", ["jobs": [["kind": "prime", "n": 5]], "priority": 1], VarlinkError.invalidParameter("priority")),
            (
                "Generate", ["count": 0],
                SupervisorError.invalidValue(parameter: "count", reason: "count must be between 1 and 10000000")
            ),
            ("Generate", ["count": 2_000], SupervisorError.queueFull(limit: 1_000, queued: 0)),
            ("Resize", ["workers": 0], SupervisorError.invalidWorkers(min: 1, max: 8)),
            ("Resize", ["workers": "many"], VarlinkError.invalidParameter("workers")),
            ("Resize", [:], VarlinkError.invalidParameter("workers")),
            (
                "ListJobs", ["limit": 0],
                SupervisorError.invalidValue(parameter: "limit", reason: "limit must be between 1 and 10000")
            ),
            ("ListJobs", ["state": "sleeping"], VarlinkError.invalidParameter("state")),
            ("ListJobs", ["ids": [9]], SupervisorError.noSuchJob(9)),
            ("Status", ["verbose": true], VarlinkError.invalidParameter("verbose")),
            (
                "ListJobs", ["ids": .array(Array(repeating: 1, count: 10_001))],
                SupervisorError.invalidValue(parameter: "ids", reason: "at most 10000 ids per call")
            ),
            ("ListJobs", ["ids": ["one"]], VarlinkError.invalidParameter("ids[0]")),
            (
                "ListJobs", ["limit": 10_001],
                SupervisorError.invalidValue(parameter: "limit", reason: "limit must be between 1 and 10000")
            ),
            ("Generate", ["count": 3, "kind": 7], VarlinkError.invalidParameter("kind")),
            (
                "Submit", ["jobs": .array(Array(repeating: ["kind": "fail"], count: 10_001))],
                SupervisorError.invalidValue(
                    parameter: "jobs", reason: "at most 10000 jobs per Submit; split the batch or use Generate")
            ),
            ("Stats", ["x": 1], VarlinkError.invalidParameter("x")),
            ("SetModel", [:], VarlinkError.invalidParameter("model")),
            ("SetModel", ["model": "fibers"], VarlinkError.invalidParameter("model")),
            ("SetModel", ["model": "tasks", "preempt": "yes"], VarlinkError.invalidParameter("preempt")),
            ("SetModel", ["model": "tasks", "now": true], VarlinkError.invalidParameter("now")),
            (
                "SetModel", ["model": "processes"],
                SupervisorError.modelUnavailable(
                    model: .processes, reason: "it could not be set up when concurd started (its log says why); nothing changed")
            ),
            ("Launch", [:], VarlinkError.methodNotFound("io.concur.Supervisor.Launch")),
            ("Pause", ["now": true], VarlinkError.invalidParameter("now")),
            ("Resume", ["all": 1], VarlinkError.invalidParameter("all")),
            ("WatchStats", [:], VarlinkError.expectedMore),
        ] as [(String, JSONObject, VarlinkError)])
    func errors(method: String, parameters: JSONObject, expected: VarlinkError) throws {
        let harness = try ServiceHarness()
        #expect(harness.error(method, parameters) == expected)
    }

    @Test(
        "WatchStats refuses a wrong interval",
        arguments: [
            (
                ["interval": 0.01] as JSONObject,
                SupervisorError.invalidValue(parameter: "interval", reason: "interval must be between 0.05 and 60 seconds")
            ),
            (
                ["interval": 61] as JSONObject,
                SupervisorError.invalidValue(
                    parameter: "interval", reason: "interval must be between 0.05 and 60 seconds")
            ),
            (
                ["interval": -1] as JSONObject,
                SupervisorError.invalidValue(
                    parameter: "interval", reason: "interval must be between 0.05 and 60 seconds")
            ),
            (["interval": "1s"] as JSONObject, VarlinkError.invalidParameter("interval")),
            (["every": 1] as JSONObject, VarlinkError.invalidParameter("every")),
        ] as [(JSONObject, VarlinkError)])
    func watchStatsErrors(parameters: JSONObject, expected: VarlinkError) throws {
        let harness = try ServiceHarness()
        #expect(harness.error("WatchStats", parameters, more: true) == expected)
    }

    @Test("WatchStats streams frames at the interval; Pause and Resume report whether they changed anything")
    func watchStatsAndPause() throws {
        // The stream never ends (this responder has no connection to close): it gets a harness
        // of its own, so that its frames do not mix with the replies below.
        let frames = try ServiceHarness().call("WatchStats", ["interval": 0.05], more: true, wait: 0.4)
        let harness = try ServiceHarness()
        #expect(frames.count >= 3 && frames.count <= 10, "\(frames.count) frames")
        #expect(frames.allSatisfy { $0.continues && $0.parameters["status"] != nil && $0.parameters["recentLatency"] != nil })
        #expect(harness.call("Pause").last?.parameters["changed"] == true)
        #expect(harness.call("Pause").last?.parameters["changed"] == false)
        #expect(harness.supervisor.status().paused)
        #expect(harness.call("Resume").last?.parameters["changed"] == true)
        #expect(harness.call("Resume").last?.parameters["changed"] == false)
        #expect(harness.error("WatchJobs", ["events": "yes"], more: true) == VarlinkError.invalidParameter("events"))
    }

    @Test("a full queue refuses a whole Submit batch")
    func queueFull() throws {
        let harness = try ServiceHarness(workers: 1, maxQueue: 2)
        #expect(
            harness.call("Submit", ["jobs": [["kind": "sleep", "ms": 2_000], ["kind": "sleep", "ms": 2_000]]]).last?.error == nil)
        let error = harness.error("Submit", ["jobs": [["kind": "fail"], ["kind": "fail"]]])
        #expect(error?.name == "io.concur.Supervisor.QueueFull")
        #expect(error?.parameters["limit"] == 2)
        #expect(harness.supervisor.status().totals.submitted == 2)
        harness.supervisor.pool.cancelRunning(reason: "test over")
    }

    @Test("Cancel and WatchJobs(unfinished) answer every wrong value with a typed error naming it")
    func cancelAndWaitValues() throws {
        let harness = try ServiceHarness()
        _ = harness.call("Submit", ["jobs": [["kind": "prime", "n": 7]]], more: true)
        #expect(
            harness.error("Cancel")
                == SupervisorError.invalidValue(parameter: "ids", reason: "give the ids of the jobs to cancel, or queued: true"))
        #expect(
            harness.error("Cancel", ["ids": [1], "queued": true])
                == SupervisorError.invalidValue(parameter: "queued", reason: "give ids or queued, not both"))
        #expect(harness.error("Cancel", ["ids": [1]]) == SupervisorError.jobFinished(1, state: .done))
        #expect(harness.error("Cancel", ["ids": [5]]) == SupervisorError.noSuchJob(5))
        #expect(harness.error("Cancel", ["ids": ["one"]]) == VarlinkError.invalidParameter("ids[0]"))
        #expect(harness.error("Cancel", ["queued": "yes"]) == VarlinkError.invalidParameter("queued"))
        #expect(harness.error("Cancel", ["ids": [1], "reason": "x"]) == VarlinkError.invalidParameter("reason"))
        let tooMany = JSON.array((1...10_001).map { JSON.int(Int64($0)) })
        #expect(harness.error("Cancel", ["ids": tooMany])?.parameters["parameter"] == "ids")
        #expect(harness.call("Cancel", ["queued": true]).last?.parameters == ["cancelled": [], "stopping": []])
        #expect(
            harness.error("WatchJobs", ["unfinished": true, "ids": [1]], more: true)?.parameters["parameter"] == "unfinished")
        #expect(
            harness.error("WatchJobs", ["unfinished": true, "events": true], more: true)?.parameters["parameter"] == "events")
        #expect(harness.error("WatchJobs", ["unfinished": 1], more: true) == VarlinkError.invalidParameter("unfinished"))
        let idle = harness.call("WatchJobs", ["unfinished": true], more: true)
        #expect(idle.count == 1 && idle[0].continues == false && idle[0].parameters == [:])
    }

    @Test("Logs needs more, an exec job, and a stream it knows")
    func logsValues() throws {
        let harness = try ServiceHarness(allowExec: true)
        _ = harness.call("Submit", ["jobs": [["kind": "prime", "n": 7]]], more: true)
        #expect(harness.error("Logs", ["id": 1]) == .expectedMore)
        #expect(harness.error("Logs", ["id": 1], more: true)?.parameters["parameter"] == "id")
        #expect(harness.error("Logs", ["id": 2], more: true) == SupervisorError.noSuchJob(2))
        #expect(harness.error("Logs", ["id": 1, "stream": "stdin"], more: true) == VarlinkError.invalidParameter("stream"))
        #expect(harness.error("Logs", ["id": 1, "follow": "yes"], more: true) == VarlinkError.invalidParameter("follow"))
        #expect(harness.error("Logs", ["id": "one"], more: true) == VarlinkError.invalidParameter("id"))
        #expect(harness.error("Logs", [:], more: true) == VarlinkError.invalidParameter("id"))
    }

    @Test("Shutdown needs a daemon to stop, and a mode it knows")
    func shutdownValues() throws {
        let harness = try ServiceHarness()
        #expect(harness.error("Shutdown", ["mode": "later"]) == VarlinkError.invalidParameter("mode"))
        #expect(harness.error("Shutdown", ["mode": "drain", "force": true]) == VarlinkError.invalidParameter("force"))
        #expect(harness.error("Shutdown")?.name == VarlinkError.methodNotImplemented("").name)
        #expect(harness.supervisor.status().phase == .serving)
    }

    @Test("once draining, Submit, Generate and Resize answer ShuttingDown")
    func shuttingDown() throws {
        let harness = try ServiceHarness()
        harness.supervisor.pool.beginDrain()
        #expect(harness.error("Submit", ["jobs": [["kind": "fail"]]]) == SupervisorError.shuttingDown)
        #expect(harness.error("Generate", ["count": 1]) == SupervisorError.shuttingDown)
        #expect(harness.error("Resize", ["workers": 3]) == SupervisorError.shuttingDown)
        #expect(harness.error("SetModel", ["model": "tasks"]) == SupervisorError.shuttingDown)
        let status = try PoolStatus(json: harness.call("Status").last?.parameters["status"] ?? .null, path: "status")
        #expect(status.phase == .draining)
    }
}
