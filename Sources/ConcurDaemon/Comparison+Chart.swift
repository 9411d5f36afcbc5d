import ConcurProtocol
import Glibc

extension Comparison {
    /// An SVG chart in two panels over the same log-scaled workers axis: throughput (the
    /// median, a bar from the slowest run to the fastest, the ideal scaling of the fastest
    /// one-worker pool dashed, the core count marked), then the cores kept busy (CPU seconds
    /// per wall second). Ticks fall on round values.
    package func svg(_ measurements: [Measurement]) -> String {
        let points = points(measurements)
        let width = 720.0
        let left = 80.0
        let right = 150.0
        let plotRight = width - right
        let upper = (top: 56.0, bottom: 300.0)
        let lower = (top: 356.0, bottom: 500.0)
        let height = 560.0
        let colours: [ConcurrencyModel: String] = [.threads: "#1f77b4", .processes: "#d62728", .tasks: "#2ca02c"]
        /// A concur model's colour, drawn solid; a Python pool's is its counterpart's, dashed.
        func style(_ contender: Contender) -> (colour: String, dash: String) {
            switch contender {
            case .concur(let model): (colours[model] ?? "black", "")
            case .python(let pool): (colours[pool.counterpart] ?? "black", " stroke-dasharray=\"2 3\"")
            }
        }
        let smallest = Double(sizes.first ?? 1)
        let largest = Double(sizes.last ?? 1)
        /// The horizontal place of `size` workers, on a log scale.
        func x(_ size: Double) -> Double {
            guard largest > smallest else { return (left + plotRight) / 2 }
            return left + (log2(size) - log2(smallest)) / (log2(largest) - log2(smallest)) * (plotRight - left)
        }
        let throughputAxis = ChartAxis(
            values: points.flatMap { [$0.throughput.min, $0.throughput.max] }, top: upper.top, bottom: upper.bottom,
            allowLog: true)
        let cpuAxis = ChartAxis(
            values: points.map(\.cpuPerWall.max), top: lower.top, bottom: lower.bottom, atLeast: Double(cores))
        let runs = repeats == 1 ? "1 run" : "median of \(repeats) runs, bars from the slowest to the fastest"
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(Int(left))" y="22" font-size="15">\(workload.count) \(workload.kind.rawValue) jobs, seed \(workload.seed ?? 1), scale \(formatDecimal(workload.scale, places: 4)), \(cores) core\(cores == 1 ? "" : "s")</text>
            <text x="\(Int(left))" y="40" fill="#555">throughput and CPU by workers (\(runs))</text>

            """
        // The axes and ticks of both panels.
        for (panel, axis, label, format) in [
            (
                upper, throughputAxis, throughputAxis.logarithmic ? "jobs/s (log scale)" : "jobs/s",
                { (value: Double) in formatGrouped(value) }
            ),
            (lower, cpuAxis, "cores busy", { (value: Double) in formatDecimal(value, places: 2) }),
        ] {
            svg += "<line x1=\"\(left)\" y1=\"\(panel.bottom)\" x2=\"\(plotRight)\" y2=\"\(panel.bottom)\" stroke=\"black\"/>\n"
            svg += "<line x1=\"\(left)\" y1=\"\(panel.top)\" x2=\"\(left)\" y2=\"\(panel.bottom)\" stroke=\"black\"/>\n"
            for value in axis.ticks {
                let at = axis.y(value)
                svg += "<line x1=\"\(left)\" y1=\"\(at)\" x2=\"\(plotRight)\" y2=\"\(at)\" stroke=\"#ddd\"/>\n"
                svg += "<text x=\"\(left - 8)\" y=\"\(at + 4)\" text-anchor=\"end\">\(format(value))</text>\n"
            }
            let middle = (panel.top + panel.bottom) / 2
            svg +=
                "<text x=\"18\" y=\"\(middle)\" transform=\"rotate(-90 18 \(middle))\" text-anchor=\"middle\">\(label)</text>\n"
            for size in sizes {
                svg += "<text x=\"\(x(Double(size)))\" y=\"\(panel.bottom + 16)\" text-anchor=\"middle\">\(size)</text>\n"
            }
        }
        svg +=
            "<text x=\"\((left + plotRight) / 2)\" y=\"\(height - 16)\" text-anchor=\"middle\">workers (log scale)</text>\n"
        // The cores: where CPU-bound work stops scaling, and what the CPU panel can reach.
        if Double(cores) >= smallest, Double(cores) <= largest, largest > smallest {
            let at = x(Double(cores))
            svg +=
                "<line x1=\"\(at)\" y1=\"\(upper.top)\" x2=\"\(at)\" y2=\"\(lower.bottom)\" stroke=\"#888\" stroke-dasharray=\"2 4\"/>\n"
            // Left of the line when it is at the right edge, clear of the legend.
            let anchor = at > plotRight - 60 ? "end\" x=\"\(at - 4)" : "start\" x=\"\(at + 4)"
            svg += "<text text-anchor=\"\(anchor)\" y=\"\(upper.top + 12)\" fill=\"#555\">\(cores) cores</text>\n"
        }
        let allCores = cpuAxis.y(Double(cores))
        svg +=
            "<line x1=\"\(left)\" y1=\"\(allCores)\" x2=\"\(plotRight)\" y2=\"\(allCores)\" stroke=\"#888\" stroke-dasharray=\"6 4\"/>\n"
        svg += "<text x=\"\(plotRight - 4)\" y=\"\(allCores - 4)\" text-anchor=\"end\" fill=\"#555\">all \(cores) cores</text>\n"
        // Ideal scaling of the fastest smallest pool: n times its throughput, up to the axis.
        if let base = points.filter({ Double($0.workers) == smallest }).map(\.throughput.median).max(), base > 0,
            largest > smallest
        {
            let reach = min(largest, smallest * throughputAxis.high / base)
            let steps = 24
            let line = (0...steps).map { index -> String in
                let size = smallest * pow(reach / smallest, Double(index) / Double(steps))
                return "\(x(size)),\(throughputAxis.y(base * size / smallest))"
            }
            svg +=
                "<polyline fill=\"none\" stroke=\"#999\" stroke-dasharray=\"6 4\" points=\"\(line.joined(separator: " "))\"/>\n"
        }
        // One line per model in each panel, with the legend.
        let contenders = contenders
        for (index, contender) in contenders.enumerated() {
            let (colour, dash) = style(contender)
            let mine = points.filter { $0.contender == contender }
            for (values, axis) in [
                (mine.map { ($0.workers, $0.throughput) }, throughputAxis),
                (mine.map { ($0.workers, $0.cpuPerWall) }, cpuAxis),
            ] {
                let line = values.map { "\(x(Double($0.0))),\(axis.y($0.1.median))" }
                svg +=
                    "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2.5\"\(dash) points=\"\(line.joined(separator: " "))\"/>\n"
                for (size, spread) in values {
                    // Each model's bar a little aside, so that overlapping ranges stay visible.
                    let at = x(Double(size)) + (Double(index) - Double(contenders.count - 1) / 2) * 4
                    if spread.max > spread.min {
                        svg +=
                            "<line x1=\"\(at)\" y1=\"\(axis.y(spread.min))\" x2=\"\(at)\" y2=\"\(axis.y(spread.max))\" stroke=\"\(colour)\" stroke-width=\"1.5\"/>\n"
                    }
                    svg +=
                        "<circle cx=\"\(at)\" cy=\"\(axis.y(spread.median))\" r=\"3.5\" fill=\"\(colour)\"/>\n"
                }
            }
            let legendY = upper.top + 20 + Double(index) * 22
            svg +=
                "<line x1=\"\(plotRight + 16)\" y1=\"\(legendY)\" x2=\"\(plotRight + 40)\" y2=\"\(legendY)\" stroke=\"\(colour)\" stroke-width=\"2.5\"\(dash)/>\n"
            svg += "<text x=\"\(plotRight + 46)\" y=\"\(legendY + 4)\">\(contender.label)</text>\n"
        }
        let idealY = upper.top + 20 + Double(contenders.count) * 22
        svg +=
            "<line x1=\"\(plotRight + 16)\" y1=\"\(idealY)\" x2=\"\(plotRight + 40)\" y2=\"\(idealY)\" stroke=\"#999\" stroke-dasharray=\"6 4\"/>\n"
        svg += "<text x=\"\(plotRight + 46)\" y=\"\(idealY + 4)\">ideal scaling</text>\n"
        return svg + "</svg>\n"
    }

    /// A round distance between ticks for an axis from 0 to `highest` with about four
    /// intervals: 1, 2, 2.5 or 5 times a power of ten.
    package static func niceStep(_ highest: Double, intervals: Int = 4) -> Double {
        guard highest > 0, highest.isFinite else { return 1 }
        let raw = highest / Double(intervals)
        let magnitude = pow(10, floor(log10(raw)))
        let residual = raw / magnitude
        let nice: Double = residual <= 1 ? 1 : residual <= 2 ? 2 : residual <= 2.5 ? 2.5 : residual <= 5 ? 5 : 10
        return nice * magnitude
    }

    /// The top of an axis: the first multiple of `step` at or above `highest` (one step for 0).
    package static func axisTop(_ highest: Double, step: Double) -> Double {
        max(step, (highest / step).rounded(.up) * step)
    }
}
