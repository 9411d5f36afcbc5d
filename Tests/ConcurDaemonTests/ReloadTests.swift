import ConcurCore
import ConcurProtocol
import ConcurRuntime
import Glibc
import Logging
import Synchronization
import Systemd
import Testing
import Varlink

@testable import ConcurDaemon

@Suite("Reloading the configuration")
struct ReloadTests {
    /// A reloader over a live supervisor whose "file" is whatever `next` holds.
    final class Fixture: Sendable {
        /// What the next read of the configuration gives.
        final class File: Sendable {
            let contents: Mutex<Result<DaemonConfiguration, ConfigurationError>>
            init(_ configuration: DaemonConfiguration) { contents = Mutex(.success(configuration)) }
            func withLock<T>(_ body: (inout Result<DaemonConfiguration, ConfigurationError>) -> T) -> T {
                contents.withLock { body(&$0) }
            }
        }

        let supervisor: Supervisor
        let reloader: Reloader
        let level = LogLevelControl(.info)
        let next: File

        init() throws {
            var start = DaemonConfiguration()
            start.workers = 2
            start.maxWorkers = 8
            supervisor = Supervisor(
                configuration: start.supervisor, models: [ThreadModel(), ServiceHarness.tasks], version: "test")
            try supervisor.start(workers: 2)
            let next = File(start)
            self.next = next
            let supervisor = supervisor
            reloader = Reloader(
                configuration: start, supervisor: supervisor, notifier: SystemdNotifier(), logger: Logger(label: "test"),
                logLevel: level, load: { () throws(ConfigurationError) in try next.withLock { $0 }.get() }, refreshStatus: {},
                addPool: { name, pool, _ in try supervisor.addPool(name, configuration: pool, store: MemoryJobStore()) })
        }
    }

    @Test("applies workers, model, limits and log level live; names what waits for a restart")
    func applies() throws {
        let fixture = try Fixture()
        var changed = fixture.reloader.configuration
        changed.workers = 3
        changed.model = .tasks
        changed.maxQueue = 50
        changed.logLevel = .debug
        changed.socket = "/run/other.sock"
        changed.taskThreads = 1
        fixture.next.withLock { $0 = .success(changed) }
        let outcome = try fixture.reloader.reload()
        #expect(
            outcome.applied == [
                "workers: 2 -> 3", "model: threads -> tasks", "max_queue: 100000 -> 50", "log_level: info -> debug",
            ])
        #expect(outcome.needRestart == ["socket: none -> /run/other.sock", "task_threads: none -> 1"])
        let status = fixture.supervisor.status()
        #expect(status.model == .tasks && status.workers.target == 3 && status.maxQueue == 50)
        #expect(fixture.level.level == .debug)
        #expect(fixture.reloader.configuration.workers == 3)
        #expect(try fixture.reloader.reload() == Reloader.Outcome())
    }

    @Test("adds a pool, changes it, removes it keeping its jobs, and takes it back")
    func pools() throws {
        let fixture = try Fixture()
        let io = PoolName("io")!
        var changed = fixture.reloader.configuration
        changed.pools = [PoolConfiguration(name: io, model: .tasks, workers: 3)]
        fixture.next.withLock { $0 = .success(changed) }
        #expect(try fixture.reloader.reload().applied == ["pools.io: added (tasks, 3 workers)"])
        let pool = try fixture.supervisor.pool(named: io)
        #expect(pool.read { ($0.model, $0.target) } == (.tasks, 3))
        #expect(fixture.supervisor.pool.read { ($0.model, $0.target) } == (.threads, 2))

        changed.pools[0].workers = 5
        changed.pools[0].maxQueue = 40
        fixture.next.withLock { $0 = .success(changed) }
        #expect(try fixture.reloader.reload().applied == ["pools.io.workers: 3 -> 5", "pools.io.max_queue: 100000 -> 40"])
        #expect(pool.read { ($0.target, $0.configuration.maxQueue) } == (5, 40))

        // Removed: its workers retire, its queued jobs stay (paused first, so none starts).
        _ = pool.setPaused(true)
        let (ids, _) = try pool.submit([JobSpec(.cpu(size: 0))], watch: nil)
        changed.pools = []
        fixture.next.withLock { $0 = .success(changed) }
        #expect(
            try fixture.reloader.reload().applied == [
                "pools.io: removed (0 running finish; 1 unfinished kept; add it back to run them)"
            ])
        #expect(throws: UnknownPoolError(name: io, removed: true, pools: [.default])) { try fixture.supervisor.pool(named: io) }
        let gone = MonotonicClock.now() + 5_000_000_000
        while !pool.read({ $0.workers.isEmpty }) && MonotonicClock.now() < gone { usleep(5_000) }
        #expect(pool.read { $0.workers.isEmpty })
        #expect(fixture.supervisor.statuses().map(\.removed) == [false, true])
        #expect(pool.read { $0.job(ids.lowerBound)?.state } == .queued)

        // Back: the kept job runs.
        _ = pool.setPaused(false)
        changed.pools = [PoolConfiguration(name: io, model: .threads, workers: 1)]
        fixture.next.withLock { $0 = .success(changed) }
        #expect(
            try fixture.reloader.reload().applied.first
                == "pools.io: added (threads, 1 worker); the unfinished jobs it kept (1) run again")
        #expect(try fixture.supervisor.pool(named: io) === pool)
        let deadline = MonotonicClock.now() + 5_000_000_000
        while pool.read({ $0.job(ids.lowerBound)?.state }) != .done && MonotonicClock.now() < deadline { usleep(5_000) }
        #expect(pool.read { $0.job(ids.lowerBound)?.state } == .done)
    }

    @Test("a reload that stops part-way says what it applied, and the next one compares against that")
    func partway() throws {
        var start = DaemonConfiguration()
        start.workers = 2
        let supervisor = Supervisor(
            configuration: start.supervisor, models: [ThreadModel(), ServiceHarness.tasks], version: "test")
        try supervisor.start(workers: 2)
        let next = Fixture.File(start)
        let reloader = Reloader(
            configuration: start, supervisor: supervisor, notifier: SystemdNotifier(), logger: Logger(label: "test"),
            logLevel: LogLevelControl(.info), load: { () throws(ConfigurationError) in try next.withLock { $0 }.get() },
            refreshStatus: {},
            addPool: { name, pool, _ in
                guard name.rawValue != "bad" else { throw ConfigurationError("its journal cannot be opened") }
                try supervisor.addPool(name, configuration: pool, store: MemoryJobStore())
            })
        var changed = start
        changed.workers = 3
        changed.pools = [PoolConfiguration(name: PoolName("aa")!, workers: 1), PoolConfiguration(name: PoolName("bad")!)]
        next.withLock { $0 = .success(changed) }
        #expect {
            try reloader.reload()
        } throws: { error in
            let message = (error as? ConfigurationError)?.message ?? ""
            return message.contains("reload could not add pool bad: its journal cannot be opened")
                && message.contains("what it applied before stays: workers: 2 -> 3, pools.aa: added (threads, 1 worker)")
        }
        #expect(supervisor.pool.read { $0.target } == 3 && (try? supervisor.pool(named: PoolName("aa")!)) != nil)
        #expect(reloader.configuration.workers == 3 && reloader.configuration.pools.map(\.name.rawValue) == ["aa"])
        changed.pools = [PoolConfiguration(name: PoolName("aa")!, workers: 2)]
        next.withLock { $0 = .success(changed) }
        #expect(try reloader.reload().applied == ["pools.aa.workers: 1 -> 2"])
        #expect(supervisor.drain(timeout: 5) == .drained)
    }

    @Test("a configuration that fails its checks changes nothing")
    func refuses() throws {
        let fixture = try Fixture()
        fixture.next.withLock { $0 = .failure(ConfigurationError("/etc/concurd.toml: workers must be an integer")) }
        #expect(throws: ConfigurationError("/etc/concurd.toml: workers must be an integer")) { try fixture.reloader.reload() }
        #expect(fixture.supervisor.status().workers.target == 2 && fixture.reloader.configuration.workers == 2)
    }

    @Test("max_workers below the running pool's size is refused")
    func maxWorkersBelowTarget() throws {
        let fixture = try Fixture()
        var changed = fixture.reloader.configuration
        changed.maxWorkers = 1
        changed.workers = 1
        fixture.next.withLock { $0 = .success(changed) }
        // Workers shrink first, so the lower ceiling fits.
        #expect(try fixture.reloader.reload().applied == ["workers: 2 -> 1", "max_workers: 8 -> 1"])
    }

    @Test("Reload is refused by a daemon without a way to read its configuration, and takes no parameters")
    func reloadCall() throws {
        let harness = try ServiceHarness()
        #expect(
            harness.error("Reload")
                == SupervisorError.invalidConfiguration(
                    reason: "concurd was started without a configuration it can read again; restart it instead"))
        #expect(harness.error("Reload", ["now": true]) == VarlinkError.invalidParameter("now"))
    }

    @Test("log entries: journal field names and priorities; plain lines otherwise")
    func logHandler() {
        #expect(
            Daemon.journalIdentity.fieldName("job") == "CONCUR_JOB"
                && Daemon.journalIdentity.fieldName("worker-id") == "CONCUR_WORKER_ID")
        #expect(JournalIdentity(syslogIdentifier: "other", fieldPrefix: "OTHER_").fieldName("job") == "OTHER_JOB")
        #expect(DaemonLogHandler.priority(.critical) == 2 && DaemonLogHandler.priority(.info) == 6)
        let control = LogLevelControl(.warning)
        var handler = DaemonLogHandler(label: "x", control: control, identity: Daemon.journalIdentity, journal: false)
        #expect(handler.logLevel == .warning)
        handler.logLevel = .debug
        #expect(control.level == .debug)
    }
}

@Suite("Who may use the control socket")
struct AccessPolicyTests {
    @Test("root, the daemon's user, listed users and members of listed groups; nobody else")
    func allows() {
        let policy = AccessPolicy(users: [1001], groups: [995], ownUID: 500)
        let memberships: (UInt32, UInt32) -> [UInt32] = { uid, primary in uid == 1003 ? [primary, 995] : [primary] }
        func allowed(_ uid: UInt32, _ gid: UInt32) -> Bool {
            policy.allows(VarlinkPeer(pid: 1, uid: uid, gid: gid), memberships: memberships)
        }
        #expect(allowed(0, 0) && allowed(500, 500) && allowed(1001, 1001))
        #expect(allowed(1002, 995), "primary group listed")
        #expect(allowed(1003, 1003), "a supplementary group listed")
        #expect(!allowed(1004, 1004) && !allowed(65534, 65534))
        #expect(!AccessPolicy(ownUID: 500).allows(VarlinkPeer(pid: 1, uid: 1003, gid: 995), memberships: memberships))
    }

    @Test("names resolve through the user and group databases; unknown ones are refused with a hint")
    func names() throws {
        var configuration = DaemonConfiguration()
        configuration.allowedUsers = ["root", "65534"]
        configuration.allowedGroups = ["root"]
        try configuration.validate()
        #expect(configuration.accessPolicy.users == [0, 65534] && configuration.accessPolicy.groups == [0])
        configuration.allowedGroups = ["no-such-group-here"]
        #expect(
            throws: ConfigurationError(
                "allowed_groups: there is no group 'no-such-group-here' on this machine; create it (groupadd --system no-such-group-here) or remove it from the list"
            )
        ) { try configuration.validate() }
        configuration.allowedGroups = []
        configuration.allowedUsers = ["no-such-user-here"]
        #expect(
            throws: ConfigurationError(
                "allowed_users: there is no user 'no-such-user-here' on this machine; create it or remove it from the list"
            )
        ) { try configuration.validate() }
    }

    @Test("the group database gives a user's groups")
    func groupDatabase() {
        #expect(AccessPolicy.groups(of: 0, primary: 0).contains(0))
        #expect(AccessPolicy.groups(of: 4_000_000_000, primary: 42) == [42])
    }
}
