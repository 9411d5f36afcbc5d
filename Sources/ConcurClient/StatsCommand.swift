package import ArgumentParser
import CConcurShims
import ConcurProtocol

extension ConcurctlCommand {
    /// `concurctl stats`: everything measured, once or as it changes.
    package struct Stats: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
            abstract: "Show throughput, latency percentiles, the daemon's CPU and memory, and one row per worker.",
            discussion: """
                With --follow, one line per interval (vmstat style; --json: one JSON object per line) until \
                Ctrl-C or until concurd stops. --format prometheus prints the Prometheus text format, for \
                node_exporter's textfile collector.
                """)

        /// What `stats` prints.
        package enum Format: String, ExpressibleByArgument, CaseIterable, Sendable {
            /// Aligned text for people.
            case text
            /// The reply as JSON (NDJSON with --follow).
            case json
            /// The Prometheus text exposition format.
            case prometheus
        }

        @Flag(name: [.customShort("f"), .long], help: "Print a line per interval until Ctrl-C or until concurd stops.")
        var follow = false

        @Option(help: "Time between lines with --follow: 50ms to 60s, such as 1s, 250ms or 0.5.")
        var interval: String = "1s"

        @Option(help: "text, json or prometheus (default text; --json is json).")
        var format: Format?

        @OptionGroup var pool: PoolOption
        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// The format asked for, `--json` included.
        var resolvedFormat: Format { format ?? (common.json ? .json : .text) }

        /// Checks the options together before the command runs.
        package func validate() throws {
            if common.json, let format, format != .json {
                throw ValidationError("--json and --format \(format.rawValue) contradict each other; give one")
            }
            if follow && resolvedFormat == .prometheus {
                throw ValidationError("--format prometheus prints one snapshot (scrapers poll); drop --follow")
            }
            _ = try Self.seconds(interval)
        }

        /// `text` as seconds between 0.05 and 60: a number with an optional unit (ms, s, m).
        static func seconds(_ text: String) throws(ValidationError) -> Double {
            var number = Substring(text)
            var scale = 1.0
            for (suffix, factor) in [("ms", 0.001), ("s", 1.0), ("m", 60.0)] where number.hasSuffix(suffix) {
                number = number.dropLast(suffix.count)
                scale = factor
                break
            }
            guard let value = Double(number), value.isFinite else {
                throw ValidationError("--interval must be a duration such as 1s, 250ms or 0.5, not '\(text)'")
            }
            let seconds = value * scale
            guard (0.05...60).contains(seconds) else {
                throw ValidationError("--interval must be between 50ms and 60s, not '\(text)'")
            }
            return seconds
        }

        /// Runs the command.
        package func run() throws {
            let format = resolvedFormat
            guard follow else {
                try perform { () throws(ClientFailure) in
                    let client = try common.connect()
                    let reply = try client.call(.stats, pool.parameters)
                    let stats = try ControlClient.decode(PoolStats.self, "stats", in: ["stats": .object(reply)])
                    switch format {
                    case .json: printJSON(reply)
                    case .text:
                        let width = TerminalWidth.current()
                        var lines = Rendering.stats(stats, width: width)
                        if pool.pool == nil && stats.pools.count > 1 {
                            lines += [""]
                            lines += Rendering.wrapped(
                                ["pools (the figures above are the default pool's; --pool NAME for another)"], width: width)
                            lines += TopScreen.poolRows(stats.pools, shown: stats.status.pool, width: width)
                        }
                        for line in lines { StandardStreams.printLine(line) }
                    case .prometheus:
                        // Every pool, each with a pool label, unless one was asked for.
                        var all = [stats]
                        if pool.pool == nil {
                            for other in stats.pools where other.pool != stats.status.pool {
                                let more = try client.call(.stats, ["pool": .string(other.pool)])
                                all.append(try ControlClient.decode(PoolStats.self, "stats", in: ["stats": .object(more)]))
                            }
                        }
                        StandardStreams.printText(PrometheusExposition.text(all))
                    }
                }
                return
            }
            let seconds = try Self.seconds(interval)
            try perform { () throws(ClientFailure) in
                let client = try common.connect()
                // Lines are written whole, one write each: ending at once on Ctrl-C cuts none.
                concur_exit_quietly_on_signals()
                var rows: Int32 = 0
                var columns: Int32 = 0
                concur_terminal_size(1, &rows, &columns)
                let screenful = rows > 3 ? Int(rows) - 1 : Int.max
                var lines = FollowLines(everyPool: pool.pool == nil, width: TerminalWidth.current())
                var printed = 0
                let end = try client.follow(.watchStats, pool.adding(to: ["interval": seconds.json])) {
                    reply throws(ClientFailure) in
                    if format == .json {
                        printJSON(reply)
                        return true
                    }
                    let stats = try ControlClient.decode(PoolStats.self, "stats", in: ["stats": .object(reply)])
                    let frame = lines.lines(for: stats, clock: StandardStreams.localTime())
                    if printed == 0 || printed + frame.count > screenful {
                        StandardStreams.printLine(lines.header(for: stats))
                        printed = 0
                    }
                    for line in frame { StandardStreams.printLine(line) }
                    printed += frame.count
                    return true
                }
                let reason: String
                switch end {
                case .finished: reason = "concurd is stopping: it ended the stream"
                case .closedByDaemon: reason = "concurd closed the connection (it stopped, or dropped a reader that fell behind)"
                case .lost(let why): reason = why
                case .timedOut: reason = "concurd sent nothing in time"
                }
                if format == .json {
                    printJSON(["end": .string(reason)])
                } else {
                    StandardStreams.printLine(lines.farewell(reason: reason))
                }
            }
        }
    }
}
