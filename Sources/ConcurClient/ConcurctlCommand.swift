public import ArgumentParser
import CConcurShims
import ConcurArguments
public import ConcurProtocol
import Glibc
import Varlink

/// `concurctl`: the command line of the client. The executable only calls `main()`.
public struct ConcurctlCommand: ParsableCommand {
    /// The command's name, help text and subcommands.
    public static let configuration = CommandConfiguration(
        commandName: "concurctl",
        abstract: "Control concurd: submit jobs, resize the pool, read status and statistics.",
        discussion: """
            The socket is --socket, else $CONCUR_SOCKET, else /run/concurd/control.sock for root and \
            $XDG_RUNTIME_DIR/concurd/control.sock for anyone else. Exit status: 0 success, 1 refused \
            or some job did not end done, 64 wrong usage, 69 concurd unreachable, 77 not allowed.
            """,
        version: "0.1.0",
        subcommands: [
            Submit.self, Resize.self, Model.self, Pause.self, Resume.self, Reload.self, Status.self, Stats.self, Top.self,
            Jobs.self,
        ])

    /// An empty command, filled in by the argument parser.
    public init() {}
}

/// Options every subcommand takes.
public struct CommonOptions: ParsableArguments {
    @Option(help: "The control socket (default: $CONCUR_SOCKET, else the default path).")
    var socket: String?

    @Option(
        name: .customLong("server-user"),
        help: ArgumentHelp(
            "Also trust a concurd running as this user (name or uid) on the socket (default: $CONCUR_SERVER_USER).",
            discussion: "Without it, only a concurd running as root or as the owner of the socket's directory is trusted."))
    var serverUser: String?

    @Flag(help: "Print the reply as JSON (one object per line) instead of text.")
    var json = false

    /// An empty command, filled in by the argument parser.
    public init() {}

    /// Connects to the daemon, checking who answers.
    func connect() throws(ClientFailure) -> ControlClient {
        try ControlClient(socketPath: ControlClient.resolveSocket(socket), serverUser: trustedServerUser())
    }

    /// The user `--server-user` (or `$CONCUR_SERVER_USER`) names, if any.
    func trustedServerUser() throws(ClientFailure) -> UInt32? {
        let (text, source): (String?, String) =
            serverUser.map { ($0, "--server-user") }
            ?? (getenv(ServerCheck.environmentVariable).map { String(cString: $0) }, ServerCheck.environmentVariable)
        guard let text, !text.isEmpty else { return nil }
        guard let uid = ServerCheck.userID(text) else {
            throw ClientFailure(
                "\(source): no user '\(text.prefix(64))' on this machine; give a user name or a numeric uid",
                exitCode: ClientFailure.ExitStatus.usage)
        }
        return uid
    }

    /// Calls `method` and prints the reply: as JSON with `--json`, else the lines of `render`.
    func show(
        _ method: SupervisorInterface.Method, _ parameters: JSONObject = [:],
        render: (JSONObject) throws(ClientFailure) -> [String]
    ) throws {
        try perform { () throws(ClientFailure) in try present(connect().call(method, parameters), render: render) }
    }

    /// Prints a reply: as JSON with `--json`, else the lines of `render`.
    func present(_ reply: JSONObject, render: (JSONObject) throws(ClientFailure) -> [String]) throws(ClientFailure) {
        if json {
            printJSON(reply)
        } else {
            for line in try render(reply) { StandardStreams.printLine(line) }
        }
    }
}

/// Runs a subcommand body, turning a ``ClientFailure`` into its one-line message and status.
func perform(_ body: () throws(ClientFailure) -> Void) throws {
    do {
        try body()
    } catch {
        StandardStreams.printError("concurctl: \(TerminalText.escaped(error.message))")
        throw ExitCode(error.exitCode)
    }
}

/// Prints a reply object as one line of JSON.
func printJSON(_ object: JSONObject) {
    StandardStreams.printLine(JSON.object(object).serialized)
}

extension ConcurctlCommand {
    /// `concurctl submit`: queue jobs, optionally waiting for them.
    public struct Submit: ParsableCommand {
        /// The command's name, help text and subcommands.
        public static let configuration = CommandConfiguration(
            abstract: "Queue jobs: generated (--jobs N) or listed (prime:97 sleep:250 ... or the preset 'primes').",
            discussion: """
                Listed jobs are cpu:SIZE, prime:N, sleep:MS and fail. With --wait, concurctl prints each \
                job as it finishes and exits 0 only if every one is done.
                """)

        @Argument(
            help: ArgumentHelp(
                "Jobs to submit: cpu:SIZE, prime:N, sleep:MS, fail, crash, or 'primes' for the 20-number preset. With --exec: the command and its arguments, after --.",
                valueName: "job"))
        var specs: [String] = []

        @Option(help: "Generate this many jobs (1 to \(JobLimits.jobsPerGenerate)).")
        var jobs: Int?

        @Option(help: "With --jobs: cpu, prime, sleep or mixed (default cpu).")
        var kind: GeneratedKind?

        @Option(help: "With --jobs: the seed; the same seed gives the same jobs (default: chosen by concurd, and printed).")
        var seed: Int64?

        @Option(help: "With --jobs: multiply cpu sizes and sleep times (0 to 100; 0 makes no-op jobs).")
        var scale: Double?

        @Flag(help: "Submit one exec job: the command and its arguments follow --.")
        var exec = false

        @Option(help: "Seconds each job may run before it is stopped and fails (default: concurd's --job-timeout).")
        var timeout: Double?

        @Flag(help: "Run crash jobs even outside the processes model (they take the daemon down).")
        var force = false

        @Flag(help: "Wait for the jobs, printing each as it finishes.")
        var wait = false

        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        public init() {}

        /// The jobs listed on the command line (the `primes` preset expanded, `--exec` and
        /// `--force` applied), each with `--timeout`.
        public func listedJobs() throws(ClientFailure) -> [JobSpec] {
            if exec { return [JobSpec(.exec(argv: specs), timeout: timeout)] }
            var kinds: [JobKind] = []
            for spec in specs {
                if spec == "primes" {
                    kinds += JobKind.primesPreset
                    continue
                }
                do {
                    var kind = try JobKind(commandLine: spec)
                    if case .crash = kind, force { kind = .crash(forced: true) }
                    kinds.append(kind)
                } catch {
                    throw ClientFailure(error.description, exitCode: ClientFailure.ExitStatus.usage)
                }
            }
            return kinds.map { JobSpec($0, timeout: timeout) }
        }

        /// Checks the options together before the command runs.
        public func validate() throws {
            if exec {
                guard jobs == nil else { throw ValidationError("--exec submits one command; --jobs does not apply") }
                guard !specs.isEmpty else {
                    throw ValidationError("--exec needs a command after --, e.g. concurctl submit --exec -- make test")
                }
                if let problem = JobKind.problem(withArguments: specs) { throw ValidationError(problem) }
            }
            if let timeout, !JobLimits.timeout.contains(timeout) {
                throw ValidationError("--timeout must be between 0.001 and 86400 seconds, not \(formatDecimal(timeout))")
            }
            if jobs != nil && !specs.isEmpty {
                throw ValidationError("give either --jobs N or a list of jobs, not both")
            }
            if jobs == nil && !exec {
                if specs.isEmpty {
                    throw ValidationError(
                        "nothing to submit: give --jobs N, a list such as 'prime:97 sleep:250', 'primes', or --exec -- CMD")
                }
                if kind != nil || seed != nil || scale != nil {
                    throw ValidationError("--kind, --seed and --scale only apply to generated jobs (--jobs N)")
                }
            }
            if let jobs, !(1...JobLimits.jobsPerGenerate).contains(jobs) {
                throw ValidationError("--jobs must be between 1 and \(JobLimits.jobsPerGenerate), not \(jobs)")
            }
            if let seed, seed < 0 { throw ValidationError("--seed must be between 0 and \(Int64.max)") }
            if let scale, !WorkloadRequest.scaleRange.contains(scale) {
                throw ValidationError("--scale must be between 0 and 100, not \(formatDecimal(scale))")
            }
            if !exec && specs.count > JobLimits.jobsPerSubmit {
                throw ValidationError("at most \(JobLimits.jobsPerSubmit) listed jobs at once; use --jobs N for more")
            }
        }

        /// Runs the command.
        public func run() throws {
            try perform { () throws(ClientFailure) in
                let method: SupervisorInterface.Method
                let parameters: JSONObject
                if let jobs {
                    method = .generate
                    parameters =
                        WorkloadRequest(count: jobs, kind: kind ?? .cpu, seed: seed.map(UInt64.init), scale: scale ?? 1)
                        .parameters
                } else {
                    let listed = try listedJobs()
                    guard listed.count <= JobLimits.jobsPerSubmit else {
                        throw ClientFailure(
                            "at most \(JobLimits.jobsPerSubmit) listed jobs at once; use --jobs N for more",
                            exitCode: ClientFailure.ExitStatus.usage)
                    }
                    method = .submit
                    parameters = ["jobs": .array(listed.map(\.json))]
                }
                let client = try common.connect()
                guard wait else {
                    let reply = try client.call(method, parameters)
                    if common.json { printJSON(reply) } else { StandardStreams.printLine(accepted(reply)) }
                    return
                }
                try waitForJobs(client: client, method: method, parameters: parameters)
            }
        }

        private func accepted(_ reply: JSONObject) -> String {
            if case .array(let ids) = reply["ids"] {
                let numbers = ids.compactMap { value -> UInt64? in
                    if case .int(let id) = value { return UInt64(id) }
                    return nil
                }
                return "submitted \(numbers.count) job\(numbers.count == 1 ? "" : "s"): ids \(Rendering.idRange(numbers))"
            }
            let number = { (key: String) -> String in
                if case .int(let value) = reply[key] { return String(value) }
                return "?"
            }
            return "submitted \(number("count")) jobs: ids \(number("first"))-\(number("last")) (seed \(number("seed")))"
        }

        private func waitForJobs(client: ControlClient, method: SupervisorInterface.Method, parameters: JSONObject)
            throws(ClientFailure)
        {
            var done = 0
            var failed = 0
            var cancelled = 0
            var announced = false
            var start: Double?
            var end: Double = 0
            try client.stream(method, parameters) { reply throws(ClientFailure) in
                guard reply["job"] != nil else {
                    if common.json {
                        printJSON(reply)
                    } else if !announced {
                        StandardStreams.printLine(accepted(reply))
                    }
                    announced = true
                    return true
                }
                let job = try ControlClient.decode(JobInfo.self, "job", in: reply)
                switch job.state {
                case .done: done += 1
                case .failed: failed += 1
                default: cancelled += 1
                }
                start = min(start ?? job.submittedAt, job.submittedAt)
                end = max(end, job.finishedAt ?? 0)
                if common.json {
                    printJSON(["job": job.json])
                } else {
                    StandardStreams.printLine(Rendering.finishedJob(job))
                }
                return true
            }
            if !common.json {
                StandardStreams.printLine(
                    Rendering.waitSummary(done: done, failed: failed, cancelled: cancelled, seconds: max(0, end - (start ?? end)))
                )
            }
            if failed + cancelled > 0 { throw ExitCodeFailure.someJobsDidNotFinish }
        }
    }

    /// `concurctl resize`: set the number of workers.
    public struct Resize: ParsableCommand {
        /// The command's name, help text and subcommands.
        public static let configuration = CommandConfiguration(
            abstract:
                "Set the number of workers: growing starts workers at once; shrinking retires idle workers first, busy ones after their job."
        )

        @Option(help: "The new number of workers.")
        var workers: Int

        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        public init() {}

        /// Checks the options together before the command runs.
        public func validate() throws {
            guard workers >= 1 else { throw ValidationError("--workers must be at least 1, not \(workers)") }
        }

        /// Runs the command.
        public func run() throws {
            try common.show(.resize, ["workers": workers.json]) { reply throws(ClientFailure) in
                ["workers: \(try ControlClient.decode(Int.self, "previous", in: reply)) -> \(workers)"]
            }
        }
    }

    /// `concurctl model`: switch the concurrency model while the pool runs.
    public struct Model: ParsableCommand {
        /// The command's name, help text and subcommands.
        public static let configuration = CommandConfiguration(
            abstract: "Switch the concurrency model (threads, processes or tasks) while jobs keep flowing.",
            discussion: """
                The queue stays. By default the handover is graceful: workers of the old model take no \
                more jobs and retire after their running job (idle ones at once), and a worker of the \
                new model starts in each place one leaves, so the pool never has more workers than \
                asked for. With --preempt, running jobs are interrupted instead and go back to the head \
                of the queue, to run again from the start. concurctl returns once a worker of the new \
                model serves; interrupting it does not undo the switch.
                """)

        @Argument(help: "The model to switch to: threads, processes or tasks.")
        var model: ConcurrencyModel

        @Flag(help: "Interrupt running jobs and queue them again instead of waiting for them.")
        var preempt = false

        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        public init() {}

        /// Runs the command.
        public func run() throws {
            try perform { () throws(ClientFailure) in
                // A graceful handover may wait for a long job: no reply timeout.
                let reply = try common.connect().call(.setModel, ["model": model.json, "preempt": .bool(preempt)], timeout: 0)
                if common.json {
                    printJSON(reply)
                    return
                }
                let previous = try ControlClient.decode(ConcurrencyModel.self, "previous", in: reply)
                guard try ControlClient.decode(Bool.self, "changed", in: reply) else {
                    StandardStreams.printLine("model: already \(model.rawValue)")
                    return
                }
                let seconds = try ControlClient.decode(Double.self, "servingAfter", in: reply)
                StandardStreams.printLine(
                    "model: \(previous.rawValue) -> \(model.rawValue) (serving after \(formatDuration(seconds)))")
            }
        }
    }

    /// `concurctl status`: the daemon at a glance.
    public struct Status: ParsableCommand {
        /// The command's name, help text and subcommands.
        public static let configuration = CommandConfiguration(abstract: "Show the model, workers, queue and job totals.")

        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        public init() {}

        /// Runs the command.
        public func run() throws {
            try common.show(.status) { reply throws(ClientFailure) in
                Rendering.status(try ControlClient.decode(PoolStatus.self, "status", in: reply))
            }
        }
    }

    /// `concurctl stats`: everything measured, once or as it changes.
    public struct Stats: ParsableCommand {
        /// The command's name, help text and subcommands.
        public static let configuration = CommandConfiguration(
            abstract: "Show throughput, latency percentiles, the daemon's CPU and memory, and one row per worker.",
            discussion: """
                With --follow, one line per interval (vmstat style; --json: one JSON object per line) until \
                Ctrl-C or until concurd stops. --format prometheus prints the Prometheus text format, for \
                node_exporter's textfile collector.
                """)

        /// What `stats` prints.
        public enum Format: String, ExpressibleByArgument, CaseIterable, Sendable {
            /// Aligned text for people.
            case text
            /// The reply as JSON (NDJSON with --follow).
            case json
            /// The Prometheus text exposition format.
            case prometheus
        }

        @Flag(name: [.customShort("f"), .long], help: "Print a line per interval until Ctrl-C or until concurd stops.")
        var follow = false

        @Option(help: "Time between lines with --follow: 50ms to 60s, such as 1s, 250ms or 0.5 (default 1s).")
        var interval: String = "1s"

        @Option(help: "text, json or prometheus (default text; --json is json).")
        var format: Format?

        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        public init() {}

        /// The format asked for, `--json` included.
        var resolvedFormat: Format { format ?? (common.json ? .json : .text) }

        /// Checks the options together before the command runs.
        public func validate() throws {
            if common.json, let format, format != .json {
                throw ValidationError("--json and --format \(format.rawValue) contradict each other; give one")
            }
            if follow && resolvedFormat == .prometheus {
                throw ValidationError("--format prometheus prints one snapshot (scrapers poll); drop --follow")
            }
            _ = try Self.seconds(interval)
        }

        /// `text` as seconds between 0.05 and 60: a number with an optional unit (ms, s, m).
        static func seconds(_ text: String) throws(ValidationError) -> Double {
            var number = Substring(text)
            var scale = 1.0
            for (suffix, factor) in [("ms", 0.001), ("s", 1.0), ("m", 60.0)] where number.hasSuffix(suffix) {
                number = number.dropLast(suffix.count)
                scale = factor
                break
            }
            guard let value = Double(number), value.isFinite else {
                throw ValidationError("--interval must be a duration such as 1s, 250ms or 0.5, not '\(text)'")
            }
            let seconds = value * scale
            guard (0.05...60).contains(seconds) else {
                throw ValidationError("--interval must be between 50ms and 60s, not '\(text)'")
            }
            return seconds
        }

        /// Runs the command.
        public func run() throws {
            let format = resolvedFormat
            guard follow else {
                try perform { () throws(ClientFailure) in
                    let reply = try common.connect().call(.stats)
                    let stats = try ControlClient.decode(PoolStats.self, "stats", in: ["stats": .object(reply)])
                    switch format {
                    case .json: printJSON(reply)
                    case .text: for line in Rendering.stats(stats) { StandardStreams.printLine(line) }
                    case .prometheus: StandardStreams.printText(PrometheusExposition.text(stats))
                    }
                }
                return
            }
            let seconds = try Self.seconds(interval)
            try perform { () throws(ClientFailure) in
                let client = try common.connect()
                // Lines are written whole, one write each: ending at once on Ctrl-C cuts none.
                concur_exit_quietly_on_signals()
                var rows: Int32 = 0
                var columns: Int32 = 0
                concur_terminal_size(1, &rows, &columns)
                let screenful = rows > 3 ? Int(rows) - 1 : Int.max
                var lines = FollowLines()
                var printed = 0
                let end = try client.follow(.watchStats, ["interval": seconds.json]) { reply throws(ClientFailure) in
                    if format == .json {
                        printJSON(reply)
                        return true
                    }
                    let stats = try ControlClient.decode(PoolStats.self, "stats", in: ["stats": .object(reply)])
                    if printed % screenful == 0 { StandardStreams.printLine(FollowLines.header) }
                    StandardStreams.printLine(lines.line(for: stats, clock: StandardStreams.localTime()))
                    printed += 1
                    return true
                }
                let reason: String
                switch end {
                case .finished: reason = "concurd is stopping: it ended the stream"
                case .closedByDaemon: reason = "concurd closed the connection (it stopped, or dropped a reader that fell behind)"
                case .lost(let why): reason = why
                }
                if format == .json {
                    printJSON(["end": .string(reason)])
                } else {
                    StandardStreams.printLine(lines.farewell(reason: reason))
                }
            }
        }
    }

    /// `concurctl pause`: workers stop taking jobs.
    public struct Pause: ParsableCommand {
        /// The command's name, help text and subcommands.
        public static let configuration = CommandConfiguration(
            abstract: "Stop handing out jobs: running jobs finish, new ones wait in the queue until `resume`.")

        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        public init() {}

        /// Runs the command.
        public func run() throws {
            try common.show(.pause) { reply in
                [reply["changed"] == .bool(true) ? "paused: workers take no new jobs" : "already paused"]
            }
        }
    }

    /// `concurctl reload`: the daemon reads its configuration file again and applies it.
    public struct Reload: ParsableCommand {
        /// The command's name, help text and subcommands.
        public static let configuration = CommandConfiguration(
            abstract: "Make concurd read its configuration file again and apply it; returns once it is applied.",
            discussion: """
                Workers, model (a graceful switch), queue limit, drain timeout, retention, attempts, job \
                timeout, exec permission and log level change live. The unit's ExecReload= uses it, so that \
                `systemctl reload concurd` returns after the change. A file that does not pass its checks \
                changes nothing and the reason is printed.
                """)

        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        public init() {}

        /// Runs the command.
        public func run() throws {
            try perform { () throws(ClientFailure) in
                let reply = try common.connect().call(.reload, timeout: 0)
                if common.json {
                    printJSON(reply)
                    return
                }
                let applied = (try? ControlClient.decode([String].self, "applied", in: reply)) ?? []
                let later = (try? ControlClient.decode([String].self, "restartNeeded", in: reply)) ?? []
                StandardStreams.printLine(
                    applied.isEmpty ? "reloaded: nothing changed" : "reloaded: " + applied.joined(separator: ", "))
                if !later.isEmpty {
                    StandardStreams.printLine("at the next start (restart concurd to apply): " + later.joined(separator: ", "))
                }
            }
        }
    }

    /// `concurctl resume`: workers take jobs again.
    public struct Resume: ParsableCommand {
        /// The command's name, help text and subcommands.
        public static let configuration = CommandConfiguration(abstract: "Hand out jobs again after `pause`.")

        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        public init() {}

        /// Runs the command.
        public func run() throws {
            try common.show(.resume) { reply in
                [reply["changed"] == .bool(true) ? "resumed" : "not paused"]
            }
        }
    }

    /// `concurctl jobs`: jobs by id or state.
    public struct Jobs: ParsableCommand {
        /// The command's name, help text and subcommands.
        public static let configuration = CommandConfiguration(
            abstract: "List jobs: the ids given, or the most recent ones (optionally in one state).")

        @Argument(help: "Job ids to show.")
        var ids: [Int64] = []

        @Option(help: "Only jobs in this state: queued, running, done, failed or cancelled.")
        var state: JobState?

        @Option(help: "At most this many jobs (1 to 10000, default 20).")
        var limit: Int = 20

        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        public init() {}

        /// Checks the options together before the command runs.
        public func validate() throws {
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 10000, not \(limit)") }
            if let bad = ids.first(where: { $0 < 1 }) { throw ValidationError("job ids start at 1, not \(bad)") }
        }

        /// Runs the command.
        public func run() throws {
            var parameters: JSONObject = ["limit": limit.json]
            if !ids.isEmpty { parameters["ids"] = .array(ids.map { .int($0) }) }
            parameters.set("state", state)
            try perform { () throws(ClientFailure) in
                // In parts: a long list does not fit one message.
                var jobs: [JSON] = []
                for part in try common.connect().collect(.listJobs, parameters) {
                    guard case .array(let some) = part["jobs"] else {
                        throw ClientFailure(
                            "concurd sent a reply this concurctl does not understand (field 'jobs'); are they different versions?"
                        )
                    }
                    jobs += some
                }
                try common.present(["jobs": .array(jobs)]) { reply throws(ClientFailure) in
                    Rendering.jobs(try ControlClient.decode([JobInfo].self, "jobs", in: reply))
                }
            }
        }
    }
}

/// Failures that carry only an exit status (the output already said what happened).
enum ExitCodeFailure {
    /// `submit --wait` saw a job end other than done.
    static let someJobsDidNotFinish = ClientFailure(
        "some jobs did not finish: see the lines above", exitCode: ClientFailure.ExitStatus.refused)
}
