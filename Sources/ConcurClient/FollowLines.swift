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

    /// A formatter that has seen no snapshot yet; with `everyPool`, a snapshot of a daemon
    /// with several pools gives a line for each.
    package init(everyPool: Bool = false) {
        self.everyPool = everyPool
    }

    /// The column titles of the lines `stats` gives.
    package func header(for stats: PoolStats) -> String {
        perPool(stats) ? Self.poolHeader : Self.header
    }

    /// The column titles of the lines for each pool.
    package static let poolHeader =
        rightPad("time", 9) + rightPad("pool", 12) + rightPad("model", 10) + leftPad("busy/wkr", 9) + leftPad("queued", 9)
        + leftPad("running", 8) + leftPad("done/s", 11) + leftPad("failed", 8) + leftPad("p50 run", 10) + leftPad("p99 run", 10)
        + leftPad("cpu%", 6) + "  note"

    private func perPool(_ stats: PoolStats) -> Bool { everyPool && stats.pools.count > 1 }

    /// The lines for `stats`: one, or with several pools one per pool (the daemon's CPU on the
    /// first).
    package mutating func lines(for stats: PoolStats, clock: String) -> [String] {
        guard perPool(stats) else { return [line(for: stats, clock: clock)] }
        previous = stats
        let uptime = stats.status.uptimeSeconds
        return stats.pools.enumerated().map { index, status in
            let finished = status.totals.done + status.totals.failed + status.totals.cancelled
            var rate = 0.0
            if let before = previousPools[status.pool], uptime > before.uptime {
                rate = Double(finished - before.finished) / (uptime - before.uptime)
            }
            previousPools[status.pool] = (uptime, finished)
            let run = status.recentRun ?? .empty
            return rightPad(clock, 9) + Rendering.poolCell(status.pool) + rightPad(status.model.rawValue, 10)
                + leftPad("\(status.workers.busy)/\(status.workers.live)", 9) + leftPad(String(status.queued), 9)
                + leftPad(String(status.running), 8) + leftPad(formatGrouped(rate), 11)
                + leftPad(String(status.totals.failed), 8)
                + leftPad(run.count == 0 ? "-" : Self.compact(run.p50), 10)
                + leftPad(run.count == 0 ? "-" : Self.compact(run.p99), 10)
                + leftPad(index == 0 ? String(Int(stats.process.cpuPercent.rounded())) : "", 6) + Self.note(status)
        }
    }

    /// The column titles.
    package static let header =
        rightPad("time", 9) + rightPad("model", 10) + leftPad("busy/wkr", 9) + leftPad("queued", 9) + leftPad("running", 8)
        + leftPad("done/s", 11) + leftPad("failed", 8) + leftPad("p50 run", 10) + leftPad("p99 run", 10) + leftPad("cpu%", 6)
        + "  note"

    /// The line for `stats`, taken at `clock` (HH:MM:SS, local time).
    package mutating func line(for stats: PoolStats, clock: String) -> String {
        let status = stats.status
        let finished = status.totals.done + status.totals.failed + status.totals.cancelled
        var rate = stats.throughput.last1s
        if let previous {
            let seconds = status.uptimeSeconds - previous.status.uptimeSeconds
            let before = previous.status.totals
            if seconds > 0 { rate = Double(finished - (before.done + before.failed + before.cancelled)) / seconds }
        }
        previous = stats
        let run = stats.recentLatency.run
        return rightPad(clock, 9) + rightPad(status.model.rawValue, 10)
            + leftPad("\(status.workers.busy)/\(status.workers.live)", 9) + leftPad(String(status.queued), 9)
            + leftPad(String(status.running), 8) + leftPad(formatGrouped(rate), 11)
            + leftPad(String(status.totals.failed), 8)
            + leftPad(run.count == 0 ? "-" : Self.compact(run.p50), 10)
            + leftPad(run.count == 0 ? "-" : Self.compact(run.p99), 10)
            + leftPad(String(Int(stats.process.cpuPercent.rounded())), 6) + Self.note(status)
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
        return notes.isEmpty ? "" : "  " + notes.joined(separator: ", ")
    }

    /// A duration in few characters: `850us`, `12.5ms`, `1.25s`.
    static func compact(_ seconds: Double) -> String {
        formatDuration(seconds).filter { $0 != " " }
    }

}
