package import ArgumentParser
import CConcurShims
import ConcurProtocol
import Glibc
import Varlink

extension ConcurctlCommand {
    /// `concurctl top`: a full-screen live view of the pool, with keys to steer it.
    package struct Top: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
            abstract: "A full-screen live view: throughput, latency, one row per worker, recent events.",
            discussion: """
                Keys: m switches to the next model, + and - add or remove a worker, p pauses or resumes, \\
                q (or Ctrl-C) quits. Needs a terminal; to stream to a pipe or a file use `concurctl stats \\
                --follow`. Colour unless NO_COLOR is set (to anything but empty); refused where TERM is dumb or unset.
                """)

        @Option(help: "Time between refreshes: 50ms to 60s, such as 1s or 500ms.")
        var interval: String = "1s"

        @OptionGroup var pool: PoolOption
        @OptionGroup var common: ConnectionOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Checks the options together before the command runs.
        package func validate() throws {
            _ = try Stats.seconds(interval)
            try pool.validate()
        }

        /// Runs the command.
        package func run() throws {
            let seconds = try Stats.seconds(interval)
            try perform { () throws(ClientFailure) in
                guard isatty(0) == 1 && isatty(1) == 1 else {
                    throw ClientFailure(
                        "top needs a terminal; to stream to a pipe or a file use `concurctl stats --follow` (or --json)",
                        exitCode: ClientFailure.ExitStatus.usage)
                }
                // A terminal that cannot move its cursor would show the escapes as text.
                let terminal = getenv("TERM").map { String(cString: $0) } ?? ""
                if terminal.isEmpty || terminal == "dumb" {
                    throw ClientFailure(
                        "top redraws the screen, which TERM=\(terminal.isEmpty ? "(unset)" : terminal) cannot; use `concurctl stats --follow`, which prints plain lines",
                        exitCode: ClientFailure.ExitStatus.usage)
                }
                let client = try common.connect()
                // Fails here, before the screen is taken, if concurd is not there.
                _ = try client.call(.status, pool.parameters)
                let colour = getenv("NO_COLOR").map { String(cString: $0).isEmpty } ?? true
                var session = TopSession(client: client, interval: seconds, colour: colour, pool: pool.pool)
                try session.run()
            }
        }
    }
}

/// One run of `top`: the terminal in raw mode on the alternate screen, redrawn every interval
/// and after each key, and given back as it was found however the run ends.
struct TopSession {
    let client: ControlClient
    let interval: Double
    let colour: Bool
    private var message: String?
    private var last: PoolStats?
    /// The pool shown, which the keys act on (nil: the default).
    private var pool: String?

    /// Leaves the alternate screen and shows the cursor again.
    static let leave = "\u{1B}[?25h\u{1B}[?1049l"
    /// Enters the alternate screen, hides the cursor, clears.
    static let enter = "\u{1B}[?1049h\u{1B}[?25l\u{1B}[H\u{1B}[2J"

    init(client: ControlClient, interval: Double, colour: Bool, pool: String? = nil) {
        self.pool = pool
        self.client = client
        self.interval = interval
        self.colour = colour
    }

    mutating func run() throws(ClientFailure) {
        concur_terminal_set_leave_sequence(Self.leave)
        guard concur_terminal_raw(0) == 0 else {
            throw ClientFailure("cannot set up the terminal: \(String(cString: strerror(errno)))")
        }
        concur_terminal_watch_resize()
        StandardStreams.printText(Self.enter)
        var failure: ClientFailure?
        do {
            try loop()
        } catch {
            failure = error
        }
        concur_terminal_restore()
        if let failure { throw failure }
    }

    private mutating func loop() throws(ClientFailure) {
        var next = concur_monotonic_nanoseconds()
        while true {
            if concur_monotonic_nanoseconds() >= next || concur_terminal_take_resize() != 0 {
                try refresh()
                next = concur_monotonic_nanoseconds() + UInt64(interval * 1e9)
            }
            let wait = Int32(max(0, min(Double(next &- concur_monotonic_nanoseconds()) / 1e6, interval * 1000)))
            var input = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
            let ready = poll(&input, 1, wait)
            if ready < 0 && errno != EINTR { return }
            guard ready > 0 else { continue }
            var bytes = [UInt8](repeating: 0, count: 64)
            let count = read(0, &bytes, bytes.count)
            // End of input (the terminal went away) ends the view too.
            if count == 0 { return }
            for byte in bytes.prefix(max(0, count)) {
                guard try handle(key: byte) else { return }
            }
            try refresh()
            next = concur_monotonic_nanoseconds() + UInt64(interval * 1e9)
        }
    }

    /// Acts on one key; false means quit.
    private mutating func handle(key: UInt8) throws(ClientFailure) -> Bool {
        switch key {
        case UInt8(ascii: "q"), UInt8(ascii: "Q"), 3, 4:
            return false
        case UInt8(ascii: "m"):
            let model = TopScreen.nextModel(after: last?.status.model ?? .threads)
            message = "switching to \(model.rawValue) ..."
            try draw()
            message = attempt { () throws(ClientFailure) in
                let reply = try client.call(.setModel, addressed(["model": model.json]), timeout: 0)
                let after = (try? ControlClient.decode(Double.self, "servingAfter", in: reply)) ?? 0
                return "switched to \(model.rawValue): serving after \(formatDuration(after))"
            }
        case UInt8(ascii: "+"), UInt8(ascii: "="), UInt8(ascii: "-"), UInt8(ascii: "_"):
            let grow = key == UInt8(ascii: "+") || key == UInt8(ascii: "=")
            let target = (last?.status.workers.target ?? 1) + (grow ? 1 : -1)
            message = attempt { () throws(ClientFailure) in
                _ = try client.call(.resize, addressed(["workers": target.json]))
                return "resized to \(target) worker\(target == 1 ? "" : "s")"
            }
        case UInt8(ascii: "p"), UInt8(ascii: "P"):
            let paused = last?.status.paused ?? false
            message = attempt { () throws(ClientFailure) in
                _ = try client.call(paused ? .resume : .pause, addressed([:]))
                return paused ? "resumed" : "paused: workers take no new jobs"
            }
        case 9 where (last?.pools.count ?? 0) > 1:
            // Tab: the next pool.
            pool = TopScreen.nextPool(after: last?.status.pool ?? "default", in: last?.pools ?? [])
            message = "showing pool \(pool ?? "default")"
        default:
            message = "unknown key; " + TopScreen.keys(current: last?.status.model ?? .threads, paused: false)
        }
        return true
    }

    /// `parameters` with the pool shown, if it is not the default.
    private func addressed(_ parameters: JSONObject) -> JSONObject {
        var parameters = parameters
        if let pool { parameters["pool"] = .string(pool) }
        return parameters
    }

    /// The outcome of a command, for the message line; a refusal is shown, not fatal.
    private func attempt(_ body: () throws(ClientFailure) -> String) -> String {
        do {
            return try body()
        } catch {
            return error.message
        }
    }

    private mutating func refresh() throws(ClientFailure) {
        let reply = try client.call(.stats, addressed([:]))
        last = try ControlClient.decode(PoolStats.self, "stats", in: ["stats": .object(reply)])
        try draw()
    }

    /// Redraws in place: home, each line followed by erase-to-end-of-line, then erase below;
    /// one write, so the screen never shows a half-drawn frame.
    private func draw() throws(ClientFailure) {
        guard let last else { return }
        var rows: Int32 = 0
        var columns: Int32 = 0
        concur_terminal_size(1, &rows, &columns)
        let lines = TopScreen.lines(
            stats: last, width: max(20, Int(columns)), height: max(5, Int(rows)), colour: colour, message: message)
        StandardStreams.printText("\u{1B}[H" + lines.joined(separator: "\u{1B}[K\r\n") + "\u{1B}[K\u{1B}[J")
    }
}
