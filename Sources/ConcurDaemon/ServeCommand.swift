package import ArgumentParser
import ConcurCore
import ConcurJournal
import ConcurProtocol
import ConcurRuntime
import Logging
import Systemd

extension ConcurdCommand {
    /// `concurd serve`: run the daemon.
    package struct Serve: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
            abstract: "Run the daemon: control socket, worker pool, systemd notifications.")

        @Option(
            help: "The control socket (default: /run/concurd/control.sock for root, else $XDG_RUNTIME_DIR/concurd/control.sock).")
        var socket: String?

        @Option(help: "Workers to start with (default 4).")
        var workers: Int?

        @Option(help: "The concurrency model: \(DaemonConfiguration.availableModels.map(\.rawValue).joined(separator: ", ")).")
        var model: ConcurrencyModel?

        @Option(name: .customLong("max-queue"), help: "Queued jobs beyond this are refused with QueueFull (default 100000).")
        var maxQueue: Int?

        @Option(name: .customLong("max-workers"), help: "The largest pool a resize may ask for (default 256).")
        var maxWorkers: Int?

        @Option(name: .customLong("drain-timeout"), help: "Seconds running jobs get to finish after SIGTERM (default 30).")
        var drainTimeout: Double?

        @Option(name: .customLong("retain-jobs"), help: "Finished jobs kept for `concurctl jobs` (default 10000).")
        var retainJobs: Int?

        @Option(help: "A TOML config file; command-line options override it.")
        var config: String?

        @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
        var logLevel: String?

        @Option(
            name: .customLong("max-attempts"), help: "Attempts a job gets when its worker dies under it (1 to 100, default 3).")
        var maxAttempts: Int?

        @Option(
            name: .customLong("job-timeout"), help: "Seconds a job may run unless it sets its own timeout (default: no limit).")
        var jobTimeout: Double?

        @Flag(name: .customLong("allow-exec"), help: "Accept exec jobs (they run commands as the daemon's user).")
        var allowExec = false

        @Option(
            name: .customLong("max-output"),
            help: "Bytes kept of each stream of an exec job's output, its head and tail (4096 to 2^30, default 1048576).")
        var maxOutput: Int?

        @Option(
            name: .customLong("max-output-total"),
            help: "Bytes of output kept for all jobs, the oldest finished jobs' going first (2^20 to 2^40, default 1073741824).")
        var maxOutputTotal: Int?

        @Option(
            name: .customLong("task-threads"),
            help: "Threads the tasks model's worker tasks share (1 to 256, default: one per core).")
        var taskThreads: Int?

        @Option(
            name: .customLong("start-method"),
            help: "How the processes model starts a child: spawn (a fresh process) or forkserver (a fork of a helper).")
        var startMethod: String?

        @Option(
            name: .customLong("worker-nice"),
            help:
                "Nice levels the workers run below the control plane, so it stays responsive on busy cores (0 to 19, default 10)."
        )
        var workerNice: Int?

        @Option(
            name: .customLong("watcher-timeout"),
            help: "Seconds a client may leave its replies unread before it is disconnected (1 to 3600, default 30).")
        var watcherTimeout: Double?

        @Option(
            name: .customLong("idle-timeout"),
            help:
                "Seconds a control connection may stay silent with no call running before it is closed (1 to 86400, default 60).")
        var idleTimeout: Double?

        @Flag(
            name: .customLong("test-hooks"),
            help: ArgumentHelp("Let SIGUSR2 hang the supervisor loop, to test the watchdog.", visibility: .hidden))
        var testHooks = false

        @Option(
            name: .customLong("execution-log"),
            help: ArgumentHelp(
                "Append a line for the start and the end of every run of every job to this file (for tests).",
                visibility: .hidden))
        var executionLog: String?

        @Option(
            name: .customLong("state-directory"),
            help:
                "Where the job journal lives (default: $STATE_DIRECTORY under systemd, /var/lib/concurd for root, else ~/.local/state/concurd)."
        )
        var stateDirectory: String?

        @Flag(help: "Keep jobs in memory only: no journal; a stop cancels queued jobs and a crash loses them.")
        var ephemeral = false

        @Option(name: .customLong("retain-age"), help: "Seconds finished jobs are kept (default 604800: a week).")
        var retainAge: Double?

        @Option(
            name: .customLong("journal-sync"),
            help: "normal: the journal survives a crash of concurd; full: a power loss too, with an fsync per commit.")
        var journalSync: String?

        @Option(
            name: .customLong("store"),
            help: ArgumentHelp(
                "A PostgreSQL queue shared with other nodes, postgres://USER@HOST/DB (?host=/socket/dir for a local server).",
                valueName: "URL"))
        var store: String?

        @Option(
            name: .customLong("store-password-file"),
            help: ArgumentHelp(
                "The store's password, as a libpq password file (mode 0600); else PGPASSFILE, then ~/.pgpass.",
                valueName: "FILE"))
        var storePasswordFile: String?

        @Option(
            name: .customLong("node"),
            help: ArgumentHelp("This node's name in the shared store (default: the host name).", valueName: "NAME"))
        var node: String?

        @Option(
            name: .customLong("lease-timeout"),
            help: "Seconds a node may go without a heartbeat before another runs its jobs again (2 to 3600, default 30).")
        var leaseTimeout: Double?

        @Option(
            name: .customLong("pool"),
            help: ArgumentHelp(
                "A pool besides default, as NAME=MODEL:WORKERS (io=tasks:64); repeat for each. Over the config file's [pools.NAME].",
                valueName: "NAME=MODEL:WORKERS"))
        var pool: [String] = []

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// The flags given, by the key of their setting: the one place the declared flags meet
        /// ``DaemonSettings`` (`DaemonSettingsTests` checks that they agree). A switch that is
        /// off is not given: it cannot turn a config file's `true` off.
        var givenFlags: [String: SettingValue] {
            var given: [String: SettingValue] = [:]
            given["socket"] = socket.map(SettingValue.text)
            given["workers"] = workers.map(SettingValue.integer)
            given["model"] = model.map { .text($0.rawValue) }
            given["max_queue"] = maxQueue.map(SettingValue.integer)
            given["max_workers"] = maxWorkers.map(SettingValue.integer)
            given["drain_timeout"] = drainTimeout.map(SettingValue.seconds)
            given["retain_jobs"] = retainJobs.map(SettingValue.integer)
            given["retain_age"] = retainAge.map(SettingValue.seconds)
            given["state_directory"] = stateDirectory.map(SettingValue.text)
            given["ephemeral"] = ephemeral ? .toggle(true) : nil
            given["journal_sync"] = journalSync.map(SettingValue.text)
            given["store"] = store.map(SettingValue.text)
            given["store_password_file"] = storePasswordFile.map(SettingValue.text)
            given["node"] = node.map(SettingValue.text)
            given["lease_timeout"] = leaseTimeout.map(SettingValue.seconds)
            given["max_attempts"] = maxAttempts.map(SettingValue.integer)
            given["job_timeout"] = jobTimeout.map(SettingValue.seconds)
            given["allow_exec"] = allowExec ? .toggle(true) : nil
            given["max_output"] = maxOutput.map(SettingValue.integer)
            given["max_output_total"] = maxOutputTotal.map(SettingValue.integer)
            given["task_threads"] = taskThreads.map(SettingValue.integer)
            given["worker_nice"] = workerNice.map(SettingValue.integer)
            given["start_method"] = startMethod.map(SettingValue.text)
            given["idle_timeout"] = idleTimeout.map(SettingValue.seconds)
            given["watcher_timeout"] = watcherTimeout.map(SettingValue.seconds)
            given["log_level"] = logLevel.map(SettingValue.text)
            given["test_hooks"] = testHooks ? .toggle(true) : nil
            given["execution_log"] = executionLog.map(SettingValue.text)
            return given
        }

        /// The merged configuration: defaults, then the config file, then these options.
        package func resolvedConfiguration(readFile: (String) throws(ConfigurationError) -> String = ConfigFile.read)
            throws(ConfigurationError) -> DaemonConfiguration
        {
            var configuration = DaemonConfiguration()
            if let config { try configuration.apply(toml: try readFile(config), file: config) }
            let given = givenFlags
            for setting in DaemonSettings.all {
                guard let value = given[setting.key] else { continue }
                try setting.assign(value, &configuration, .flag)
            }
            try configuration.apply(poolFlags: pool)
            try configuration.validate()
            return configuration
        }

        /// Runs the command.
        package func run() throws {
            let configuration: DaemonConfiguration
            do {
                configuration = try resolvedConfiguration()
            } catch {
                StandardStreams.printError("concurd: \(error.message)")
                throw ExitCode(2)
            }
            if configuration.store != nil && SharedQueueSupport.join == nil {
                let why = SharedQueueSupport.handOver(arguments: Array(CommandLine.arguments.dropFirst()))
                StandardStreams.printError("concurd: \(why)")
                throw ExitCode(1)
            }
            let level = LogLevelControl(configuration.logLevel)
            LoggingSystem.bootstrap { label in DaemonLogHandler(label: label, control: level, identity: Daemon.journalIdentity) }
            let status = Daemon.serve(
                configuration: configuration, logger: Logger(label: "concurd"), logLevel: level,
                reloadConfiguration: { () throws(ConfigurationError) in try resolvedConfiguration() })
            if status != 0 { throw ExitCode(status) }
        }
    }
}

// The parsed options are read, never changed, once parsing is done: a reload reads them again
// from another thread (SIGHUP, `Reload()`).
extension ConcurdCommand.Serve: @unchecked Sendable {}
