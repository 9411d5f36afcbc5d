package import ConcurProtocol

/// The lines of `concurctl stats --follow`: one per snapshot, vmstat style, under a header.
///
/// Rates are measured between consecutive snapshots by the daemon's own clock (its uptime), so
/// a late or skipped frame does not distort them; the first line uses the daemon's 1 s rate.
package struct FollowLines {
    private var previous: PoolStats?

    /// A formatter that has seen no snapshot yet.
    package init() {}

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
