import ConcurCore
import ConcurProtocol
import Testing
import Varlink

@testable import ConcurDaemon

@Suite("concurd compare")
struct ComparisonTests {
    static func comparison(repeats: Int = 3, workers: Int = 2, kind: GeneratedKind = .cpu, cores: Int = 2) -> Comparison {
        Comparison(
            workload: WorkloadRequest(count: 10, kind: kind, seed: 3, scale: 0.01), workers: workers, repeats: repeats,
            cores: cores)
    }

    /// A run of 10 jobs in `wall` seconds.
    static func run(_ model: ConcurrencyModel, _ workers: Int, wall: Double) -> Comparison.Measurement {
        run(.concur(model), workers, wall: wall)
    }

    /// A run of 10 jobs in `wall` seconds by `contender`.
    static func run(_ contender: Contender, _ workers: Int, wall: Double) -> Comparison.Measurement {
        Comparison.Measurement(
            contender: contender, workers: workers, wall: wall, cpu: wall * Double(min(workers, 2)), finished: 10,
            latency: LatencySummary(queueWait: .empty, run: .empty, endToEnd: .empty), peakRSS: 20 << 20)
    }

    /// Three runs per model and size, with the given walls.
    static func runs(_ walls: [ConcurrencyModel: [Int: [Double]]]) -> [Comparison.Measurement] {
        walls.sorted { $0.key.rawValue < $1.key.rawValue }.flatMap { model, sizes in
            sizes.sorted { $0.key < $1.key }.flatMap { size, walls in walls.map { run(model, size, wall: $0) } }
        }
    }

    @Test("pool sizes double up to the largest, which is always measured")
    func poolSizes() {
        #expect(Comparison.poolSizes(upTo: 1) == [1])
        #expect(Comparison.poolSizes(upTo: 4) == [1, 2, 4])
        #expect(Comparison.poolSizes(upTo: 6) == [1, 2, 4, 6])
    }

    @Test("a spread is the median and the range; ranges that share a value overlap")
    func spread() {
        let odd = Spread([3, 1, 2])
        #expect(odd.median == 2 && odd.min == 1 && odd.max == 3 && odd.count == 3)
        #expect(Spread([4, 1, 2, 3]).median == 2.5 && Spread([]).median == 0)
        #expect(Spread([1, 2]).overlaps(Spread([2, 3])) && !Spread([1, 2]).overlaps(Spread([2.5, 3])))
        #expect(Spread([3, 4]).isAbove(Spread([1, 2])) && !Spread([2, 4]).isAbove(Spread([1, 2])))
        // Apart, but by less than 5%: not a difference worth a sentence.
        #expect(!Spread([33.1, 33.2]).isAbove(Spread([33.0, 33.05])) && Spread([33.1, 33.2]).overlaps(Spread([33.0, 33.05])))
        #expect(abs(Spread([90, 100, 110]).relativeHalfRange - 0.1) < 1e-12)
    }

    @Test("clear differences are claimed, with their ranges")
    func clearDifferences() {
        // Threads twice as fast with 2 workers as with 1; processes slower than threads in every run.
        let measurements = Self.runs([
            .threads: [1: [1.0, 1.02, 0.98], 2: [0.5, 0.51, 0.49]],
            .processes: [1: [1.1, 1.12, 1.08], 2: [0.8, 0.82, 0.78]],
        ])
        let comparison = Comparison(
            workload: WorkloadRequest(count: 10, kind: .cpu, seed: 3, scale: 0.01), workers: 2,
            models: [.threads, .processes], repeats: 3, cores: 2)
        let explanation = comparison.explanation(measurements)
        #expect(
            explanation[0].hasPrefix("Fastest here: threads, 20 jobs/s (20 to 20) with 2 workers over 3 runs"), "\(explanation)")
        #expect(explanation.contains("Threads sped up 2.00x from 1 to 2 workers: every run with 2 above every run with 1."))
        let table = comparison.table(measurements)
        #expect(table[0] == "10 cpu jobs (seed 3, scale 0.01), 2 workers, 2 cores, median of 3 runs")
        #expect(table.contains { $0.hasPrefix("threads ") && $0.contains("2.00x") && $0.contains("20 MiB") })
        #expect(table.allSatisfy { $0.count <= 80 }, "\(table.joined(separator: "\n"))")
    }

    @Test("overlapping runs are called no measurable difference, never a winner or a speed-up")
    func overlaps() {
        let measurements = Self.runs([
            .threads: [1: [1.0, 0.7, 1.3], 2: [0.8, 0.6, 1.1]],
            .processes: [1: [1.0, 0.9, 1.2], 2: [0.75, 0.7, 1.0]],
            .tasks: [1: [1.0, 1.0, 1.0], 2: [2.0, 2.1, 1.9]],
        ])
        let explanation = Self.comparison().explanation(measurements)
        let text = explanation.joined(separator: "\n")
        #expect(!text.contains("Fastest here"), "\(text)")
        #expect(
            explanation[0].contains(
                "their runs overlap (or differ by under 5%), so there is no measurable difference between them here"))
        #expect(explanation[0].contains("below every run of processes: tasks"), "\(explanation[0])")
        #expect(text.contains("Threads: no measurable speed-up from 1 to 2 workers"))
        #expect(text.contains("Tasks slowed down from 1 to 2 workers"))
        // One run each: no spread, so no claim either way.
        let once = Self.comparison(repeats: 1).explanation(
            Self.runs([.threads: [1: [1.0], 2: [0.5]], .tasks: [1: [1.0], 2: [0.6]]]))
        #expect(once[0].hasPrefix("Fastest in this one run: threads") && once[0].contains("no spread to tell"))
        #expect(once.contains("Threads: 2.00x from 1 to 2 workers in one run."))
        #expect(!once.joined().contains("GIL"), "no claim about Python that this run did not measure")
    }

    @Test("past the cores, CPU-bound work that did not speed up is said to be limited by the cores")
    func coreLimit() {
        let measurements = Self.runs([.threads: [1: [1.0, 1.0, 1.0], 2: [0.5, 0.5, 0.5], 4: [0.5, 0.52, 0.48]]])
        let comparison = Comparison(
            workload: WorkloadRequest(count: 10, kind: .cpu, seed: 3, scale: 0.01), workers: 4, models: [.threads], repeats: 3,
            cores: 2)
        #expect(
            comparison.explanation(measurements).contains {
                $0.hasPrefix("Past 2 cores more workers added nothing measurable for threads")
            })
        var sleeping = comparison
        sleeping.workload.kind = .sleep
        #expect(!sleeping.explanation(measurements).contains { $0.hasPrefix("Past 2 cores") })
    }

    @Test("the GIL is named only where concur's threads sped up on the same jobs and Python's did not")
    func python() {
        var comparison = Self.comparison()
        comparison.models = [.threads]
        comparison.pythonPools = [.threads]
        func runs(concur: [Double], python: [Double]) -> [Comparison.Measurement] {
            [1, 2].flatMap { size in
                (0..<3).flatMap { index in
                    [
                        Self.run(.concur(.threads), size, wall: size == 1 ? 1 : concur[index]),
                        Self.run(.python(.threads), size, wall: size == 1 ? 2 : python[index]),
                    ]
                }
            }
        }
        let gil = comparison.explanation(runs(concur: [0.5, 0.52, 0.48], python: [2.1, 1.9, 2.0])).joined(separator: "\n")
        #expect(gil.contains("The Python pools ran the same 10 jobs and arrived at the same checksums as concur's."), "\(gil)")
        #expect(
            gil.contains(
                "Python's threads did not measurably speed up from 1 to 2 workers on cpu jobs while concur's threads sped up 2.00x"
            ))
        #expect(gil.contains("take turns holding the GIL"))
        let neither = comparison.explanation(runs(concur: [1.1, 0.9, 1.0], python: [2.1, 1.9, 2.0])).joined(separator: "\n")
        #expect(neither.contains("this run says nothing about the GIL") && !neither.contains("take turns"), "\(neither)")
        var alone = comparison
        alone.models = []
        let pythonOnly = runs(concur: [0.5, 0.5, 0.5], python: [2.1, 1.9, 2.0]).filter { $0.contender != .concur(.threads) }
        #expect(alone.explanation(pythonOnly).contains { $0.contains("cannot tell the GIL from a busy machine") })
        let table = comparison.table(runs(concur: [0.5, 0.5, 0.5], python: [2, 2, 2]))
        #expect(table.contains { $0.hasPrefix("py-threads ") && $0.hasSuffix("20 MiB") && $0.contains("        -") })
        #expect(table.allSatisfy { $0.count <= 80 })
        let chart = comparison.svg(runs(concur: [0.5, 0.5, 0.5], python: [2, 2, 2]))
        #expect(chart.contains("stroke-dasharray=\"2 3\"") && chart.contains("py-threads"))
        // Python 100 times slower: the throughput axis becomes logarithmic, and says so.
        let slow = [1, 2].flatMap { size in
            (0..<3).flatMap { _ in [Self.run(.concur(.threads), size, wall: 0.01), Self.run(.python(.threads), size, wall: 1)] }
        }
        #expect(comparison.svg(slow).contains("jobs/s (log scale)"))
    }

    @Test(
        "a line from the Python pools is read back checked: a wrong one is refused",
        arguments: [
            #"{"pool": "python-threads", "workers": 2, "round": 1, "wall": 0.5, "cpu": 0.4, "finished": 10, "digest": "0000000000000007", "peakRSS": 1024}"#
        ])
    func pythonLine(line: String) throws {
        let (measurement, digest) = try PythonPoolRun.measurement(line)
        #expect(measurement.contender == .python(.threads) && measurement.workers == 2 && measurement.finished == 10)
        #expect(digest == 7 && measurement.wall == 0.5 && measurement.peakRSS == 1024)
        let big = line.replacingOccurrences(of: "0000000000000007", with: "ffffffffffffffff")
        #expect(try PythonPoolRun.measurement(big).digest == UInt64.max)
        for wrong in [
            line.replacingOccurrences(of: "python-threads", with: "python-fibers"),
            line.replacingOccurrences(of: #""wall": 0.5"#, with: #""wall": -1"#),
            line.replacingOccurrences(of: #""digest": "0000000000000007", "#, with: ""),
            line.replacingOccurrences(of: "0000000000000007", with: "7"),
            line.replacingOccurrences(of: #""0000000000000007""#, with: "7"),
            line.replacingOccurrences(of: #""workers": 2"#, with: #""workers": "two""#), "not json", "[]",
        ] {
            #expect(throws: (any Error).self, "\(wrong)") { try PythonPoolRun.measurement(wrong) }
        }
    }

    @Test("round ticks: 1, 2, 2.5 or 5 times a power of ten")
    func ticks() {
        #expect(Comparison.niceStep(800) == 200 && Comparison.niceStep(1234) == 500 && Comparison.niceStep(9) == 2.5)
        #expect(Comparison.niceStep(0.9) == 0.25 && Comparison.niceStep(0) == 1 && Comparison.niceStep(.infinity) == 1)
        #expect(Comparison.axisTop(1234, step: 500) == 1500 && Comparison.axisTop(0, step: 5) == 5)
    }

    @Test("an axis over values more than 20 times apart is logarithmic over whole decades; otherwise linear from 0")
    func axes() {
        let log = ChartAxis(values: [12, 2_400], top: 0, bottom: 300, allowLog: true)
        #expect(log.logarithmic && log.ticks == [10, 100, 1_000, 10_000])
        #expect(log.y(10) == 300 && log.y(10_000) == 0 && abs(log.y(100) - 200) < 1e-9 && log.y(1) == 300)
        let linear = ChartAxis(values: [12, 200], top: 0, bottom: 300, allowLog: true)
        #expect(!linear.logarithmic && linear.ticks == [0, 50, 100, 150, 200] && linear.y(100) == 150)
        let cpu = ChartAxis(values: [0.5, 1.2], top: 0, bottom: 100, atLeast: 2)
        #expect(!cpu.logarithmic && cpu.high == 2 && cpu.ticks == [0, 0.5, 1, 1.5, 2])
        #expect(!ChartAxis(values: [1, 1_000], top: 0, bottom: 1).logarithmic, "log only where allowed")
    }

    @Test("the JSON and the chart come from the same measurements")
    func jsonAndChart() throws {
        let measurements = Self.runs([
            .threads: [1: [1.0, 1.1, 0.9], 2: [0.5, 0.55, 0.45]], .processes: [1: [1, 1, 1], 2: [0.6, 0.6, 0.6]],
            .tasks: [1: [1, 1, 1], 2: [0.55, 0.55, 0.55]],
        ])
        let comparison = Self.comparison()
        guard case .object(let json) = comparison.json(measurements), case .array(let runs) = json["runs"],
            case .array(let points) = json["points"], case .object(let first)? = points.first,
            case .object(let throughput)? = first["jobsPerSecond"]
        else { throw VarlinkError.invalidParameter("runs") }
        #expect(runs.count == 18 && points.count == 6 && json["kind"] == "cpu" && json["repeat"] == 3)
        #expect(throughput["median"] == .double(10) && throughput["min"] != throughput["max"])
        let svg = comparison.svg(measurements)
        // A line per model in each panel, and the ideal scaling.
        #expect(svg.hasPrefix("<svg") && svg.components(separatedBy: "<polyline").count == 1 + 3 * 2 + 1)
        for text in ["workers (log scale)", "ideal scaling", "all 2 cores", "seed 3", "cores busy", "median of 3 runs"] {
            #expect(svg.contains(text), "\(text)")
        }
        // Ticks at 0, 10, 20 and 30 jobs/s (the fastest run: 22.2): round values, not fractions of it.
        #expect(svg.contains(">30<") && svg.contains(">10<") && svg.contains(">0<") && !svg.contains(">22"), "round ticks")
    }
}
