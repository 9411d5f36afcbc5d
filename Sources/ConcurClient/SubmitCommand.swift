package import ArgumentParser
package import ConcurProtocol
import Varlink

extension ConcurctlCommand {
    /// `concurctl submit`: queue jobs, optionally waiting for them.
    package struct Submit: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
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
        package init() {}

        /// The jobs listed on the command line (the `primes` preset expanded, `--exec` and
        /// `--force` applied), each with `--timeout`.
        package func listedJobs() throws(ClientFailure) -> [JobSpec] {
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
        package func validate() throws {
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
        package func run() throws {
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
}
