import ConcurProtocol

extension Comparison {
    /// A few sentences on what the numbers show, each from the measured figures. A difference
    /// is claimed only where the runs' ranges do not overlap; where they do, the sentence says
    /// there is no measurable difference; with one run each, it says there is no spread to tell.
    package func explanation(_ measurements: [Measurement]) -> [String] {
        let points = points(measurements)
        let tops = contenders.compactMap { top($0, in: points) }.sorted { $0.throughput.median > $1.throughput.median }
        guard let best = tops.first else { return [] }
        var lines = [ranking(tops, best: best)]
        lines += scaling(points)
        if let limit = coreLimit(points) { lines.append(limit) }
        if let processes = top(.concur(.processes), in: points), let threads = top(.concur(.threads), in: points) {
            lines.append(
                "Processes kept \(formatFixed(processes.cpuPerWall.median, places: 2)) cores busy for \(formatGrouped(processes.throughput.median)) jobs/s against \(formatFixed(threads.cpuPerWall.median, places: 2)) for threads' \(formatGrouped(threads.throughput.median)), and peaked at \(formatBytes(Int(processes.peakRSS.median))) of memory against \(formatBytes(Int(threads.peakRSS.median))): each job crosses a socket to a child that has memory of its own; in return a crashing job takes down one child, never the daemon."
            )
        }
        if workload.kind == .sleep, let tasks = top(.concur(.tasks), in: points) {
            lines.append(
                "Sleeping tasks hold no thread (Task.sleep): \(tasks.workers) task workers kept \(formatFixed(tasks.cpuPerWall.median, places: 2)) cores busy for \(formatGrouped(tasks.throughput.median)) jobs/s."
            )
        }
        if pythonPools.isEmpty {
            lines.append(
                "Python is not measured here: with --python the seeds' ThreadPoolExecutor, ProcessPoolExecutor and asyncio TaskGroup run the same jobs beside concur."
            )
        } else {
            lines += python(points)
        }
        return lines
    }

    /// What the Python pools showed: their checksums, and their threads against concur's.
    private func python(_ points: [Point]) -> [String] {
        var lines = [
            "The Python pools ran the same \(workload.count) jobs\(workload.kind == .cpu ? " and arrived at the same checksums as concur's" : "")."
        ]
        guard let first = sizes.first, sizes.count > 1, repeats > 1,
            let one = point(.python(.threads), first, in: points), let last = top(.python(.threads), in: points)
        else { return lines }
        let span = "from \(first) to \(workers) workers"
        let scaled = last.throughput.isAbove(one.throughput)
        switch (workload.kind, scaled) {
        case (.cpu, false):
            // The GIL is the explanation only where concur's threads show the cores were there.
            if let concurOne = point(.concur(.threads), first, in: points), let concurTop = top(.concur(.threads), in: points),
                concurTop.throughput.isAbove(concurOne.throughput)
            {
                let ratio = formatFixed(concurTop.throughput.median / max(1e-9, concurOne.throughput.median), places: 2)
                lines.append(
                    "Python's threads did not measurably speed up \(span) on cpu jobs while concur's threads sped up \(ratio)x on the same jobs: Python's threads take turns holding the GIL, so one of them runs Python at a time."
                )
            } else if top(.concur(.threads), in: points) == nil {
                lines.append(
                    "Python's threads did not measurably speed up \(span) on cpu jobs; without concur's threads beside them (--models threads) this run cannot tell the GIL from a busy machine."
                )
            } else {
                lines.append(
                    "Neither Python's threads nor concur's sped up measurably \(span) here (was a second core free? see CPU/wall), so this run says nothing about the GIL."
                )
            }
        case (.cpu, true):
            lines.append(
                "Python's threads sped up \(span) on these cpu jobs, which the GIL would not allow for pure-Python work on one interpreter: check what else ran on this machine."
            )
        case (_, true):
            lines.append(
                "Python's threads sped up \(span) on sleep jobs too: a sleeping thread gives the GIL back, so waiting overlaps even where computing cannot."
            )
        case (_, false):
            lines.append("Python's threads did not measurably speed up \(span) on these jobs.")
        }
        return lines
    }

    /// A median and its range: `1,234 jobs/s (1,200 to 1,260)`.
    private func figure(_ point: Point) -> String {
        let throughput = point.throughput
        guard repeats > 1 else { return "\(formatGrouped(throughput.median)) jobs/s" }
        return "\(formatGrouped(throughput.median)) jobs/s (\(formatGrouped(throughput.min)) to \(formatGrouped(throughput.max)))"
    }

    /// Which model was fastest at the largest pool, if the runs say so.
    private func ranking(_ tops: [Point], best: Point) -> String {
        let pool = "\(best.workers) worker\(best.workers == 1 ? "" : "s")"
        guard tops.count > 1 else { return "\(best.contender.title): \(figure(best)) with \(pool)." }
        guard repeats > 1 else {
            return
                "Fastest in this one run: \(best.contender.title), \(figure(best)) with \(pool); with one run each there is no spread to tell a difference from noise (--repeat 3 or more)."
        }
        let tied = tops.dropFirst().filter { $0.throughput.overlaps(best.throughput) }
        let slower = tops.dropFirst().filter { !$0.throughput.overlaps(best.throughput) }
        let slowerText = slower.map { "\($0.contender.title), \(figure($0))" }.joined(separator: "; ")
        if tied.isEmpty {
            return
                "Fastest here: \(best.contender.title), \(figure(best)) with \(pool) over \(repeats) runs, above every run of the others (\(slowerText))."
        }
        let group = ([best] + tied).map { "\($0.contender.title) \(figure($0))" }.joined(separator: ", ")
        return
            "With \(pool), \(group): their runs overlap (or differ by under 5%), so there is no measurable difference between them here"
            + (slower.isEmpty ? "." : "; below every run of \(best.contender.title): \(slowerText).")
    }

    /// For each model, whether going from the smallest pool to the largest sped it up.
    private func scaling(_ points: [Point]) -> [String] {
        guard let first = sizes.first, sizes.count > 1 else { return [] }
        return contenders.compactMap { contender in
            guard let one = point(contender, first, in: points), let top = top(contender, in: points), one.throughput.median > 0
            else {
                return nil
            }
            let ratio = formatFixed(top.throughput.median / one.throughput.median, places: 2)
            let name = contender.title.prefix(1).uppercased() + contender.title.dropFirst()
            let span = "from \(first) to \(workers) workers"
            guard repeats > 1 else { return "\(name): \(ratio)x \(span) in one run." }
            if top.throughput.isAbove(one.throughput) {
                return "\(name) sped up \(ratio)x \(span): every run with \(workers) above every run with \(first)."
            }
            if one.throughput.isAbove(top.throughput) {
                return "\(name) slowed down \(span) (\(ratio)x): every run with \(workers) below every run with \(first)."
            }
            return "\(name): no measurable speed-up \(span) (\(ratio)x, within the runs' spread)."
        }
    }

    /// For CPU-bound jobs and pools larger than the cores: whether the workers past the cores
    /// added anything, for the models where the runs say they did not.
    private func coreLimit(_ points: [Point]) -> String? {
        guard workload.kind == .cpu || workload.kind == .prime, repeats > 1, workers > cores,
            let atCores = sizes.last(where: { $0 <= cores }), atCores < workers
        else { return nil }
        let flat = contenders.filter { contender in
            guard let limit = point(contender, atCores, in: points), let top = top(contender, in: points) else { return false }
            return !top.throughput.isAbove(limit.throughput)
        }
        guard !flat.isEmpty else { return nil }
        return
            "Past \(cores) core\(cores == 1 ? "" : "s") more workers added nothing measurable for \(flat.map(\.title).joined(separator: ", ")) (\(atCores) against \(workers) workers): CPU-bound jobs are limited by the cores, not by the workers."
    }
}
