import ConcurArguments
import ConcurCore
package import ConcurJournal
package import ConcurProtocol
package import ConcurRuntime
import Glibc
package import Logging
import TOMLKit

/// A configuration value that is not acceptable, with where it came from and what is.
package struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The text shown to the user.
    package let message: String

    /// An error with the given message.
    package init(_ message: String) {
        self.message = message
    }

    /// The text shown to people.
    package var description: String { message }
}

/// Everything `concurd` can be told, after defaults, the config file and the command line.
package struct DaemonConfiguration: Sendable, Equatable {
    /// The control socket's path; nil: the default rule (`/run/concurd/control.sock` for root).
    package var socket: String?
    /// Workers at start.
    package var workers = 4
    /// The model at start.
    package var model = ConcurrencyModel.threads
    /// The queue's limit.
    package var maxQueue = 100_000
    /// The most workers a resize may ask for.
    package var maxWorkers = 256
    /// Seconds running jobs get to finish after SIGTERM before they are interrupted.
    package var drainTimeout = 30.0
    /// Finished job records kept for `jobs` and `ListJobs`.
    package var retainJobs = 10_000
    /// The lowest level logged.
    package var logLevel = Logger.Level.info
    /// Attempts a job gets when the worker running it dies; then it fails.
    package var maxAttempts = 3
    /// Seconds a job may run unless it sets its own timeout; nil: no limit.
    package var jobTimeout: Double?
    /// Whether `exec` jobs are accepted (they run commands as the daemon's user).
    package var allowExec = false
    /// Threads the tasks model's worker tasks run on; nil: one per core.
    package var taskThreads: Int?
    /// Nice levels the workers run below the control plane (0: the same priority).
    package var workerNice = 10
    /// How the processes model starts its children.
    package var startMethod = WorkerStartMethod.spawn
    /// Seconds a client may leave its replies unread (a stuck `WatchStats` or `WatchJobs`
    /// watcher) before it is disconnected.
    package var watcherTimeout = 30.0
    /// Users (names or ids) allowed on the control socket besides root and the daemon's own user.
    package var allowedUsers: [String] = []
    /// Groups (names or ids) whose members are allowed on the control socket.
    package var allowedGroups: [String] = []
    /// Seconds a control connection may stay silent with no call running before it is closed.
    package var idleTimeout = 60.0
    /// Test hooks: SIGUSR2 hangs the supervisor loop (to prove the watchdog). Off in production.
    package var testHooks = false
    /// Where every run of every job is recorded (`--execution-log`, for tests); nil: nowhere.
    package var executionLog: String?
    /// Where the job journal lives; nil: the default rule (see ``resolvedStateDirectory(uid:environment:)``).
    package var stateDirectory: String?
    /// Keeps jobs in memory only: no journal, and a stop cancels queued jobs.
    package var ephemeral = false
    /// Seconds finished jobs are kept (in memory and in the journal), besides their count.
    package var retainAge = 7 * 86_400.0
    /// Bytes of each stream of an exec job's output kept (head and tail).
    package var maxOutput = CommandOutput.defaultMaxBytes
    /// Bytes of output kept for all jobs together; past it the oldest finished jobs' go first.
    package var maxOutputTotal = 1 << 30
    /// What the journal's commits survive.
    package var journalSync = JobJournal.Sync.normal
    /// The pools besides `default`, by name (`[pools.NAME]`, `--pool`).
    package var pools: [PoolConfiguration] = []
    /// A PostgreSQL queue shared with other nodes (`--store URL`); nil: the SQLite journal.
    package var store: String?
    /// The file the store's password is read from, before `PGPASSFILE` and `~/.pgpass`.
    package var storePasswordFile: String?
    /// This node's name in the shared store; nil: the host name.
    package var node: String?
    /// Seconds a node may go without a heartbeat before the others run its jobs.
    package var leaseTimeout = 30.0

    /// This node's name: `node`, else the host name.
    package var nodeName: String {
        if let node { return node }
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The defaults.
    package init() {}

    /// The keys a config file may set, as written in the file (``DaemonSettings``).
    package static var fileKeys: [String] { DaemonSettings.fileKeys }

    /// The models this build can run.
    package static let availableModels: [ConcurrencyModel] = [.threads, .processes, .tasks]

    /// Accepted ranges.
    package enum Limits {
        /// `max_workers`.
        package static let maxWorkers = 1...4096
        /// `max_queue`.
        package static let maxQueue = 1...100_000_000
        /// `drain_timeout`, seconds.
        package static let drainTimeout = 0.0...86_400.0
        /// `retain_jobs`.
        package static let retainJobs = 0...10_000_000
        /// `max_attempts`.
        package static let maxAttempts = 1...100
        /// `task_threads`.
        package static let taskThreads = 1...256
        /// `worker_nice`.
        package static let workerNice = 0...19
        /// `watcher_timeout`, seconds.
        package static let watcherTimeout = 1.0...3600.0
        /// `idle_timeout`, seconds.
        package static let idleTimeout = 1.0...86_400.0
        /// `lease_timeout`, seconds.
        package static let leaseTimeout = 2.0...3600.0
        /// `max_output`, bytes per stream.
        package static let maxOutput = 4096...(1 << 30)
        /// `max_output_total`, bytes.
        package static let maxOutputTotal = (1 << 20)...(1 << 40)
        /// `retain_age`, seconds (up to ten years).
        package static let retainAge = 1.0...315_360_000.0
    }

    /// The state directory: the configured one, else systemd's `$STATE_DIRECTORY` (the unit's
    /// `StateDirectory=`), else `/var/lib/concurd` for root, else `$XDG_STATE_HOME/concurd` or
    /// `~/.local/state/concurd`.
    package func resolvedStateDirectory(uid: UInt32, environment: (String) -> String?) -> String {
        if let stateDirectory { return stateDirectory }
        if let systemd = environment("STATE_DIRECTORY"), !systemd.isEmpty {
            // systemd lists one directory per StateDirectory= entry, separated by colons.
            return String(systemd.split(separator: ":").first ?? Substring(systemd))
        }
        if uid == 0 { return "/var/lib/concurd" }
        if let xdg = environment("XDG_STATE_HOME"), xdg.hasPrefix("/") { return xdg + "/concurd" }
        return (environment("HOME") ?? "/tmp") + "/.local/state/concurd"
    }

    /// The control socket's access policy (names resolved; call after ``validate()``).
    package var accessPolicy: AccessPolicy {
        AccessPolicy(
            users: Set(allowedUsers.compactMap(AccessPolicy.userID)), groups: Set(allowedGroups.compactMap(AccessPolicy.groupID)))
    }

    /// The default pool's part of the configuration.
    package var supervisor: Supervisor.Configuration {
        Supervisor.Configuration(model: model, workers: workers, limits: limits(maxQueue: maxQueue))
    }

    /// Every pool's part of the configuration, the default first, then by name.
    package var supervisorPools: [(name: PoolName, configuration: Supervisor.Configuration)] {
        [(.default, supervisor)]
            + pools.map { pool in
                (
                    pool.name,
                    Supervisor.Configuration(
                        model: pool.model, workers: pool.workers, limits: limits(maxQueue: pool.maxQueue ?? maxQueue))
                )
            }
    }

    private func limits(maxQueue: Int) -> PoolStateMachine.Configuration {
        PoolStateMachine.Configuration(
            maxQueue: maxQueue, maxWorkers: maxWorkers, retainFinished: retainJobs, maxAttempts: maxAttempts,
            defaultTimeout: jobTimeout, allowExec: allowExec)
    }

    /// Applies `--pool` options over the pools a config file set: each replaces its pool's model
    /// and workers and keeps the file's `max_queue`; a pool named twice is refused.
    package mutating func apply(poolFlags: [String]) throws(ConfigurationError) {
        var seen: Set<PoolName> = []
        for text in poolFlags {
            let given = try PoolConfiguration.read(flag: text)
            guard seen.insert(given.name).inserted else {
                throw ConfigurationError("--pool \(given.name) is given twice; give each pool once")
            }
            if let index = pools.firstIndex(where: { $0.name == given.name }) {
                pools[index].model = given.model
                pools[index].workers = given.workers
            } else {
                pools.append(given)
                pools.sort { $0.name < $1.name }
            }
        }
    }

    /// Checks the values against each other and their ranges, once defaults, the config file
    /// and the command line are merged (each setting's check, in ``DaemonSettings``' order).
    /// Messages name both the flag and the config key.
    package func validate() throws(ConfigurationError) {
        for setting in DaemonSettings.all {
            try setting.check?(self)
        }
        guard pools.count < PoolName.maxPools else {
            throw ConfigurationError(
                "\(pools.count + 1) pools are configured (with default); concurd runs at most \(PoolName.maxPools)")
        }
        for pool in pools { try pool.validate(maxWorkers: maxWorkers) }
    }

    /// Applies the settings of a TOML config file over these values.
    ///
    /// Unknown keys and wrong types are errors that name the key and the file, so a typo
    /// never passes silently.
    package mutating func apply(toml text: String, file: String) throws(ConfigurationError) {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationError(
                "\(file):\(error.source.begin.line):\(error.source.begin.column): not valid TOML: \(error.description)")
        } catch {
            throw ConfigurationError("\(file): not valid TOML: \(error)")
        }
        let settings = DaemonSettings.all.filter(\.inFile)
        for key in table.keys {
            guard let value = table[key] else { continue }
            if key == "pools" {
                pools = try PoolConfiguration.read(toml: value, file: file)
                continue
            }
            guard let setting = settings.first(where: { $0.key == key }) else {
                let known = Self.fileKeys + ["pools"]
                let hint = CommandLineRun.suggestion(for: key, among: known).map { "did you mean '\($0)'? " } ?? ""
                throw ConfigurationError("\(file): unknown key '\(key)'; \(hint)known keys: \(known.joined(separator: ", "))")
            }
            guard let read = setting.readTOML(value) else {
                throw ConfigurationError("\(file): \(key) must be \(setting.expectation)")
            }
            try setting.assign(read, &self, .file(file))
        }
    }
}
