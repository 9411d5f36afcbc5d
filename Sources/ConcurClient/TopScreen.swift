package import ConcurProtocol

/// What `concurctl top` shows: a pure function of a `Stats` reply and the terminal's size, so
/// tests can check the screen a person sees.
package enum TopScreen {
    /// The keys, as the last line shows them; with several pools, `pool` is the one they act on.
    /// When the sentence is wider than `width`, the short form, so that `q quit` always shows.
    package static func keys(current model: ConcurrencyModel, paused: Bool, pool: String? = nil, width: Int? = nil) -> String {
        let named = pool.map { "keys (pool \(TerminalText.escaped($0))): " } ?? "keys: "
        let next = nextModel(after: model).rawValue
        let pause = paused ? "resume" : "pause"
        let long =
            named + "m model (-> \(next))  + add worker  - remove worker  p \(pause)"
            + (pool == nil ? "" : "  tab next pool") + "  q quit"
        guard let width, long.count > width else { return long }
        let short = "m ->\(next)  +/- worker  p \(pause)" + (pool == nil ? "" : "  tab pool") + "  q quit"
        // The pool's name gives up room first.
        let room = width - short.count - "keys (pool ): ".count
        return (pool.map { "keys (pool \(TerminalText.cut(TerminalText.escaped($0), to: max(4, room)))): " } ?? "keys: ") + short
    }

    /// The pool after `current` among those that take work, for the tab key.
    package static func nextPool(after current: String, in pools: [PoolStatus]) -> String {
        let names = pools.filter { !$0.removed }.map(\.pool)
        guard let index = names.firstIndex(of: current) else { return names.first ?? current }
        return names[(index + 1) % names.count]
    }

    /// One row per pool, the one shown marked: its model and workers, queue and totals; names
    /// give up room to fit `width`.
    package static func poolRows(_ pools: [PoolStatus], shown: String, width: Int? = nil) -> [String] {
        let table = TextTable(
            columns: [
                .left("POOL", 12, shrinksTo: 8), .left("MODEL", 10), .right("WORKERS", 8), .right("BUSY", 6),
                .right("QUEUED", 8), .right("RUNNING", 8), .right("DONE", 9), .right("FAILED", 7),
            ], indent: 2, last: "STATE")
        let rows = pools.map { pool in
            let state =
                pool.removed
                ? "removed (\(pool.queued + pool.scheduled + pool.waiting) kept)"
                : pool.paused ? "paused" : pool.handingOver > 0 ? "switching" : "serving"
            return [
                TerminalText.escaped(pool.pool), pool.model.rawValue, "\(pool.workers.live)/\(pool.workers.target)",
                String(pool.workers.busy), String(pool.queued), String(pool.running), String(pool.totals.done),
                String(pool.totals.failed), state,
            ]
        }
        return table.lines(rows, width: width, prefixes: pools.map { $0.pool == shown ? "> " : "  " })
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
        if status.handingOver > 0 { state += ", handover (\(status.handingOver) finishing)" }
        let several = stats.pools.count > 1
        let named = several ? "  pool \(TerminalText.escaped(status.pool))" : ""
        let workers = status.workers
        // Task workers are not threads: say how many share how many.
        let tasks = stats.workers.count { $0.model == .tasks }
        let shared = status.taskThreads.map { threads in
            tasks == 0 ? "" : "; \(tasks) task\(tasks == 1 ? "" : "s") on \(threads) thread\(threads == 1 ? "" : "s")"
        }
        var top: [(String, Paint.Style)] = [
            (
                "concurd \(status.version)  pid \(status.pid)  up \(formatDuration(status.uptimeSeconds))\(named)  model \(status.model.rawValue)  \(state)",
                .bold
            ),
            (
                "workers \(workers.live) live, target \(workers.target): \(workers.busy) busy, \(workers.idle) idle, \(workers.retiring) retiring\(shared ?? "")",
                .plain
            ),
            (
                "jobs    queued \(status.queued)\(status.scheduled > 0 ? "  scheduled \(status.scheduled)" : "")\(status.waiting > 0 ? "  waiting \(status.waiting)" : "")  running \(status.running)  done \(status.totals.done)  failed \(status.totals.failed)",
                .plain
            ),
        ]
        let rate = stats.throughput
        let throughput =
            "throughput \(formatGrouped(rate.last1s))/s 1s  \(formatGrouped(rate.last10s))/s 10s  \(formatGrouped(rate.last60s))/s 60s  "
        let sparkRoom = max(0, width - throughput.count)
        top.append((throughput + sparkline(rate.history.suffix(min(60, sparkRoom))), .plain))
        // Two rows, no header: the label says what the figures are.
        let latencyTable = TextTable(columns: [.left("", 20), .left("", 20), .left("", 20), .left("", 20)])
        let latencies = [("p50/p99 last 10s", stats.recentLatency), ("        since start", stats.latency)].map {
            label, latency in
            [label]
                + [("wait", latency.queueWait), ("run", latency.run), ("total", latency.endToEnd)].map { name, percentiles in
                    percentiles.count == 0
                        ? "\(name) -" : "\(name) \(FollowLines.compact(percentiles.p50))/\(FollowLines.compact(percentiles.p99))"
                }
        }
        top += latencyTable.lines(latencies, width: width).dropFirst().map { ($0, .plain) }
        let process = stats.process
        top.append(
            (
                "cpu \(Int(process.cpuPercent.rounded()))%  rss \(formatBytes(process.rssBytes))  threads \(process.threads)  switches \(status.switches)  resizes \(stats.resizes)  deaths \(stats.workerDeaths)",
                .plain
            ))
        for warning in status.warnings { top.append(("warning: \(TerminalText.escaped(warning))", .red)) }
        if several {
            top.append(("", .plain))
            let rows = poolRows(stats.pools, shown: status.pool, width: width)
            top.append((rows[0], .bold))
            for (row, pool) in zip(rows.dropFirst(), stats.pools) {
                top.append((row, pool.pool == status.pool ? .green : pool.removed ? .dim : .plain))
            }
        }
        top.append(("", .plain))

        var bottom: [(String, Paint.Style)] = [
            ("", .plain), (message ?? "", .yellow),
            (keys(current: status.model, paused: status.paused, pool: several ? status.pool : nil, width: width), .dim),
        ]
        let table = Rendering.workers(stats.workers)
        // The blank lines around the worker table give way before a worker does.
        if table.count > height - top.count - bottom.count {
            top.removeLast()
            bottom.removeFirst()
        }
        let room = height - top.count - bottom.count
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
        // The keys and the header always show; a worker table longer than the room is cut and
        // says how many workers it hides; the events take the room it leaves, down to the keys.
        if rows.count > room {
            let kept = max(0, room - 2)
            let hidden = stats.workers.count - kept
            rows = room >= 2 ? Array(rows.prefix(1 + kept)) : []
            if room >= 1 { rows.append(("  ... \(hidden) more workers (enlarge the window)", .dim)) }
        }
        let eventRoom = room - rows.count - 2
        let events = stats.events.suffix(max(0, eventRoom)).map { event in
            ("  \(StandardStreams.localTime(of: Int(event.time)))  \(TerminalText.escaped(event.message))", Paint.Style.dim)
        }
        let shownEvents: [(String, Paint.Style)] = events.isEmpty ? [] : [("", .plain), ("recent events", .bold)] + events
        var screen = Array((top + rows + shownEvents).prefix(max(0, height - bottom.count)))
        let padding = height - screen.count - bottom.count
        if padding > 0 { screen += Array(repeating: ("", Paint.Style.plain), count: padding) }
        screen += bottom.suffix(height)
        return screen.map { text, style in paint(TerminalText.cut(text, to: width), style) }
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
