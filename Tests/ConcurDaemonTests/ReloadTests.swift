import ConcurCore
import ConcurProtocol
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
            reloader = Reloader(
                configuration: start, supervisor: supervisor, notifier: SystemdNotifier(), logger: Logger(label: "test"),
                logLevel: level, load: { () throws(ConfigurationError) in try next.withLock { $0 }.get() }, refreshStatus: {})
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
            DaemonLogHandler.fieldName("job") == "CONCUR_JOB" && DaemonLogHandler.fieldName("worker-id") == "CONCUR_WORKER_ID")
        #expect(DaemonLogHandler.priority(.critical) == 2 && DaemonLogHandler.priority(.info) == 6)
        let control = LogLevelControl(.warning)
        var handler = DaemonLogHandler(label: "x", control: control, journal: false)
        #expect(handler.logLevel == .warning)
        handler.logLevel = .debug
        #expect(control.level == .debug)
    }
}
