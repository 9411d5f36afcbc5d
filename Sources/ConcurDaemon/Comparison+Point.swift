import ConcurProtocol

extension Comparison {
    /// One model at one pool size over its repeated runs: what the table, the chart and the
    /// sentences show.
    package struct Point: Sendable, Equatable {
        /// What ran the jobs.
        package var contender: Contender
        /// Workers in the pool.
        package var workers: Int
        /// Jobs per second over the runs.
        package var throughput: Spread
        /// Cores kept busy (CPU seconds per wall second) over the runs.
        package var cpuPerWall: Spread
        /// Peak resident memory over the runs, bytes.
        package var peakRSS: Spread
        /// The run with the median throughput: its wall time, CPU and latencies stand for the
        /// point (a median of percentiles across runs would be a figure no run had).
        package var typical: Measurement

        /// The point for `runs` (of one model at one size; at least one).
        init(_ runs: [Measurement]) {
            let ordered = runs.sorted { $0.throughput < $1.throughput }
            typical = ordered[(ordered.count - 1) / 2]
            contender = typical.contender
            workers = typical.workers
            throughput = Spread(runs.map(\.throughput))
            cpuPerWall = Spread(runs.map(\.cpuPerWall))
            peakRSS = Spread(runs.map { Double($0.peakRSS) })
        }
    }

    /// The points of `measurements`, by contender in the comparison's order, then by size.
    package func points(_ measurements: [Measurement]) -> [Point] {
        contenders.flatMap { contender in
            sizes.compactMap { size in
                let runs = measurements.filter { $0.contender == contender && $0.workers == size }
                return runs.isEmpty ? nil : Point(runs)
            }
        }
    }

    /// The point of `contender` at `size`, if measured.
    func point(_ contender: Contender, _ size: Int, in points: [Point]) -> Point? {
        points.first { $0.contender == contender && $0.workers == size }
    }

    /// The point of `contender` at the largest size.
    func top(_ contender: Contender, in points: [Point]) -> Point? { point(contender, workers, in: points) }

    /// Median throughput at the largest pool over the median with the smallest, when the
    /// comparison has more than one size.
    func speedUp(_ contender: Contender, _ points: [Point]) -> Double? {
        guard let first = sizes.first, sizes.count > 1, let one = point(contender, first, in: points),
            let top = top(contender, in: points), one.throughput.median > 0
        else { return nil }
        return top.throughput.median / one.throughput.median
    }
}
