import ConcurProtocol
package import Varlink

extension Comparison {
    /// The side-by-side table at the largest pool (80 columns), then throughput by pool size;
    /// each figure the median of the runs, `±` half their range.
    package func table(_ measurements: [Measurement]) -> [String] {
        let points = points(measurements)
        let runs = repeats == 1 ? "1 run" : "median of \(repeats) runs"
        var lines: [String] = [
            "\(workload.count) \(workload.kind.rawValue) jobs (seed \(workload.seed ?? 1), scale \(formatDecimal(workload.scale, places: 4))), \(workers) worker\(workers == 1 ? "" : "s"), \(cores) core\(cores == 1 ? "" : "s"), \(runs)",
            "",
            rightPad("model", 11) + leftPad("wall", 8) + leftPad("CPU/wall", 9) + leftPad("jobs/s", 10) + leftPad("±", 6)
                + leftPad("speedup", 8) + leftPad("run p50", 9) + leftPad("run p99", 9) + leftPad("peak RSS", 10),
        ]
        for contender in contenders {
            guard let top = top(contender, in: points) else { continue }
            let speedUp = speedUp(contender, points).map { "\(formatFixed($0, places: 2))x" } ?? "-"
            // The Python pools time the whole batch, not each job.
            let run = top.typical.latency.run
            let p50 = run.count == 0 ? "-" : formatDuration(run.p50)
            let p99 = run.count == 0 ? "-" : formatDuration(run.p99)
            lines.append(
                rightPad(contender.label, 11) + leftPad(formatDuration(top.typical.wall), 8)
                    + leftPad(formatFixed(top.cpuPerWall.median, places: 2), 9)
                    + leftPad(formatGrouped(top.throughput.median), 10) + leftPad(Self.plusMinus(top.throughput), 6)
                    + leftPad(speedUp, 8) + leftPad(p50, 9) + leftPad(p99, 9) + leftPad(formatBytes(Int(top.peakRSS.median)), 10))
        }
        if sizes.count > 1 {
            lines += ["", "jobs/s by workers " + sizes.map { leftPad(String($0), 11) }.joined()]
            for contender in contenders {
                let row = sizes.map { size in
                    point(contender, size, in: points).map {
                        formatGrouped($0.throughput.median) + (repeats > 1 ? " " + Self.plusMinus($0.throughput) : "")
                    } ?? "-"
                }
                lines.append(rightPad("  " + contender.label, 18) + row.map { leftPad($0, 11) }.joined())
            }
        }
        return lines
    }

    /// Half the range as a percentage of the median: `±4%` (`±0%` for one run).
    static func plusMinus(_ spread: Spread) -> String {
        "±\(Int((spread.relativeHalfRange * 100).rounded()))%"
    }

    /// The measurements as JSON, for machines: every run, and each point's median and range.
    package func json(_ measurements: [Measurement]) -> JSON {
        let points = points(measurements)
        func spread(_ spread: Spread) -> JSON {
            .object(["median": spread.median.json, "min": spread.min.json, "max": spread.max.json])
        }
        return .object([
            "jobs": workload.count.json, "kind": .string(workload.kind.rawValue),
            "seed": Int64(bitPattern: workload.seed ?? 1).json, "scale": workload.scale.json, "workers": workers.json,
            "sizes": sizes.json, "repeat": repeats.json, "cores": cores.json,
            "python": .bool(!pythonPools.isEmpty),
            "runs": .array(
                measurements.map { measurement in
                    [
                        "model": .string(measurement.contender.name), "workers": measurement.workers.json,
                        "wallSeconds": measurement.wall.json, "cpuSeconds": measurement.cpu.json,
                        "cpuPerWall": measurement.cpuPerWall.json, "jobsPerSecond": measurement.throughput.json,
                        "finished": measurement.finished.json, "queueWait": measurement.latency.queueWait.json,
                        "run": measurement.latency.run.json, "peakRSSBytes": measurement.peakRSS.json,
                    ]
                }),
            "points": .array(
                points.map { point in
                    [
                        "model": .string(point.contender.name), "workers": point.workers.json,
                        "jobsPerSecond": spread(point.throughput), "cpuPerWall": spread(point.cpuPerWall),
                        "peakRSSBytes": spread(point.peakRSS),
                        "speedUp": (point.workers == workers ? speedUp(point.contender, points) : nil).json,
                    ]
                }),
        ])
    }
}
