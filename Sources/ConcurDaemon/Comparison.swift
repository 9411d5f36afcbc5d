import ConcurCore
package import ConcurProtocol
package import ConcurRuntime
import Glibc
package import Varlink

/// `concurd compare`: one seeded workload run under each model in turn, in this process and
/// without a socket, at 1, 2, 4, ... up to the asked number of workers; the numbers side by side.
///
/// This is the seeds' lesson measured on the machine at hand: threads against processes
/// against coroutines (here Swift tasks) on the same jobs.
package struct Comparison: Sendable {
    /// The workload: count, kind, seed and scale.
    package var workload: WorkloadRequest
    /// The largest pool measured.
    package var workers: Int
    /// The models compared, in order.
    package var models: [ConcurrencyModel]

    /// A comparison of `models` on `workload` with pools of up to `workers`.
    package init(workload: WorkloadRequest, workers: Int, models: [ConcurrencyModel] = ConcurrencyModel.allCases) {
        self.workload = workload
        self.workers = workers
        self.models = models
    }

    /// One run: a model, a pool size, and what it took.
    package struct Measurement: Sendable, Equatable {
        /// The model.
        package var model: ConcurrencyModel
        /// Workers in the pool.
        package var workers: Int
        /// Seconds from the submit to the last job finished.
        package var wall: Double
        /// CPU seconds of the process and its child workers over that time.
        package var cpu: Double
        /// Jobs done and failed.
        package var finished: Int
        /// Queue wait and run time percentiles.
        package var latency: LatencySummary
        /// The largest resident memory seen, this process and its child workers together, bytes.
        package var peakRSS: Int

        /// Jobs per second.
        package var throughput: Double { wall > 0 ? Double(finished) / wall : 0 }
        /// Cores kept busy on average.
        package var cpuPerWall: Double { wall > 0 ? cpu / wall : 0 }
    }

    /// The pool sizes measured: powers of two below `workers`, then `workers`.
    package static func poolSizes(upTo workers: Int) -> [Int] {
        var sizes: [Int] = []
        var size = 1
        while size < workers {
            sizes.append(size)
            size *= 2
        }
        return sizes + [workers]
    }

    /// Runs every model at every pool size, `runners` being the models' worker runners (made
    /// once and shared by the runs); `progress` hears about each run as it ends.
    package func measure(runners: [any WorkerModel], progress: (Measurement) -> Void = { _ in }) throws -> [Measurement] {
        let seed = workload.seed ?? 1
        let specs = WorkloadGenerator.jobs(for: workload, seed: seed)
        var results: [Measurement] = []
        for model in models {
            for size in Self.poolSizes(upTo: workers) {
                let measurement = try run(model: model, workers: size, specs: specs, runners: runners)
                progress(measurement)
                results.append(measurement)
            }
        }
        return results
    }

    private func run(model: ConcurrencyModel, workers: Int, specs: [JobSpec], runners: [any WorkerModel]) throws -> Measurement {
        let supervisor = Supervisor(
            configuration: .init(
                model: model, workers: workers,
                limits: .init(maxQueue: max(specs.count, 1), maxWorkers: max(workers, 1), retainFinished: 0)),
            models: runners, version: Daemon.version)
        let pool = supervisor.pool
        try supervisor.start(workers: workers)
        let before = Self.cpuSeconds()
        let start = MonotonicClock.now()
        _ = try pool.submit(specs)
        var peak = 0
        var lastSample: UInt64 = 0
        while pool.read({ $0.totals.finished }) < specs.count {
            let now = MonotonicClock.now()
            if now - lastSample >= 20_000_000 {
                peak = max(peak, Self.residentBytes(pool: pool))
                lastSample = now
            }
            usleep(1_000)
        }
        let wall = Double(MonotonicClock.now() - start) / 1e9
        peak = max(peak, Self.residentBytes(pool: pool))
        let (latency, totals) = pool.read { ($0.latency.summary, $0.totals) }
        // Child workers exit and are reaped in the drain: their CPU time is counted then.
        pool.beginDrain()
        _ = pool.waitUntilDrained(deadline: MonotonicClock.now() + 30_000_000_000)
        return Measurement(
            model: model, workers: workers, wall: wall, cpu: Self.cpuSeconds() - before,
            finished: totals.done + totals.failed, latency: latency, peakRSS: peak)
    }

    /// CPU seconds of this process and of its reaped children.
    static func cpuSeconds() -> Double {
        func seconds(_ who: Int32) -> Double {
            var usage = rusage()
            getrusage(who, &usage)
            return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
                + Double(usage.ru_stime.tv_usec) / 1e6
        }
        return seconds(RUSAGE_SELF.rawValue) + seconds(RUSAGE_CHILDREN.rawValue)
    }

    /// Resident memory of this process and the pool's child workers, bytes.
    static func residentBytes(pool: Pool) -> Int {
        let pids = pool.read { state in state.workers.values.compactMap { $0.model == .processes ? $0.osID : nil } }
        return ProcessUsage.current().rssBytes + pids.compactMap { ProcessUsage.residentBytes(of: $0) }.reduce(0, +)
    }

    // MARK: Output

    /// The side-by-side table at the largest pool, then throughput by pool size.
    package func table(_ measurements: [Measurement]) -> [String] {
        var lines: [String] = [
            "\(workload.count) \(workload.kind.rawValue) jobs (seed \(workload.seed ?? 1), scale \(formatDecimal(workload.scale))), \(workers) worker\(workers == 1 ? "" : "s")",
            "",
            rightPad("model", 10) + leftPad("wall", 10) + leftPad("CPU", 10) + leftPad("CPU/wall", 9) + leftPad("jobs/s", 12)
                + leftPad("speed-up", 9) + leftPad("wait p50", 10) + leftPad("wait p99", 10) + leftPad("run p50", 10)
                + leftPad("run p99", 10) + leftPad("peak RSS", 11),
        ]
        for model in models {
            guard let top = measurements.last(where: { $0.model == model }) else { continue }
            let speedUp = speedUp(model, measurements).map { "\(formatFixed($0, places: 2))x" } ?? "-"
            lines.append(
                rightPad(model.rawValue, 10) + leftPad(formatDuration(top.wall), 10) + leftPad(formatDuration(top.cpu), 10)
                    + leftPad(formatFixed(top.cpuPerWall, places: 2), 9) + leftPad(formatGrouped(top.throughput), 12)
                    + leftPad(speedUp, 9) + leftPad(formatDuration(top.latency.queueWait.p50), 10)
                    + leftPad(formatDuration(top.latency.queueWait.p99), 10) + leftPad(formatDuration(top.latency.run.p50), 10)
                    + leftPad(formatDuration(top.latency.run.p99), 10) + leftPad(formatBytes(top.peakRSS), 11))
        }
        let sizes = Self.poolSizes(upTo: workers)
        if sizes.count > 1 {
            lines += ["", "jobs/s by workers " + sizes.map { leftPad(String($0), 11) }.joined()]
            for model in models {
                let row = sizes.map { size in
                    measurements.first { $0.model == model && $0.workers == size }.map { formatGrouped($0.throughput) } ?? "-"
                }
                lines.append(rightPad("  " + model.rawValue, 18) + row.map { leftPad($0, 11) }.joined())
            }
        }
        return lines
    }

    /// Throughput at the largest pool over throughput with one worker.
    func speedUp(_ model: ConcurrencyModel, _ measurements: [Measurement]) -> Double? {
        guard let one = measurements.first(where: { $0.model == model && $0.workers == 1 }),
            let top = measurements.last(where: { $0.model == model }), top.workers > 1, one.throughput > 0
        else { return nil }
        return top.throughput / one.throughput
    }

    /// A few sentences on what the numbers show.
    package func explanation(_ measurements: [Measurement]) -> [String] {
        var lines: [String] = []
        let tops = models.compactMap { model in measurements.last { $0.model == model } }
        guard let best = tops.max(by: { $0.throughput < $1.throughput }) else { return [] }
        lines.append(
            "Fastest here: \(best.model.rawValue), \(formatGrouped(best.throughput)) jobs/s with \(best.workers) workers.")
        if workers > 1, let threads = speedUp(.threads, measurements) {
            switch workload.kind {
            case .cpu, .prime, .mixed:
                lines.append(
                    "Threads sped up \(formatFixed(threads, places: 2))x from 1 to \(workers) workers on CPU-bound work: Swift threads run on every core at once, where the Python seed's threads take turns under the GIL and barely speed up; there only processes scale."
                )
            case .sleep:
                lines.append(
                    "On sleep jobs every model waits rather than computes, so throughput follows the number of workers (\(formatFixed(threads, places: 2))x for threads) and CPU stays near zero."
                )
            }
        }
        if let processes = tops.first(where: { $0.model == .processes }),
            let threads = tops.first(where: { $0.model == .threads })
        {
            lines.append(
                "Processes used \(formatFixed(processes.cpuPerWall, places: 2)) cores for \(formatGrouped(processes.throughput)) jobs/s against \(formatFixed(threads.cpuPerWall, places: 2)) for threads' \(formatGrouped(threads.throughput)): each job crosses a socket to a child, and each child costs its own memory (peak \(formatBytes(processes.peakRSS)) against \(formatBytes(threads.peakRSS))); in return a crashing job takes down one child, never the daemon."
            )
        }
        if workload.kind == .sleep, let tasks = tops.first(where: { $0.model == .tasks }) {
            lines.append(
                "Sleeping tasks hold no thread (Task.sleep), so the tasks model can keep many more sleeps in flight than it has threads; here it reached \(formatGrouped(tasks.throughput)) jobs/s."
            )
        }
        return lines
    }

    /// The measurements as JSON, for machines.
    package func json(_ measurements: [Measurement]) -> JSON {
        .object([
            "jobs": workload.count.json, "kind": .string(workload.kind.rawValue),
            "seed": Int64(bitPattern: workload.seed ?? 1).json,
            "scale": workload.scale.json, "workers": workers.json,
            "runs": .array(
                measurements.map { measurement in
                    [
                        "model": measurement.model.json, "workers": measurement.workers.json,
                        "wallSeconds": measurement.wall.json,
                        "cpuSeconds": measurement.cpu.json, "cpuPerWall": measurement.cpuPerWall.json,
                        "jobsPerSecond": measurement.throughput.json, "finished": measurement.finished.json,
                        "queueWait": measurement.latency.queueWait.json, "run": measurement.latency.run.json,
                        "peakRSSBytes": measurement.peakRSS.json,
                        "speedUp": (measurement.workers == workers ? speedUp(measurement.model, measurements) : nil).json,
                    ]
                }),
        ])
    }

    /// An SVG line chart: throughput against workers, one line per model.
    package func svg(_ measurements: [Measurement]) -> String {
        let width = 640.0
        let height = 400.0
        let left = 80.0
        let right = 150.0
        let top = 40.0
        let bottom = 50.0
        let sizes = Self.poolSizes(upTo: workers)
        let highest = max(1, measurements.map(\.throughput).max() ?? 1) * 1.1
        func x(_ size: Int) -> Double {
            guard sizes.count > 1, let index = sizes.firstIndex(of: size) else { return left + (width - left - right) / 2 }
            return left + Double(index) / Double(sizes.count - 1) * (width - left - right)
        }
        func y(_ value: Double) -> Double { height - bottom - value / highest * (height - top - bottom) }
        let colours: [ConcurrencyModel: String] = [.threads: "#1f77b4", .processes: "#d62728", .tasks: "#2ca02c"]
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(Int(left))" y="24" font-size="14">\(workload.count) \(workload.kind.rawValue) jobs: throughput by workers</text>
            <line x1="\(left)" y1="\(height - bottom)" x2="\(width - right)" y2="\(height - bottom)" stroke="black"/>
            <line x1="\(left)" y1="\(top)" x2="\(left)" y2="\(height - bottom)" stroke="black"/>
            <text x="\((left + width - right) / 2)" y="\(height - 12)" text-anchor="middle">workers</text>
            <text x="16" y="\((top + height - bottom) / 2)" transform="rotate(-90 16 \((top + height - bottom) / 2))" text-anchor="middle">jobs/s</text>

            """
        for size in sizes {
            svg += "<text x=\"\(x(size))\" y=\"\(height - bottom + 18)\" text-anchor=\"middle\">\(size)</text>\n"
        }
        for step in 0...4 {
            let value = highest / 1.1 * Double(step) / 4
            svg += "<text x=\"\(left - 8)\" y=\"\(y(value) + 4)\" text-anchor=\"end\">\(formatGrouped(value))</text>\n"
            svg += "<line x1=\"\(left)\" y1=\"\(y(value))\" x2=\"\(width - right)\" y2=\"\(y(value))\" stroke=\"#ddd\"/>\n"
        }
        for (index, model) in models.enumerated() {
            let points = measurements.filter { $0.model == model }.map { "\(x($0.workers)),\(y($0.throughput))" }
            let colour = colours[model] ?? "black"
            svg +=
                "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2.5\" points=\"\(points.joined(separator: " "))\"/>\n"
            for measurement in measurements where measurement.model == model {
                svg +=
                    "<circle cx=\"\(x(measurement.workers))\" cy=\"\(y(measurement.throughput))\" r=\"3.5\" fill=\"\(colour)\"/>\n"
            }
            let legendY = top + 20 + Double(index) * 22
            svg +=
                "<line x1=\"\(width - right + 16)\" y1=\"\(legendY)\" x2=\"\(width - right + 40)\" y2=\"\(legendY)\" stroke=\"\(colour)\" stroke-width=\"2.5\"/>\n"
            svg += "<text x=\"\(width - right + 46)\" y=\"\(legendY + 4)\">\(model.rawValue)</text>\n"
        }
        return svg + "</svg>\n"
    }
}
