package import ConcurProtocol

/// What `concurctl top` shows: a pure function of a `Stats` reply and the terminal's size, so
/// tests can check the screen a person sees.
package enum TopScreen {
    /// The keys, as the last line shows them; with several pools, `pool` is the one they act on.
    package static func keys(current model: ConcurrencyModel, paused: Bool, pool: String? = nil) -> String {
        (pool.map { "keys (pool \(TerminalText.escaped($0))): " } ?? "keys: ")
            + "m model (-> \(nextModel(after: model).rawValue))  + add worker  - remove worker  p \(paused ? "resume" : "pause")"
            + (pool == nil ? "" : "  tab next pool") + "  q quit"
    }

    /// The pool after `current` among those that take work, for the tab key.
    package static func nextPool(after current: String, in pools: [PoolStatus]) -> String {
        let names = pools.filter { !$0.removed }.map(\.pool)
        guard let index = names.firstIndex(of: current) else { return names.first ?? current }
        return names[(index + 1) % names.count]
    }

    /// One row per pool, the one shown marked: its model and workers, queue and totals.
    package static func poolRows(_ pools: [PoolStatus], shown: String) -> [String] {
        let header =
            "  " + rightPad("POOL", 12) + rightPad("MODEL", 10) + leftPad("WORKERS", 8) + leftPad("BUSY", 6)
            + leftPad("QUEUED", 8)
            + leftPad("RUNNING", 8) + leftPad("DONE", 9) + leftPad("FAILED", 7) + "  STATE"
        return [header]
            + pools.map { pool in
                let state =
                    pool.removed
                    ? "removed (\(pool.queued + pool.scheduled + pool.waiting) kept)"
                    : pool.paused ? "paused" : pool.handingOver > 0 ? "switching" : "serving"
                return (pool.pool == shown ? "> " : "  ") + Rendering.poolCell(pool.pool)
                    + rightPad(pool.model.rawValue, 10) + leftPad("\(pool.workers.live)/\(pool.workers.target)", 8)
                    + leftPad(String(pool.workers.busy), 6) + leftPad(String(pool.queued), 8) + leftPad(String(pool.running), 8)
                    + leftPad(String(pool.totals.done), 9) + leftPad(String(pool.totals.failed), 7) + "  " + state
            }
    }

    /// The model `m` switches to.
    package static func nextModel(after model: ConcurrencyModel) -> ConcurrencyModel {
        let all = ConcurrencyModel.allCases
        return all[(all.firstIndex(of: model)! + 1) % all.count]
    }

    /// The screen's lines, each at most `width` columns, at most `height` of them. `message`
    /// is the outcome of the last key pressed. With `colour`, lines carry ANSI colours.
    package static func lines(stats: PoolStats, width: Int, height: Int, colour: Bool, message: String?) -> [String] {
        let status = stats.status
        let paint = Paint(enabled: colour)
        var state = status.phase.rawValue
        if status.paused { state += ", paused" }
        if status.handingOver > 0 { state += ", handover: \(status.handingOver) of the old model finishing" }
        let several = stats.pools.count > 1
        let named = several ? "  pool \(TerminalText.escaped(status.pool))" : ""
        var top: [(String, Paint.Style)] = [
            (
                "concurd \(status.version)  pid \(status.pid)  up \(formatDuration(status.uptimeSeconds))\(named)  model \(status.model.rawValue)  \(state)",
                .bold
            ),
            (
                "workers \(status.workers.live) (\(status.workers.busy) busy, \(status.workers.idle) idle, \(status.workers.retiring) retiring; target \(status.workers.target))  queue \(status.queued)\(status.scheduled > 0 ? "  scheduled \(status.scheduled)" : "")\(status.waiting > 0 ? "  waiting \(status.waiting)" : "")  running \(status.running)  done \(status.totals.done)  failed \(status.totals.failed)",
                .plain
            ),
        ]
        let rate = stats.throughput
        let throughput =
            "throughput \(formatGrouped(rate.last1s))/s 1s  \(formatGrouped(rate.last10s))/s 10s  \(formatGrouped(rate.last60s))/s 60s  "
        let sparkRoom = max(0, width - throughput.count)
        top.append((throughput + sparkline(rate.history.suffix(min(60, sparkRoom))), .plain))
        for (label, latency) in [("last 10s", stats.recentLatency), ("since start", stats.latency)] {
            func pair(_ name: String, _ percentiles: Percentiles) -> String {
                percentiles.count == 0
                    ? "\(name) -"
                    : "\(name) p50 \(FollowLines.compact(percentiles.p50)) p99 \(FollowLines.compact(percentiles.p99))"
            }
            top.append(
                (
                    "latency \(rightPad(label, 11)) "
                        + [
                            pair("wait", latency.queueWait), pair("run", latency.run), pair("total", latency.endToEnd),
                        ].joined(separator: "  "), .plain
                ))
        }
        let process = stats.process
        top.append(
            (
                "cpu \(Int(process.cpuPercent.rounded()))%  rss \(formatBytes(process.rssBytes))  threads \(process.threads)  switches \(status.switches)  resizes \(stats.resizes)  deaths \(stats.workerDeaths)",
                .plain
            ))
        for warning in status.warnings { top.append(("warning: \(TerminalText.escaped(warning))", .red)) }
        if several {
            top.append(("", .plain))
            let rows = poolRows(stats.pools, shown: status.pool)
            top.append((rows[0], .bold))
            for (row, pool) in zip(rows.dropFirst(), stats.pools) {
                top.append((row, pool.pool == status.pool ? .green : pool.removed ? .dim : .plain))
            }
        }
        top.append(("", .plain))

        let bottom: [(String, Paint.Style)] = [
            ("", .plain), (message ?? "", .yellow),
            (keys(current: status.model, paused: status.paused, pool: several ? status.pool : nil), .dim),
        ]
        let events = stats.events.suffix(5).map { event in
            ("  \(StandardStreams.localTime(of: Int(event.time)))  \(TerminalText.escaped(event.message))", Paint.Style.dim)
        }
        let eventBlock: [(String, Paint.Style)] = events.isEmpty ? [] : [("", .plain), ("recent events", .bold)] + events
        let table = Rendering.workers(stats.workers)
        var rows: [(String, Paint.Style)] = [(table[0], .bold)]
        for (row, worker) in zip(table.dropFirst(), stats.workers) {
            let style: Paint.Style =
                switch worker.state {
                case .busy: .green
                case .retiring: .yellow
                case .starting: .dim
                case .idle: .plain
                }
            rows.append((row, style))
        }
        // The keys and the header always show; the events go before the worker table is cut;
        // a table cut short says how many workers it hides.
        let room = height - top.count - bottom.count
        let shownEvents = room - eventBlock.count >= min(rows.count, 4) ? eventBlock : []
        let tableRoom = room - shownEvents.count
        if rows.count > tableRoom {
            let kept = max(0, tableRoom - 2)
            let hidden = stats.workers.count - kept
            rows = tableRoom >= 2 ? Array(rows.prefix(1 + kept)) : []
            if tableRoom >= 1 { rows.append(("  ... \(hidden) more workers (enlarge the window)", .dim)) }
        }
        var screen = Array((top + rows + shownEvents).prefix(max(0, height - bottom.count)))
        let padding = height - screen.count - bottom.count
        if padding > 0 { screen += Array(repeating: ("", Paint.Style.plain), count: padding) }
        screen += bottom.suffix(height)
        return screen.map { text, style in paint(String(text.prefix(width)), style) }
    }

    /// A sparkline of `values`: one block character per value, scaled to the largest.
    package static func sparkline(_ values: some Collection<Double>) -> String {
        let blocks: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
        guard let largest = values.max(), largest > 0 else { return String(repeating: "▁", count: values.count) }
        return String(values.map { blocks[min(blocks.count - 1, Int(($0 / largest * Double(blocks.count - 1)).rounded()))] })
    }
}

/// ANSI colours, or none.
struct Paint {
    enum Style {
        case plain, bold, dim, green, yellow, red
    }

    let enabled: Bool

    func callAsFunction(_ text: String, _ style: Style) -> String {
        guard enabled, !text.isEmpty else { return text }
        let code =
            switch style {
            case .plain: ""
            case .bold: "1"
            case .dim: "2"
            case .green: "32"
            case .yellow: "33"
            case .red: "31"
            }
        return code.isEmpty ? text : "\u{1B}[\(code)m\(text)\u{1B}[0m"
    }
}
