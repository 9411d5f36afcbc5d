import ConcurCore
public import ConcurJournal
public import ConcurProtocol
public import ConcurRuntime
public import Logging
import TOMLKit

/// A configuration value that is not acceptable, with where it came from and what is.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The text shown to the user.
    public let message: String

    /// An error with the given message.
    public init(_ message: String) {
        self.message = message
    }

    /// The text shown to people.
    public var description: String { message }
}

/// Everything `concurd` can be told, after defaults, the config file and the command line.
public struct DaemonConfiguration: Sendable, Equatable {
    /// The control socket's path; nil: the default rule (`/run/concurd/control.sock` for root).
    public var socket: String?
    /// Workers at start.
    public var workers = 4
    /// The model at start.
    public var model = ConcurrencyModel.threads
    /// The queue's limit.
    public var maxQueue = 100_000
    /// The most workers a resize may ask for.
    public var maxWorkers = 256
    /// Seconds running jobs get to finish after SIGTERM before they are interrupted.
    public var drainTimeout = 30.0
    /// Finished job records kept for `jobs` and `ListJobs`.
    public var retainJobs = 10_000
    /// The lowest level logged.
    public var logLevel = Logger.Level.info
    /// Attempts a job gets when the worker running it dies; then it fails.
    public var maxAttempts = 3
    /// Seconds a job may run unless it sets its own timeout; nil: no limit.
    public var jobTimeout: Double?
    /// Whether `exec` jobs are accepted (they run commands as the daemon's user).
    public var allowExec = false
    /// Threads the tasks model's worker tasks run on; nil: one per core.
    public var taskThreads: Int?
    /// Nice levels the workers run below the control plane (0: the same priority).
    public var workerNice = 10
    /// How the processes model starts its children.
    public var startMethod = WorkerStartMethod.spawn
    /// Seconds a client may leave its replies unread (a stuck `WatchStats` or `WatchJobs`
    /// watcher) before it is disconnected.
    public var watcherTimeout = 30.0
    /// Users (names or ids) allowed on the control socket besides root and the daemon's own user.
    public var allowedUsers: [String] = []
    /// Groups (names or ids) whose members are allowed on the control socket.
    public var allowedGroups: [String] = []
    /// Seconds a control connection may stay silent with no call running before it is closed.
    public var idleTimeout = 60.0
    /// Test hooks: SIGUSR2 hangs the supervisor loop (to prove the watchdog). Off in production.
    public var testHooks = false
    /// Where every run of every job is recorded (`--execution-log`, for tests); nil: nowhere.
    public var executionLog: String?
    /// Where the job journal lives; nil: the default rule (see ``resolvedStateDirectory(uid:environment:)``).
    public var stateDirectory: String?
    /// Keeps jobs in memory only: no journal, and a stop cancels queued jobs.
    public var ephemeral = false
    /// Seconds finished jobs are kept (in memory and in the journal), besides their count.
    public var retainAge = 7 * 86_400.0
    /// What the journal's commits survive.
    public var journalSync = JobJournal.Sync.normal

    /// The defaults.
    public init() {}

    /// The keys a config file may set, as written in the file.
    public static let fileKeys = [
        "socket", "workers", "model", "max_queue", "max_workers", "drain_timeout", "retain_jobs", "log_level", "max_attempts",
        "job_timeout", "allow_exec", "task_threads", "worker_nice", "start_method",
        "watcher_timeout", "test_hooks", "allowed_users", "allowed_groups", "idle_timeout", "state_directory", "ephemeral",
        "retain_age", "journal_sync",
    ]

    /// The models this build can run.
    public static let availableModels: [ConcurrencyModel] = [.threads, .processes, .tasks]

    /// Accepted ranges.
    public enum Limits {
        /// `max_workers`.
        public static let maxWorkers = 1...4096
        /// `max_queue`.
        public static let maxQueue = 1...100_000_000
        /// `drain_timeout`, seconds.
        public static let drainTimeout = 0.0...86_400.0
        /// `retain_jobs`.
        public static let retainJobs = 0...10_000_000
        /// `max_attempts`.
        public static let maxAttempts = 1...100
        /// `task_threads`.
        public static let taskThreads = 1...256
        /// `worker_nice`.
        public static let workerNice = 0...19
        /// `watcher_timeout`, seconds.
        public static let watcherTimeout = 1.0...3600.0
        /// `idle_timeout`, seconds.
        public static let idleTimeout = 1.0...86_400.0
        /// `retain_age`, seconds (up to ten years).
        public static let retainAge = 1.0...315_360_000.0
    }

    /// The state directory: the configured one, else systemd's `$STATE_DIRECTORY` (the unit's
    /// `StateDirectory=`), else `/var/lib/concurd` for root, else `$XDG_STATE_HOME/concurd` or
    /// `~/.local/state/concurd`.
    public func resolvedStateDirectory(uid: UInt32, environment: (String) -> String?) -> String {
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
    public var accessPolicy: AccessPolicy {
        AccessPolicy(
            users: Set(allowedUsers.compactMap(AccessPolicy.userID)), groups: Set(allowedGroups.compactMap(AccessPolicy.groupID)))
    }

    /// The pool's part of the configuration.
    public var supervisor: Supervisor.Configuration {
        Supervisor.Configuration(
            model: model, workers: workers,
            limits: PoolStateMachine.Configuration(
                maxQueue: maxQueue, maxWorkers: maxWorkers, retainFinished: retainJobs, maxAttempts: maxAttempts,
                defaultTimeout: jobTimeout, allowExec: allowExec))
    }

    /// Checks the values against each other and their ranges, once defaults, the config file
    /// and the command line are merged. Messages name both the flag and the config key.
    public func validate() throws(ConfigurationError) {
        func fail(_ flag: String, _ key: String, _ problem: String) -> ConfigurationError {
            ConfigurationError("\(flag) (config key '\(key)') \(problem)")
        }
        guard Limits.maxWorkers.contains(maxWorkers) else {
            throw fail("--max-workers", "max_workers", "must be between 1 and \(Limits.maxWorkers.upperBound), not \(maxWorkers)")
        }
        guard (1...maxWorkers).contains(workers) else {
            throw fail("--workers", "workers", "must be between 1 and \(maxWorkers) (the max workers), not \(workers)")
        }
        guard Limits.maxQueue.contains(maxQueue) else {
            throw fail("--max-queue", "max_queue", "must be between 1 and \(Limits.maxQueue.upperBound), not \(maxQueue)")
        }
        guard Limits.drainTimeout.contains(drainTimeout) else {
            throw fail(
                "--drain-timeout", "drain_timeout", "must be between 0 and 86400 seconds, not \(formatDecimal(drainTimeout))")
        }
        guard Limits.retainJobs.contains(retainJobs) else {
            throw fail("--retain-jobs", "retain_jobs", "must be between 0 and \(Limits.retainJobs.upperBound), not \(retainJobs)")
        }
        guard Limits.maxAttempts.contains(maxAttempts) else {
            throw fail(
                "--max-attempts", "max_attempts", "must be between 1 and \(Limits.maxAttempts.upperBound), not \(maxAttempts)")
        }
        if let taskThreads, !Limits.taskThreads.contains(taskThreads) {
            throw fail(
                "--task-threads", "task_threads", "must be between 1 and \(Limits.taskThreads.upperBound), not \(taskThreads)")
        }
        for user in allowedUsers where AccessPolicy.userID(user) == nil {
            throw ConfigurationError(
                "allowed_users: there is no user '\(user)' on this machine; create it or remove it from the list")
        }
        for group in allowedGroups where AccessPolicy.groupID(group) == nil {
            throw ConfigurationError(
                "allowed_groups: there is no group '\(group)' on this machine; create it (groupadd --system \(group)) or remove it from the list"
            )
        }
        guard Limits.idleTimeout.contains(idleTimeout) else {
            throw fail("--idle-timeout", "idle_timeout", "must be between 1 and 86400 seconds, not \(formatDecimal(idleTimeout))")
        }
        guard Limits.watcherTimeout.contains(watcherTimeout) else {
            throw fail(
                "--watcher-timeout", "watcher_timeout", "must be between 1 and 3600 seconds, not \(formatDecimal(watcherTimeout))"
            )
        }
        guard Limits.workerNice.contains(workerNice) else {
            throw fail("--worker-nice", "worker_nice", "must be between 0 and 19, not \(workerNice)")
        }
        if let jobTimeout, !JobLimits.timeout.contains(jobTimeout) {
            throw fail(
                "--job-timeout", "job_timeout", "must be between 0.001 and 86400 seconds, not \(formatDecimal(jobTimeout))")
        }
        guard Self.availableModels.contains(model) else {
            throw fail(
                "--model", "model",
                "\(model.rawValue) is not available in this version; use \(Self.availableModels.map(\.rawValue).joined(separator: " or "))"
            )
        }
        guard Limits.retainAge.contains(retainAge) else {
            throw fail(
                "--retain-age", "retain_age", "must be between 1 second and 10 years (315360000), not \(formatDecimal(retainAge))"
            )
        }
        if let stateDirectory {
            guard stateDirectory.hasPrefix("/") else {
                throw fail("--state-directory", "state_directory", "must be an absolute path, not '\(stateDirectory)'")
            }
            guard stateDirectory.utf8.count <= 4000 else {
                throw fail("--state-directory", "state_directory", "is longer than 4000 bytes")
            }
            guard !ephemeral else {
                throw ConfigurationError(
                    "--ephemeral and --state-directory (config keys 'ephemeral' and 'state_directory') contradict each other: an ephemeral concurd keeps no journal; drop one"
                )
            }
        }
        if let socket {
            guard socket.hasPrefix("/") else { throw fail("--socket", "socket", "must be an absolute path, not '\(socket)'") }
            guard socket.utf8.count < 108 else {
                throw fail("--socket", "socket", "is longer than 107 bytes, the limit of a Unix socket address")
            }
        }
    }

    /// Applies the settings of a TOML config file over these values.
    ///
    /// Unknown keys and wrong types are errors that name the key and the file, so a typo
    /// never passes silently.
    public mutating func apply(toml text: String, file: String) throws(ConfigurationError) {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationError(
                "\(file):\(error.source.begin.line):\(error.source.begin.column): not valid TOML: \(error.description)")
        } catch {
            throw ConfigurationError("\(file): not valid TOML: \(error)")
        }
        for key in table.keys {
            guard let value = table[key] else { continue }
            func fail(_ expectation: String) -> ConfigurationError {
                ConfigurationError("\(file): \(key) must be \(expectation)")
            }
            switch key {
            case "socket":
                guard let path = value.string else { throw fail("a string (an absolute path)") }
                socket = path
            case "workers":
                guard let number = value.int else { throw fail("an integer") }
                workers = number
            case "model":
                guard let name = value.string, let parsed = ConcurrencyModel(rawValue: name) else {
                    throw fail("one of \(ConcurrencyModel.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
                }
                model = parsed
            case "max_queue":
                guard let number = value.int else { throw fail("an integer") }
                maxQueue = number
            case "max_workers":
                guard let number = value.int else { throw fail("an integer") }
                maxWorkers = number
            case "drain_timeout":
                guard let seconds = value.double ?? value.int.map(Double.init) else { throw fail("a number of seconds") }
                drainTimeout = seconds
            case "retain_jobs":
                guard let number = value.int else { throw fail("an integer") }
                retainJobs = number
            case "max_attempts":
                guard let number = value.int else { throw fail("an integer") }
                maxAttempts = number
            case "job_timeout":
                guard let seconds = value.double ?? value.int.map(Double.init) else { throw fail("a number of seconds") }
                jobTimeout = seconds
            case "start_method":
                guard let name = value.string, let method = WorkerStartMethod(rawValue: name) else {
                    throw fail("one of \(WorkerStartMethod.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
                }
                startMethod = method
            case "allowed_users", "allowed_groups":
                guard let array = value.array else { throw fail("a list of names or ids, such as [\"alice\", 1001]") }
                var names: [String] = []
                for element in array {
                    if let name = element.string {
                        names.append(name)
                    } else if let number = element.int, number >= 0 {
                        names.append(String(number))
                    } else {
                        throw fail("a list of names or ids, such as [\"alice\", 1001]")
                    }
                }
                if key == "allowed_users" { allowedUsers = names } else { allowedGroups = names }
            case "state_directory":
                guard let path = value.string else { throw fail("a string (an absolute path)") }
                stateDirectory = path
            case "ephemeral":
                guard let enabled = value.bool else { throw fail("true or false") }
                ephemeral = enabled
            case "retain_age":
                guard let seconds = value.double ?? value.int.map(Double.init) else { throw fail("a number of seconds") }
                retainAge = seconds
            case "journal_sync":
                guard let name = value.string, let sync = JobJournal.Sync(rawValue: name) else {
                    throw fail("one of \(JobJournal.Sync.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
                }
                journalSync = sync
            case "test_hooks":
                guard let enabled = value.bool else { throw fail("true or false") }
                testHooks = enabled
            case "idle_timeout":
                guard let seconds = value.double ?? value.int.map(Double.init) else { throw fail("a number of seconds") }
                idleTimeout = seconds
            case "watcher_timeout":
                guard let seconds = value.double ?? value.int.map(Double.init) else { throw fail("a number of seconds") }
                watcherTimeout = seconds
            case "worker_nice":
                guard let number = value.int else { throw fail("an integer") }
                workerNice = number
            case "task_threads":
                guard let number = value.int else { throw fail("an integer") }
                taskThreads = number
            case "allow_exec":
                guard let allowed = value.bool else { throw fail("true or false") }
                allowExec = allowed
            case "log_level":
                guard let name = value.string, let level = Logger.Level(rawValue: name) else {
                    throw fail("one of \(Logger.Level.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
                }
                logLevel = level
            default:
                throw ConfigurationError("\(file): unknown key '\(key)'; known keys: \(Self.fileKeys.joined(separator: ", "))")
            }
        }
    }
}
