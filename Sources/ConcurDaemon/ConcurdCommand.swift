public import ArgumentParser
import ConcurArguments
import ConcurCore
import ConcurJournal
import ConcurProtocol
import Glibc
import Logging
import Systemd

/// `concurd`: the daemon's command line. The executable only calls `main()`.
public struct ConcurdCommand: ParsableCommand {
    /// The command's name, help text and subcommands.
    public static let configuration = CommandConfiguration(
        commandName: "concurd",
        abstract: "A supervisor daemon whose worker pool runs jobs from one shared queue.",
        discussion: """
            Without a subcommand, concurd serves: it listens on its control socket (see concurctl) \
            until SIGTERM or SIGINT, which drains running jobs; a second signal interrupts them.
            """,
        version: Daemon.version,
        subcommands: [Serve.self, Run.self, Compare.self, Worker.self, ForkServerHelper.self],
        defaultSubcommand: Serve.self)

    /// An empty command, filled in by the argument parser.
    public init() {}
}

extension ConcurdCommand {
    /// `concurd serve`: run the daemon.
    public struct Serve: ParsableCommand {
        /// The command's name, help text and subcommands.
        public static let configuration = CommandConfiguration(
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

        /// An empty command, filled in by the argument parser.
        public init() {}

        /// The merged configuration: defaults, then the config file, then these options.
        public func resolvedConfiguration(readFile: (String) throws(ConfigurationError) -> String = ConfigFile.read)
            throws(ConfigurationError) -> DaemonConfiguration
        {
            var configuration = DaemonConfiguration()
            if let config { try configuration.apply(toml: try readFile(config), file: config) }
            if let socket { configuration.socket = socket }
            if let workers { configuration.workers = workers }
            if let model { configuration.model = model }
            if let maxQueue { configuration.maxQueue = maxQueue }
            if let maxWorkers { configuration.maxWorkers = maxWorkers }
            if let drainTimeout { configuration.drainTimeout = drainTimeout }
            if let retainJobs { configuration.retainJobs = retainJobs }
            if let maxAttempts { configuration.maxAttempts = maxAttempts }
            if let jobTimeout { configuration.jobTimeout = jobTimeout }
            if allowExec { configuration.allowExec = true }
            if let taskThreads { configuration.taskThreads = taskThreads }
            if let executionLog { configuration.executionLog = executionLog }
            if let workerNice { configuration.workerNice = workerNice }
            if let watcherTimeout { configuration.watcherTimeout = watcherTimeout }
            if testHooks { configuration.testHooks = true }
            if let idleTimeout { configuration.idleTimeout = idleTimeout }
            if let stateDirectory { configuration.stateDirectory = stateDirectory }
            if ephemeral { configuration.ephemeral = true }
            if let retainAge { configuration.retainAge = retainAge }
            if let journalSync {
                guard let sync = JobJournal.Sync(rawValue: journalSync) else {
                    throw ConfigurationError(
                        "--journal-sync must be one of \(JobJournal.Sync.allCases.map(\.rawValue).joined(separator: ", ")), not '\(journalSync)'"
                    )
                }
                configuration.journalSync = sync
            }
            if let startMethod {
                guard let method = WorkerStartMethod(rawValue: startMethod) else {
                    throw ConfigurationError(
                        "--start-method must be one of \(WorkerStartMethod.allCases.map(\.rawValue).joined(separator: ", ")), not '\(startMethod)'"
                    )
                }
                configuration.startMethod = method
            }
            if let logLevel {
                guard let level = Logger.Level(rawValue: logLevel) else {
                    throw ConfigurationError(
                        "--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), not '\(logLevel)'"
                    )
                }
                configuration.logLevel = level
            }
            try configuration.validate()
            return configuration
        }

        /// Runs the command.
        public func run() throws {
            let configuration: DaemonConfiguration
            do {
                configuration = try resolvedConfiguration()
            } catch {
                StandardStreams.printError("concurd: \(error.message)")
                throw ExitCode(2)
            }
            let level = LogLevelControl(configuration.logLevel)
            LoggingSystem.bootstrap { label in DaemonLogHandler(label: label, control: level) }
            let status = Daemon.serve(
                configuration: configuration, logger: Logger(label: "concurd"), logLevel: level,
                reloadConfiguration: { () throws(ConfigurationError) in try resolvedConfiguration() })
            if status != 0 { throw ExitCode(status) }
        }
    }

    /// `concurd compare`: one seeded workload under each model, side by side.
    public struct Compare: ParsableCommand {
        /// The command's name, help text and subcommands.
        public static let configuration = CommandConfiguration(
            abstract: "Run one seeded workload under each model in turn and compare them side by side.",
            discussion: """
                No socket and no daemon: the pools run in this process (child workers for processes), \
                at 1, 2, 4, ... up to --workers workers, and the table shows wall and CPU time, \
                throughput, queue-wait and run-time p50/p99, peak RSS and the speed-up over one worker, \
                then what the numbers show. --json for machines; --plot writes an SVG chart of \
                throughput against workers.
                """)

        @Option(help: "Jobs to generate (1 to 1000000, default 200).")
        var jobs: Int = 200

        @Option(help: "The seed; the same seed gives the same jobs (default 1).")
        var seed: UInt64 = 1

        @Option(help: "The largest pool (1 to 64, default 4).")
        var workers: Int = 4

        @Option(help: "The kind of jobs: cpu, prime, sleep or mixed (default cpu).")
        var kind: GeneratedKind = .cpu

        @Option(help: "Multiplies cpu sizes and sleep times (0 to 100, default 0.05: about 5 ms per cpu job).")
        var scale: Double = 0.05

        @Option(help: "The models, comma-separated (default threads,processes,tasks).")
        var models: String = "threads,processes,tasks"

        @Flag(help: "Print the measurements as one JSON object.")
        var json = false

        @Option(help: "Write an SVG chart of throughput against workers to this file.")
        var plot: String?

        /// An empty command, filled in by the argument parser.
        public init() {}

        /// The models asked for, in order.
        var modelList: [ConcurrencyModel] {
            models.split(separator: ",").compactMap { ConcurrencyModel(rawValue: String($0)) }
        }

        /// Checks the options together before the command runs.
        public func validate() throws {
            guard (1...1_000_000).contains(jobs) else {
                throw ValidationError("--jobs must be between 1 and 1000000, not \(jobs)")
            }
            guard (1...64).contains(workers) else { throw ValidationError("--workers must be between 1 and 64, not \(workers)") }
            guard (0...100).contains(scale) else {
                throw ValidationError("--scale must be between 0 and 100, not \(formatDecimal(scale))")
            }
            let names = models.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if let bad = names.first(where: { ConcurrencyModel(rawValue: $0) == nil }) {
                throw ValidationError(
                    "--models takes threads, processes and tasks, comma-separated; '\(bad)' is not one of them")
            }
            if Set(names).count != names.count { throw ValidationError("--models names a model twice: \(models)") }
            if let plot, plot.isEmpty { throw ValidationError("--plot needs a file name, such as compare.svg") }
        }

        /// Runs the command.
        public func run() throws {
            let comparison = Comparison(
                workload: WorkloadRequest(count: jobs, kind: kind, seed: seed, scale: scale), workers: workers,
                models: modelList)
            let measurements: [Comparison.Measurement]
            do {
                let json = json
                measurements = try comparison.measure(runners: WorkerModels.all(nice: 0)) { measurement in
                    if !json {
                        StandardStreams.printError(
                            "  \(measurement.model.rawValue), \(measurement.workers) worker\(measurement.workers == 1 ? "" : "s"): \(formatDuration(measurement.wall))"
                        )
                    }
                }
            } catch {
                StandardStreams.printError("concurd compare: \(error)")
                throw ExitCode(1)
            }
            if let plot {
                do {
                    try TextFile.write(comparison.svg(measurements), to: plot)
                } catch {
                    StandardStreams.printError(
                        "concurd compare: cannot write the chart to \(plot): \(error); pick a writable path")
                    throw ExitCode(73)
                }
            }
            if json {
                StandardStreams.printLine(comparison.json(measurements).serialized)
                return
            }
            for line in comparison.table(measurements) { StandardStreams.printLine(line) }
            StandardStreams.printLine("")
            for line in comparison.explanation(measurements) { StandardStreams.printLine(line) }
            if let plot { StandardStreams.printLine("chart: \(plot)") }
        }
    }

    /// `concurd run`: one seeded workload in the foreground, no socket.
    public struct Run: ParsableCommand {
        /// The command's name, help text and subcommands.
        public static let configuration = CommandConfiguration(
            abstract: "Run one seeded workload in the foreground and print each job and a summary.",
            discussion: """
                Like the seed demo (python -m demo.threads): N workers run seeded, randomly generated \
                jobs for at most --time seconds. Ctrl-C lets running jobs finish; a second Ctrl-C \
                interrupts them. The summary names every job that did not run. Exit status 0 when \
                every job was done, 1 otherwise.
                """)

        @Option(help: "The concurrency model: \(DaemonConfiguration.availableModels.map(\.rawValue).joined(separator: ", ")).")
        var model: ConcurrencyModel = .threads

        @Option(help: "Jobs to generate (1 to \(JobLimits.jobsPerGenerate)).")
        var jobs: Int = 20

        @Option(help: "Workers (1 to 4096).")
        var workers: Int = 4

        @Option(help: "The seed; the same seed gives the same jobs (default: random, and printed).")
        var seed: UInt64?

        @Option(help: "Seconds before running jobs are interrupted and the rest abandoned.")
        var time: Double = 10

        @Option(help: "The kind of jobs: cpu, prime, sleep or mixed.")
        var kind: GeneratedKind = .cpu

        @Option(help: "Multiplies cpu sizes and sleep times (0 to 100; 0 makes no-op jobs).")
        var scale: Double = 1

        /// An empty command, filled in by the argument parser.
        public init() {}

        /// Checks the options together before the command runs.
        public func validate() throws {
            guard DaemonConfiguration.availableModels.contains(model) else {
                throw ValidationError(
                    "the \(model.rawValue) model is not available in this version; use \(DaemonConfiguration.availableModels.map(\.rawValue).joined(separator: " or "))"
                )
            }
            guard (1...JobLimits.jobsPerGenerate).contains(jobs) else {
                throw ValidationError("--jobs must be between 1 and \(JobLimits.jobsPerGenerate), not \(jobs)")
            }
            guard DaemonConfiguration.Limits.maxWorkers.contains(workers) else {
                throw ValidationError(
                    "--workers must be between 1 and \(DaemonConfiguration.Limits.maxWorkers.upperBound), not \(workers)")
            }
            guard time > 0 && time <= 86_400 else {
                throw ValidationError("--time must be more than 0 and at most 86400 seconds, not \(formatDecimal(time))")
            }
            guard WorkloadRequest.scaleRange.contains(scale) else {
                throw ValidationError("--scale must be between 0 and 100, not \(formatDecimal(scale))")
            }
            guard seed.map({ $0 <= UInt64(Int64.max) }) ?? true else {
                throw ValidationError("--seed must be between 0 and \(Int64.max)")
            }
        }

        /// The run these options describe.
        public var foregroundRun: ForegroundRun {
            ForegroundRun(
                model: model, workers: workers, workload: WorkloadRequest(count: jobs, kind: kind, seed: seed, scale: scale),
                timeLimit: time)
        }

        /// Runs the command.
        public func run() throws {
            let status = foregroundRun.run()
            if status != 0 { throw ExitCode(status) }
        }
    }
}

/// The options of the daemon's hidden child modes: the daemon's pid, the execution log, and
/// how far below the daemon the workers run.
public struct ChildOptions: ParsableArguments {
    @Option(help: "The daemon's pid; the child exits if its parent is another.")
    var parent: Int32

    @Option(name: .customLong("execution-log"), help: "Where each run of a job is recorded (the daemon's log).")
    var executionLog: String?

    @Option(help: "Nice levels below the daemon the workers run at.")
    var nice: Int = 0

    /// An empty set of options, filled in by the argument parser.
    public init() {}

    /// Opens the execution log, if one was given; `who` names the child in the error.
    func openExecutionLog(who: String) throws {
        guard let executionLog else { return }
        do {
            try ExecutionLog.open(path: executionLog)
        } catch {
            StandardStreams.printError("concurd \(who): \(error)")
            throw ExitCode(74)
        }
    }
}

extension ConcurdCommand {
    /// `concurd __worker`: the child worker of the processes model (not for people).
    public struct Worker: ParsableCommand {
        /// Hidden: started by the daemon itself, with its channel as fd 3.
        public static let configuration = CommandConfiguration(commandName: "__worker", shouldDisplay: false)

        @OptionGroup var child: ChildOptions

        /// An empty command, filled in by the argument parser.
        public init() {}

        /// Serves jobs until retired or orphaned; never returns.
        public func run() throws {
            try child.openExecutionLog(who: "worker")
            ChildWorker.run(parentPID: child.parent, nice: child.nice)
        }
    }

    /// `concurd __forkserver`: the forkserver helper of the processes model (not for people).
    public struct ForkServerHelper: ParsableCommand {
        /// Hidden: started by the daemon itself, with its socket as fd 3.
        public static let configuration = CommandConfiguration(commandName: "__forkserver", shouldDisplay: false)

        @OptionGroup var child: ChildOptions

        /// An empty command, filled in by the argument parser.
        public init() {}

        /// Forks workers on request until the daemon goes away; never returns.
        public func run() throws {
            try child.openExecutionLog(who: "forkserver")
            ForkServer.serveAsHelper(parentPID: child.parent, nice: child.nice)
        }
    }
}

/// Reading a small text file (the config) with an error that names it.
public enum TextFile {
    /// The file's contents as UTF-8 text.
    public static func read(_ path: String) throws(ConfigurationError) -> String {
        try read(path) { (_: stat) throws(ConfigurationError) in }
    }

    /// The file's contents as UTF-8 text; `check` sees the opened file's status before a byte
    /// is read (what was opened, not what the path names by then).
    static func read(
        _ path: String, flags: Int32 = 0, checking check: (stat) throws(ConfigurationError) -> Void
    ) throws(ConfigurationError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC | flags)
        guard fd >= 0 else {
            throw ConfigurationError("cannot read \(path): \(String(cString: strerror(errno))); check --config")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ConfigurationError("cannot read \(path): \(String(cString: strerror(errno)))") }
        try check(info)
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw ConfigurationError("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            guard bytes.count <= 1 << 20 else { throw ConfigurationError("\(path) is larger than 1 MiB; is it the right file?") }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigurationError("\(path) is not UTF-8 text")
        }
        return text
    }

    /// Writes `text` to `path` (created or truncated, mode 0644); the error says why not.
    public static func write(_ text: String, to path: String) throws(ConfigurationError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ConfigurationError(String(cString: strerror(errno))) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw ConfigurationError(String(cString: strerror(errno)))
            }
            offset += written
        }
    }
}

// The parsed options are read, never changed, once parsing is done: a reload reads them again
// from another thread (SIGHUP, `Reload()`).
extension ConcurdCommand.Serve: @unchecked Sendable {}
