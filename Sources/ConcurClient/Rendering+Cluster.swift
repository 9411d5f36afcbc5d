package import ConcurProtocol

extension Rendering {
    /// `status --cluster`: a line per node with its pools under it, then the shared queue's jobs
    /// by pool; 80 columns wide (names past their cell are cut with an ellipsis; `--json` has
    /// them whole).
    package static func cluster(_ status: ClusterStatus) -> [String] {
        let running = status.nodes.filter { $0.state == .running }.count
        var lines = [
            "cluster: \(status.nodes.count) node\(status.nodes.count == 1 ? "" : "s"), \(running) running (read by \(TerminalText.escaped(status.answeredBy)))",
            rightPad("NODE", 14) + rightPad("STATE", 9) + rightPad("HOST", 14) + leftPad("PID", 8) + leftPad("BEAT", 8)
                + leftPad("DONE", 9) + leftPad("FAILED", 8) + leftPad("CANCEL", 8),
        ]
        for node in status.nodes {
            lines.append(
                cell(node.name, 14) + rightPad(node.state.rawValue, 9) + cell(node.host, 14) + leftPad(String(node.pid), 8)
                    + leftPad(beat(node), 8) + leftPad(String(node.done), 9) + leftPad(String(node.failed), 8)
                    + leftPad(String(node.cancelled), 8))
            if node.state == .running || node.state == .silent {
                for pool in node.pools {
                    let paused = pool.paused ? ", paused" : ""
                    lines.append(
                        "  pool \(TerminalText.escaped(pool.pool)): \(pool.model.rawValue), \(pool.workers) worker\(pool.workers == 1 ? "" : "s"), \(pool.busy) busy\(paused)"
                    )
                }
            }
            if let problem = node.problem { lines.append("  warning: \(TerminalText.escaped(problem))") }
        }
        guard !status.queue.isEmpty else {
            lines.append("queue: no jobs")
            return lines
        }
        lines.append("queue")
        lines.append(
            rightPad("POOL", 12) + leftPad("QUEUED", 8) + leftPad("SCHED", 7) + leftPad("CLAIMED", 8)
                + leftPad("RUNNING", 8) + leftPad("DONE", 11) + leftPad("FAILED", 9) + leftPad("CANCEL", 9))
        for row in status.queue {
            lines.append(
                poolCell(row.pool) + leftPad(String(row.queued), 8) + leftPad(String(row.scheduled), 7)
                    + leftPad(String(row.claimed), 8) + leftPad(String(row.running), 8) + leftPad(String(row.done), 11)
                    + leftPad(String(row.failed), 9) + leftPad(String(row.cancelled), 9))
        }
        return lines
    }

    /// Seconds since a node's last heartbeat, short: `0.4s`, `12s`, `3m`, `2h`, `5d`.
    static func beat(_ node: ClusterNode) -> String {
        let age = node.heartbeatAge
        switch age {
        case ..<10: return "\(formatFixed(age, places: 1))s"
        case ..<120: return "\(Int(age))s"
        case ..<7200: return "\(Int(age / 60))m"
        case ..<172_800: return "\(Int(age / 3600))h"
        default: return "\(Int(age / 86400))d"
        }
    }

    /// `text` escaped and padded to `width`, cut with an ellipsis when longer than `width - 1`.
    static func cell(_ text: String, _ width: Int) -> String {
        let escaped = TerminalText.escaped(text)
        return rightPad(escaped.count > width - 1 ? escaped.prefix(width - 2) + "…" : escaped, width)
    }
}
