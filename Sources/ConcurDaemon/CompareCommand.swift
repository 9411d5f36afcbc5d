package import ArgumentParser
import ConcurProtocol
import Glibc

extension ConcurdCommand {
    /// `concurd compare`: one seeded workload under each model, side by side.
    package struct Compare: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
            abstract: "Run one seeded workload under each model in turn and compare them side by side.",
            discussion: """
                No socket and no daemon: the pools run in this process (child workers for processes), \
                at 1, 2, 4, ... up to --workers workers (or at --sizes), --repeat times each, round by \
                round. The table shows each figure's median over the runs and half its range (the plus-minus column): wall \
                and CPU time, throughput, run-time p50/p99, peak RSS and the speed-up over the smallest \
                pool; then what the numbers show, claiming a difference only where the runs do not \
                overlap. --json for machines; --plot writes an SVG chart of throughput and CPU against \
                workers. For the I/O lesson, many sleeping workers: --kind sleep --sizes 1,16,256,1024 \
                (processes cost a child each).
                """)

        @Option(help: "Jobs to generate, 1 to 1000000.")
        var jobs: Int = 200

        @Option(help: "The seed; the same seed gives the same jobs.")
        var seed: UInt64 = 1

        @Option(help: "The largest pool, 1 to 64; pools of 1, 2, 4, ... up to it are measured.")
        var workers: Int = 4

        @Option(help: "The pool sizes instead, comma-separated and ascending, each 1 to 1024 (1,16,256,1024).")
        var sizes: String?

        @Option(name: .customLong("repeat"), help: "Runs of each model at each pool size, 1 to 20; figures are medians.")
        var repeats: Int = 3

        @Option(help: "The kind of jobs: cpu, prime, sleep or mixed.")
        var kind: GeneratedKind = .cpu

        @Option(help: "Multiplies cpu sizes and sleep times, 0 to 100 (0.05: about 5 ms per cpu job).")
        var scale: Double = 0.05

        @Option(help: "The models, comma-separated.")
        var models: String = "threads,processes,tasks"

        @Flag(
            help:
                "Run the seeds' Python pools (ThreadPoolExecutor, ProcessPoolExecutor, asyncio TaskGroup) on the same jobs too; cpu and sleep jobs, python3 3.11 or later."
        )
        var python = false

        @Flag(help: "Print the measurements as one JSON object.")
        var json = false

        @Option(help: "Write an SVG chart of throughput and CPU against workers to this file (NAME.svg).")
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
            if let plot, !plot.hasSuffix(".svg") {
                throw ValidationError("--plot writes an SVG chart: give a file name ending in .svg, not \(plot)")
            }
            guard (1...20).contains(repeats) else {
                throw ValidationError("--repeat must be between 1 and 20, not \(repeats)")
            }
            _ = try sizeList()
            if python && !PythonPool.kinds.contains(kind) {
                throw ValidationError(
                    "--python runs cpu and sleep jobs (a \(kind.rawValue) job takes pure Python minutes): use --kind cpu or --kind sleep"
                )
            }
        }

        /// The pool sizes: `--sizes`, or 1, 2, 4, ... up to `--workers`.
        func sizeList() throws(ValidationError) -> [Int] {
            guard let sizes else { return Comparison.poolSizes(upTo: workers) }
            let words = sizes.split(separator: ",", omittingEmptySubsequences: false)
            let values = words.compactMap { Int($0) }
            guard values.count == words.count, !values.isEmpty, values.allSatisfy({ (1...1024).contains($0) }) else {
                throw ValidationError("--sizes takes pool sizes from 1 to 1024, comma-separated (1,16,256), not \(sizes)")
            }
            guard zip(values, values.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw ValidationError("--sizes must be ascending, each once: \(sizes)")
            }
            return values
        }

        /// Why the chart could not be written at `path`, found before the runs (which may take
        /// minutes) rather than after them; nil if it can.
        static func plotProblem(_ path: String) -> String? {
            let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
            var status = stat()
            if stat(directory.isEmpty ? "/" : directory, &status) != 0 || status.st_mode & S_IFMT != S_IFDIR {
                return "its directory \(directory.isEmpty ? "/" : directory) does not exist"
            }
            if stat(path, &status) == 0 {
                if status.st_mode & S_IFMT == S_IFDIR { return "it is a directory" }
                if access(path, W_OK) != 0 { return "it is not writable" }
            } else if access(directory.isEmpty ? "/" : directory, W_OK) != 0 {
                return "its directory \(directory) is not writable"
            }
            return nil
        }

        /// Runs the command.
        package func run() throws {
            if let plot, let problem = Self.plotProblem(plot) {
                StandardStreams.printError("concurd compare: cannot write the chart to \(plot): \(problem); pick a writable path")
                throw ExitCode(73)
            }
            if python, let problem = PythonPoolRun.problem() {
                StandardStreams.printError("concurd compare: \(problem)")
                throw ExitCode(69)
            }
            var comparison = Comparison(
                workload: WorkloadRequest(count: jobs, kind: kind, seed: seed, scale: scale), sizes: try sizeList(),
                models: modelList, repeats: repeats)
            if python { comparison.pythonPools = PythonPool.allCases }
            let measurements: [Comparison.Measurement]
            do {
                let json = json
                let repeats = repeats
                measurements = try comparison.measure(runners: WorkerModels.all(nice: 0)) { measurement, round in
                    if !json {
                        StandardStreams.printError(
                            "  \(repeats > 1 ? "run \(round) of \(repeats): " : "")\(measurement.contender.name), \(measurement.workers) worker\(measurement.workers == 1 ? "" : "s"): \(formatDuration(measurement.wall))"
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
