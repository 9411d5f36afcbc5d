package import ArgumentParser
package import ConcurProtocol
import Glibc
import Varlink

extension ConcurctlCommand {
    /// `concurctl submit`: queue jobs, optionally waiting for them.
    package struct Submit: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
            abstract: "Queue jobs: generated (--jobs N) or listed (prime:97 sleep:250 ... or the preset 'primes').",
            usage: """
                concurctl submit [<options>] <job> ...
                concurctl submit --jobs <n> [<options>]
                concurctl submit --exec [<options>] -- <command> [<argument> ...]
                """,
            discussion: """
                Listed jobs are cpu:SIZE, prime:N, sleep:MS and fail. Every option goes before --: what \
                follows it is the command. With --wait, concurctl prints each job as it finishes and exits \
                0 only if every one is done.
                """)

        @Argument(
            help: ArgumentHelp(
                "Jobs to submit: cpu:SIZE, prime:N, sleep:MS, fail, crash, or 'primes' for the 20-number preset.",
                valueName: "job"))
        var specs: [String] = []

        /// What followed `--` on the command line, one `--argv` each (``commandLine(_:)`` moves
        /// it here, so that listed jobs and a command cannot be mistaken for each other).
        @Option(name: .customLong("argv"), parsing: .unconditionalSingleValue, help: .private)
        var command: [String] = []

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

        @Option(help: "With --exec: the directory the command runs in (default: this one).")
        var cwd: String?

        @Option(help: "With --exec: set NAME=VALUE in the command's environment (repeatable), on top of concurd's.")
        var env: [String] = []

        @Flag(name: .customLong("clear-env"), help: "With --exec: start the command from an empty environment (then --env).")
        var clearEnv = false

        @Option(
            help: "Run a job that fails on its own (a non-zero exit, its time limit) again, up to this many times (1 to 100).")
        var retries: Int?

        @Option(
            name: .customLong("retry-delay"),
            help: "With --retries: seconds before the first retry (0 to 3600, default 1); each next waits twice as long.")
        var retryDelay: Double?

        @Flag(
            name: .customLong("at-most-once"),
            help: "A run cut short by a crash fails the job instead of running it again (for commands with side effects).")
        var atMostOnce = false

        @Option(help: "Seconds each job may run before it is stopped and fails (default: concurd's --job-timeout).")
        var timeout: Double?

        @Option(parsing: .unconditional, help: "-10 to 10 (default 0): workers take the highest priority queued job first.")
        var priority: Int?

        @Option(
            parsing: .unconditional,
            help: "Start the jobs no sooner than this from now: seconds, or 30s, 5m, 1h30m, 2d (at most 366 days).")
        var delay: String?

        @Option(
            help:
                "Start the jobs no sooner than this time: HH:MM (its next one), or YYYY-MM-DDTHH:MM[:SS], local unless Z or +HH:MM follows."
        )
        var at: String?

        @Option(
            help: ArgumentHelp(
                "Run the jobs once all of these jobs ended done; if one fails or is cancelled, so are they.",
                valueName: "id,..."))
        var after: String?

        @Flag(help: "Run crash jobs even outside the processes model (they take the daemon down).")
        var force = false

        @Flag(help: "Wait for the jobs, printing each as it finishes.")
        var wait = false

        @OptionGroup var pool: PoolOption
        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// `submit`'s arguments with what follows `--` moved to `--argv` options: the argument
        /// parser would otherwise merge it with the listed jobs before it.
        package static func commandLine(_ arguments: [String]) -> [String] {
            guard let terminator = arguments.firstIndex(of: "--") else { return arguments }
            return Array(arguments[..<terminator]) + arguments[(terminator + 1)...].flatMap { ["--argv", $0] }
        }

        /// The ids of `--after`, or why they are not ids.
        static func dependencies(_ text: String) -> Result<[UInt64], ValidationError> {
            var ids: [UInt64] = []
            for part in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard let id = UInt64(part.trimmingPrefix(" ")), id >= 1, id <= UInt64(Int64.max) else {
                    return .failure(ValidationError("--after takes job ids separated by commas (--after 12,15), not '\(text)'"))
                }
                ids.append(id)
            }
            if let problem = JobPlacement.problem(withAfter: ids) { return .failure(ValidationError("--after: \(problem)")) }
            return .success(ids)
        }

        /// `--priority`, `--delay` or `--at`, and `--after`, with a delay counted from `now`
        /// (Unix seconds).
        package func placement(now: Double) throws(ClientFailure) -> JobPlacement {
            var placement = JobPlacement(priority: priority ?? 0)
            if let delay, let seconds = StartTime.seconds(ofDelay: delay) { placement.startAt = now + seconds }
            if let at { placement.startAt = try StartTime.unixTime(at: at, now: now) }
            if let after, case .success(let ids) = Self.dependencies(after) { placement.after = ids }
            return placement
        }

        /// The jobs listed on the command line (the `primes` preset expanded, `--exec` and
        /// `--force` applied), each with `--timeout` and the placement.
        package func listedJobs(now: Double = StartTime.now()) throws(ClientFailure) -> [JobSpec] {
            let placement = try placement(now: now)
            let delivery: Delivery = atMostOnce ? .atMostOnce : .atLeastOnce
            let retry = retries.map { RetryPolicy(retries: $0, delay: retryDelay ?? 1) }
            if exec {
                var context = CommandContext(directory: cwd, environment: env, clearsEnvironment: clearEnv)
                if context.directory == nil {
                    guard let here = Self.currentDirectory() else {
                        throw ClientFailure(
                            "cannot tell this directory (it may have been removed): give the command's directory with --cwd",
                            exitCode: ClientFailure.ExitStatus.usage)
                    }
                    context.directory = here
                }
                return [
                    JobSpec(
                        .exec(argv: command), timeout: timeout, command: context, delivery: delivery, retry: retry,
                        placement: placement)
                ]
            }
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
            return kinds.map { JobSpec($0, timeout: timeout, delivery: delivery, retry: retry, placement: placement) }
        }

        /// The working directory of concurctl, or nil if it cannot be told.
        static func currentDirectory() -> String? {
            guard let path = getcwd(nil, 0) else { return nil }
            defer { free(path) }
            return String(cString: path)
        }

        /// Checks the options together before the command runs.
        package func validate() throws {
            if exec {
                guard jobs == nil else { throw ValidationError("--exec submits one command; --jobs does not apply") }
                guard specs.isEmpty else {
                    throw ValidationError(
                        "listed jobs (\(specs.joined(separator: " ").prefix(40))) and --exec in one call: submit them separately; the command goes after --, e.g. concurctl submit --exec -- make test"
                    )
                }
                guard !command.isEmpty else {
                    throw ValidationError("--exec needs a command after --, e.g. concurctl submit --exec -- make test")
                }
                if let problem = JobKind.problem(withArguments: command) { throw ValidationError(problem) }
                if let cwd, let problem = CommandContext.problem(withDirectory: cwd) { throw ValidationError("--\(problem)") }
                if let problem = CommandContext.problem(withEnvironment: env) { throw ValidationError("--\(problem)") }
            } else {
                if !command.isEmpty {
                    throw ValidationError(
                        "'\(command.joined(separator: " ").prefix(40))' after -- is a command: add --exec to run it (concurctl submit --exec -- CMD)"
                    )
                }
                if cwd != nil || !env.isEmpty || clearEnv {
                    throw ValidationError("--cwd, --env and --clear-env apply to --exec only")
                }
            }
            if atMostOnce && jobs != nil {
                throw ValidationError("--at-most-once applies to listed jobs and --exec, not to --jobs")
            }
            if let retries {
                guard jobs == nil else { throw ValidationError("--retries applies to listed jobs and --exec, not to --jobs") }
                guard RetryPolicy.retryRange.contains(retries) else {
                    throw ValidationError("--retries must be between 1 and 100, not \(retries)")
                }
            }
            if let retryDelay {
                guard retries != nil else { throw ValidationError("--retry-delay needs --retries") }
                guard RetryPolicy.delayRange.contains(retryDelay) else {
                    throw ValidationError("--retry-delay must be between 0 and 3600 seconds, not \(formatDecimal(retryDelay))")
                }
            }
            if let priority, !JobLimits.priority.contains(priority) {
                throw ValidationError(
                    "--priority must be between \(JobLimits.priority.lowerBound) and \(JobLimits.priority.upperBound), not \(priority)"
                )
            }
            if delay != nil && at != nil { throw ValidationError("give either --delay or --at, not both") }
            if let delay, let problem = StartTime.problem(withDelay: delay) { throw ValidationError(problem) }
            if let at, StartTime.unixTime(of: at) == nil, StartTime.nextOccurrence(ofTimeOfDay: at, after: 0) == nil {
                throw ValidationError(
                    "--at '\(at)' is not a time: give HH:MM (the next one), or YYYY-MM-DDTHH:MM[:SS] in local time, or with Z or an offset such as +01:00"
                )
            }
            if let after, case .failure(let error) = Self.dependencies(after) { throw error }
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
        package func run() throws {
            try perform { () throws(ClientFailure) in
                let method: SupervisorInterface.Method
                let parameters: JSONObject
                if let jobs {
                    method = .generate
                    var request = WorkloadRequest(count: jobs, kind: kind ?? .cpu, seed: seed.map(UInt64.init), scale: scale ?? 1)
                    request.placement = try placement(now: StartTime.now())
                    parameters = pool.adding(to: request.parameters)
                } else {
                    let listed = try listedJobs()
                    guard listed.count <= JobLimits.jobsPerSubmit else {
                        throw ClientFailure(
                            "at most \(JobLimits.jobsPerSubmit) listed jobs at once; use --jobs N for more",
                            exitCode: ClientFailure.ExitStatus.usage)
                    }
                    method = .submit
                    parameters = pool.adding(to: ["jobs": .array(listed.map(\.json))])
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
                if let skipped = Rendering.skipped(in: reply) {
                    (done, failed, cancelled) = (done + skipped.done, failed + skipped.failed, cancelled + skipped.cancelled)
                    if common.json {
                        printJSON(["skipped": reply["skipped"]!])
                    } else {
                        StandardStreams.printLine(Rendering.skippedLine(skipped))
                    }
                    return true
                }
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
            if failed + cancelled > 0 { throw ExitCodeFailure.notAllDone(failed: failed, cancelled: cancelled) }
        }
    }
}
