import ConcurCore
package import ConcurProtocol
package import ConcurRuntime
import Glibc
import Varlink

/// `concurd compare`: one seeded workload run under each model in turn, in this process and
/// without a socket, at each pool size (1, 2, 4, ... up to the asked number of workers, or the
/// sizes given), `repeats` times; the numbers side by side, each the median of its runs.
///
/// This is the seeds' lesson measured on the machine at hand: threads against processes
/// against coroutines (here Swift tasks) on the same jobs. The runs go round by round (every
/// model and size once, then again), so a machine that slows down mid-way slows them all.
package struct Comparison: Sendable {
    /// The workload: count, kind, seed and scale.
    package var workload: WorkloadRequest
    /// The pool sizes measured, ascending; the last is the largest.
    package var sizes: [Int]
    /// The models compared, in order.
    package var models: [ConcurrencyModel]
    /// The seeds' Python pools measured beside them (`--python`), in order.
    package var pythonPools: [PythonPool] = []
    /// Runs of each model at each size.
    package var repeats: Int
    /// The cores this process may run on, for the chart and the sentences.
    package var cores: Int

    /// The largest pool measured.
    package var workers: Int { sizes.last ?? 1 }

    /// Everything measured, concur's models first.
    package var contenders: [Contender] { models.map(Contender.concur) + pythonPools.map(Contender.python) }

    /// A comparison of `models` on `workload` with pools of 1, 2, 4, ... up to `workers`.
    package init(
        workload: WorkloadRequest, workers: Int, models: [ConcurrencyModel] = ConcurrencyModel.allCases, repeats: Int = 1,
        cores: Int = Comparison.availableCores
    ) {
        self.init(workload: workload, sizes: Self.poolSizes(upTo: workers), models: models, repeats: repeats, cores: cores)
    }

    /// A comparison of `models` on `workload` at each of `sizes` (ascending, each at least 1).
    package init(
        workload: WorkloadRequest, sizes: [Int], models: [ConcurrencyModel] = ConcurrencyModel.allCases, repeats: Int = 1,
        cores: Int = Comparison.availableCores
    ) {
        self.workload = workload
        self.sizes = sizes
        self.models = models
        self.repeats = max(1, repeats)
        self.cores = max(1, cores)
    }

    /// The cores online, as the tasks model counts them.
    package static var availableCores: Int { WorkerModels.cores }

    /// One run: a model (or a Python pool), a pool size, and what it took.
    package struct Measurement: Sendable, Equatable {
        /// What ran the jobs.
        package var contender: Contender
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

    /// Runs every model at every pool size, `repeats` rounds, `runners` being the models'
    /// worker runners (made once and shared by the runs); `progress` hears about each run as it
    /// ends, with its round (1 for the first).
    package func measure(runners: [any WorkerModel], progress: (Measurement, Int) -> Void = { _, _ in }) throws
        -> [Measurement]
    {
        let seed = workload.seed ?? 1
        let specs = WorkloadGenerator.jobs(for: workload, seed: seed)
        var results: [Measurement] = []
        let digest = pythonPools.isEmpty ? 0 : Self.digest(of: specs)
        for round in 1...repeats {
            for model in models {
                for size in sizes {
                    let measurement = try run(model: model, workers: size, specs: specs, runners: runners)
                    progress(measurement, round)
                    results.append(measurement)
                }
            }
            guard !pythonPools.isEmpty else { continue }
            for (measurement, theirs) in try PythonPoolRun.measure(pools: pythonPools, sizes: sizes, jobs: specs) {
                guard theirs == digest else {
                    throw ComparisonFailure(
                        "\(measurement.contender.title) computed other checksums than concur's for the same jobs (\(theirs) against \(digest)): the comparison would not be of the same work"
                    )
                }
                progress(measurement, round)
                results.append(measurement)
            }
        }
        return results
    }

    /// The xor of the checksums of the `cpu` jobs of `specs`, computed here once: what the
    /// Python pools must arrive at for their work to be the same.
    static func digest(of specs: [JobSpec]) -> UInt64 {
        let never = CancellationFlag()
        return specs.reduce(0) { digest, spec in
            guard case .cpu(let size) = spec.kind else { return digest }
            return digest ^ (Workload.cpu(size: size, cancellation: never) ?? 0)
        }
    }

    private func run(model: ConcurrencyModel, workers: Int, specs: [JobSpec], runners: [any WorkerModel]) throws -> Measurement {
        let supervisor = Supervisor(
            configuration: .init(
                model: model, workers: workers,
                limits: .init(maxQueue: max(specs.count, 1), maxWorkers: max(workers, 1), retainFinished: 0)),
            models: runners, version: Daemon.version)
        let pool = supervisor.pool
        try supervisor.start(workers: workers)
        var before = Self.cpuSeconds(pool: pool)
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
        let after = Self.cpuSeconds(pool: pool)
        peak = max(peak, Self.residentBytes(pool: pool))
        let (latency, totals) = pool.read { ($0.latency.summary, $0.totals) }
        pool.beginDrain()
        _ = pool.waitUntilDrained(deadline: MonotonicClock.now() + 30_000_000_000)
        // A child that started after the first reading counts from its start.
        for pid in after.children.keys where before.children[pid] == nil { before.children[pid] = 0 }
        let children = after.children.reduce(0.0) { $0 + $1.value - (before.children[$1.key] ?? $1.value) }
        return Measurement(
            contender: .concur(model), workers: workers, wall: wall, cpu: after.own - before.own + children,
            finished: totals.done + totals.failed, latency: latency, peakRSS: peak)
    }

    /// CPU seconds of this process, and of each of the pool's child workers by pid, read while
    /// they run: the wall time's CPU, not their start-up before it or their exit after it.
    static func cpuSeconds(pool: Pool) -> (own: Double, children: [Int: Double]) {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let own =
            Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) / 1e6
        let pids = pool.read { state in state.workers.values.compactMap { $0.model == .processes ? $0.osID : nil } }
        var children: [Int: Double] = [:]
        for pid in pids { children[pid] = ProcessUsage.cpuSeconds(of: pid) }
        return (own, children)
    }

    /// Resident memory of this process and the pool's child workers, bytes.
    static func residentBytes(pool: Pool) -> Int {
        let pids = pool.read { state in state.workers.values.compactMap { $0.model == .processes ? $0.osID : nil } }
        return ProcessUsage.current().rssBytes + pids.compactMap { ProcessUsage.residentBytes(of: $0) }.reduce(0, +)
    }
}
