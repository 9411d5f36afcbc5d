package import ConcurProtocol

extension Rendering {
    /// `status --cluster`: a line per node with its pools under it, then the shared queue's jobs
    /// by pool, 80 columns wide (names past their cell are cut with an ellipsis; `--json` has
    /// them whole); sentences wrap at `width`.
    package static func cluster(_ status: ClusterStatus, width: Int? = nil) -> [String] {
        let running = status.nodes.filter { $0.state == .running }.count
        let nodeTable = TextTable(columns: [
            .left("NODE", 14), .left("STATE", 9), .left("HOST", 14), .right("PID", 8), .right("BEAT", 8), .right("DONE", 9),
            .right("FAILED", 8), .right("CANCEL", 8),
        ])
        var lines =
            wrapped(
                [
                    "cluster: \(status.nodes.count) node\(status.nodes.count == 1 ? "" : "s"), \(running) running (read by \(TerminalText.escaped(status.answeredBy)))"
                ], width: width) + [nodeTable.lines([], width: width)[0]]
        for node in status.nodes {
            let cells = [
                TerminalText.escaped(node.name), node.state.rawValue, TerminalText.escaped(node.host), String(node.pid),
                beat(node), String(node.done), String(node.failed), String(node.cancelled),
            ]
            lines.append(nodeTable.lines([cells], width: width)[1])
            if node.state == .running || node.state == .silent {
                for pool in node.pools {
                    let paused = pool.paused ? ", paused" : ""
                    lines.append(
                        TerminalText.cut(
                            "  pool \(TerminalText.escaped(pool.pool)): \(pool.model.rawValue), \(pool.workers) worker\(pool.workers == 1 ? "" : "s"), \(pool.busy) busy\(paused)",
                            to: width))
                }
            }
            if let problem = node.problem {
                lines += TerminalText.wrap("  warning: \(TerminalText.escaped(problem))", width: width, indent: 11)
            }
        }
        guard !status.queue.isEmpty else {
            lines.append("queue: no jobs")
            return lines
        }
        let queueTable = TextTable(columns: [
            .left("POOL", 12), .right("QUEUED", 8), .right("SCHED", 7), .right("CLAIMED", 8), .right("RUNNING", 8),
            .right("DONE", 11), .right("FAILED", 9), .right("CANCEL", 9),
        ])
        let rows = status.queue.map { row in
            [TerminalText.escaped(row.pool)]
                + [row.queued, row.scheduled, row.claimed, row.running, row.done, row.failed, row.cancelled].map(String.init)
        }
        return lines + ["queue"] + queueTable.lines(rows, width: width)
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
}
