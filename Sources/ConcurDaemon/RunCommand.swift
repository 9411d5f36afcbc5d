package import ArgumentParser
import ConcurArguments
import ConcurProtocol

extension ConcurdCommand {
    /// `concurd run`: one seeded workload in the foreground, no socket.
    package struct Run: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
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
        package init() {}

        /// Checks the options together before the command runs.
        package func validate() throws {
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
        package var foregroundRun: ForegroundRun {
            ForegroundRun(
                model: model, workers: workers, workload: WorkloadRequest(count: jobs, kind: kind, seed: seed, scale: scale),
                timeLimit: time)
        }

        /// Runs the command.
        package func run() throws {
            let status = foregroundRun.run()
            if status != 0 { throw ExitCode(status) }
        }
    }
}
