package import ConcurProtocol

/// The lines of `concurctl stats --follow`: one per snapshot, vmstat style, under a header.
///
/// Rates are measured between consecutive snapshots by the daemon's own clock (its uptime), so
/// a late or skipped frame does not distort them; the first line uses the daemon's 1 s rate.
package struct FollowLines {
    private var previous: PoolStats?
    /// Each pool's totals and the daemon's uptime at the last snapshot, by pool.
    private var previousPools: [String: (uptime: Double, finished: Int)] = [:]
    /// Whether a daemon with several pools gets a line per pool (no `--pool` was given).
    private let everyPool: Bool
    /// The columns lines are fitted to; nil: no limit.
    private let width: Int?

    /// A formatter that has seen no snapshot yet; with `everyPool`, a snapshot of a daemon
    /// with several pools gives a line for each. Lines fit `width` (pool names give up room).
    package init(everyPool: Bool = false, width: Int? = nil) {
        self.everyPool = everyPool
        self.width = width
    }

    /// The column titles of the lines `stats` gives.
    package func header(for stats: PoolStats) -> String {
        (perPool(stats) ? Self.poolTable : Self.table).lines([], width: width)[0]
    }

    /// The columns of the line for one pool, among several: the daemon's CPU is not one (it
    /// is not any pool's; `stats` shows it).
    static let poolTable = TextTable(
        columns: [.left("time", 9), .left("pool", 12, shrinksTo: 8)] + figures, last: "note")

    /// The columns of the line for the daemon's one pool.
    static let table = TextTable(columns: [.left("time", 9)] + figures + [.right("cpu%", 5)], last: "note")

    /// What each line counts: p50 and p99 are the run time of the jobs that ended in the last
    /// 10 s. 80 columns in all, with a pool's name at its narrowest.
    private static let figures: [TextTable.Column] = [
        .left("model", 10), .right("busy", 7), .right("queued", 7), .right("running", 8), .right("done/s", 10),
        .right("failed", 7), .right("p50", 7), .right("p99", 7),
    ]

    private func perPool(_ stats: PoolStats) -> Bool { everyPool && stats.pools.count > 1 }

    /// The lines for `stats`: one, or with several pools one per pool. A note that does not fit
    /// the width goes on a line of its own under its row.
    package mutating func lines(for stats: PoolStats, clock: String) -> [String] {
        guard perPool(stats) else { return fitted(line(for: stats, clock: clock), table: Self.table) }
        previous = stats
        let uptime = stats.status.uptimeSeconds
        return stats.pools.flatMap { status in
            let finished = status.totals.done + status.totals.failed + status.totals.cancelled
            var rate = 0.0
            if let before = previousPools[status.pool], uptime > before.uptime {
                rate = Double(finished - before.finished) / (uptime - before.uptime)
            }
            previousPools[status.pool] = (uptime, finished)
            let cells =
                [clock, TerminalText.escaped(status.pool)] + Self.figures(status, rate: rate, run: status.recentRun ?? .empty)
            return fitted(cells + [Self.note(status)], table: Self.poolTable)
        }
    }

    /// The cells for one row, the note last; the note on a line of its own when the row with it
    /// would be wider than the width.
    private func fitted(_ cells: [String], table: TextTable) -> [String] {
        let note = cells.last ?? ""
        let row = table.lines([Array(cells.dropLast())], width: width)[1]
        guard !note.isEmpty else { return [row] }
        let whole = row + "  " + note
        if width.map({ whole.count <= $0 }) ?? true { return [whole] }
        return [row, TerminalText.cut(String(repeating: " ", count: 9) + note, to: width)]
    }

    private static func figures(_ status: PoolStatus, rate: Double, run: Percentiles) -> [String] {
        [
            status.model.rawValue, "\(status.workers.busy)/\(status.workers.live)", String(status.queued),
            String(status.running), formatGrouped(rate), String(status.totals.failed),
            run.count == 0 ? "-" : compact(run.p50), run.count == 0 ? "-" : compact(run.p99),
        ]
    }

    /// The cells of the line for `stats`, taken at `clock` (HH:MM:SS, local time), the note last.
    private mutating func line(for stats: PoolStats, clock: String) -> [String] {
        let status = stats.status
        let finished = status.totals.done + status.totals.failed + status.totals.cancelled
        var rate = stats.throughput.last1s
        if let previous {
            let seconds = status.uptimeSeconds - previous.status.uptimeSeconds
            let before = previous.status.totals
            if seconds > 0 { rate = Double(finished - (before.done + before.failed + before.cancelled)) / seconds }
        }
        previous = stats
        return [clock] + Self.figures(status, rate: rate, run: stats.recentLatency.run)
            + [String(Int(stats.process.cpuPercent.rounded())), Self.note(status)]
    }

    /// The last line, once the stream has ended: why it did.
    package func farewell(reason: String) -> String {
        guard let previous else { return "-- \(reason)" }
        let phase = previous.status.phase
        return "-- \(reason)" + (phase == .serving ? "" : " (concurd was \(phase.rawValue))")
    }

    /// What is going on besides the numbers: shutdown, pause, a handover, a warning.
    static func note(_ status: PoolStatus) -> String {
        var notes: [String] = []
        if status.phase != .serving { notes.append(status.phase.rawValue) }
        if status.removed { notes.append("removed") }
        if status.paused { notes.append("paused") }
        if status.handingOver > 0 { notes.append("handover (\(status.handingOver) finishing)") }
        if !status.warnings.isEmpty { notes.append("warning: see status") }
        return notes.joined(separator: ", ")
    }

    /// A duration in at most 6 characters, three significant digits: `850us`, `12.5ms`,
    /// `111ms`, `1.25s`, `3m12s`.
    static func compact(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0.001, seconds < 60 else { return formatDuration(seconds).filter { $0 != " " } }
        let (value, unit) = seconds < 1 ? (seconds * 1000, "ms") : (seconds, "s")
        return formatDecimal(value, places: value < 10 ? 2 : value < 100 ? 1 : 0) + unit
    }

}
