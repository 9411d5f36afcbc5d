package import ArgumentParser
import ConcurProtocol

extension ConcurdCommand {
    /// `concurd compare`: one seeded workload under each model, side by side.
    package struct Compare: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
            abstract: "Run one seeded workload under each model in turn and compare them side by side.",
            discussion: """
                No socket and no daemon: the pools run in this process (child workers for processes), \
                at 1, 2, 4, ... up to --workers workers, and the table shows wall and CPU time, \
                throughput, queue-wait and run-time p50/p99, peak RSS and the speed-up over one worker, \
                then what the numbers show. --json for machines; --plot writes an SVG chart of \
                throughput against workers.
                """)

        @Option(help: "Jobs to generate, 1 to 1000000.")
        var jobs: Int = 200

        @Option(help: "The seed; the same seed gives the same jobs.")
        var seed: UInt64 = 1

        @Option(help: "The largest pool, 1 to 64.")
        var workers: Int = 4

        @Option(help: "The kind of jobs: cpu, prime, sleep or mixed.")
        var kind: GeneratedKind = .cpu

        @Option(help: "Multiplies cpu sizes and sleep times, 0 to 100 (0.05: about 5 ms per cpu job).")
        var scale: Double = 0.05

        @Option(help: "The models, comma-separated.")
        var models: String = "threads,processes,tasks"

        @Flag(help: "Print the measurements as one JSON object.")
        var json = false

        @Option(help: "Write an SVG chart of throughput against workers to this file.")
        var plot: String?

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// The models asked for, in order.
        var modelList: [ConcurrencyModel] {
            models.split(separator: ",").compactMap { ConcurrencyModel(rawValue: String($0)) }
        }

        /// Checks the options together before the command runs.
        package func validate() throws {
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
        package func run() throws {
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
}
