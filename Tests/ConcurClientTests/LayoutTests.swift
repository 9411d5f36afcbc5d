import ConcurProtocol
import Testing
import Varlink

@testable import ConcurClient

@Suite("concurctl's views fit the terminal")
struct LayoutTests {
    @Test(
        "COLUMNS wins when it is a positive whole number; anything else leaves the terminal's width",
        arguments: [
            ("100", 80, 100), ("  90 ", nil, 90), ("20", nil, 40), ("abc", 80, 80), ("-5", 80, 80), ("0", nil, nil),
            ("", 120, 120), ("1e3", nil, nil), ("99999999999999999999999", 70, 70),
        ] as [(String, Int?, Int?)])
    func columns(columns: String, terminal: Int?, expected: Int?) {
        #expect(TerminalWidth.resolve(columns: columns, terminal: terminal) == expected)
    }

    @Test("no COLUMNS: the terminal's width, at least 40; a pipe gets whole lines")
    func terminal() {
        #expect(TerminalWidth.resolve(columns: nil, terminal: 132) == 132)
        #expect(TerminalWidth.resolve(columns: nil, terminal: 12) == 40)
        #expect(TerminalWidth.resolve(columns: nil, terminal: nil) == nil)
    }

    @Test("a cut ends in an ellipsis; a wrap breaks between words under its label")
    func cutAndWrap() {
        #expect(TerminalText.cut("abcdef", to: 4) == "abc…" && TerminalText.cut("abc", to: 3) == "abc")
        #expect(TerminalText.cut("abc", to: nil) == "abc" && TerminalText.cut("abc", to: 0) == "")
        let wrapped = TerminalText.wrap("queue     one two three four five six", width: 20, indent: 10)
        #expect(wrapped == ["queue     one two", "          three four", "          five six"])
        #expect(wrapped.allSatisfy { $0.count <= 20 })
        #expect(TerminalText.wrap("short", width: 20, indent: 4) == ["short"])
        #expect(TerminalText.wrap("a " + String(repeating: "x", count: 30), width: 10, indent: 2) == ["a", "  xxxxxxx…"])
    }

    @Test("a latency in at most six characters, three significant digits")
    func compactDurations() {
        let cases: [(Double, String)] = [
            (0.00085, "850us"), (0.0021, "2.1ms"), (0.0125, "12.5ms"), (0.1113, "111ms"), (1.25, "1.25s"), (12.54, "12.5s"),
            (192, "3m12s"), (0, "0us"),
        ]
        for (seconds, shown) in cases {
            #expect(FollowLines.compact(seconds) == shown)
            #expect(shown.count <= 6)
        }
    }

    @Test("a table's flexible columns give up room, the widest first, down to their minimum")
    func table() {
        let table = TextTable(
            columns: [.left("NAME", 20, shrinksTo: 6), .left("KIND", 12, shrinksTo: 6), .right("N", 5)], last: "NOTE")
        #expect(table.widths(fitting: nil) == [20, 12, 5])
        #expect(table.widths(fitting: 45, lastRoom: 4) == [20, 12, 5])
        #expect(table.widths(fitting: 35, lastRoom: 4) == [12, 12, 5])
        #expect(table.widths(fitting: 10, lastRoom: 4) == [6, 6, 5])
        let lines = table.lines([["a-very-long-name-indeed", "kind", "42", "a note"]], width: 43)
        #expect(lines == ["NAME        KIND            N  NOTE", "a-very-lon… kind           42  a note"])
    }

    /// Jobs that need every optional column: pools, nodes and priorities, with long labels.
    static func jobs() -> [JobInfo] {
        var long = JobInfo(
            id: 1_234_567,
            spec: JobSpec(
                .exec(argv: ["sh", "-c", String(repeating: "echo long words; ", count: 8)]),
                placement: JobPlacement(priority: -100)),
            state: .failed, attempts: 3, submittedAt: 100, startedAt: 101, finishedAt: 102.5, worker: 12,
            result: JobResult(summary: "exit 1", exitCode: 1, output: String(repeating: "x", count: 300) + "\nlast line"),
            error: "the command exited with status 1 after printing a great deal to its standard error",
            history: [
                JobAttempt(
                    attempt: 1, startedAt: 100.5, finishedAt: 101, exitCode: 1,
                    error: String(repeating: "a failure that goes on ", count: 6))
            ])
        long.pool = "a-pool-with-a-very-long-name"
        long.node = "node-with-a-long-host-name.example.org"
        var short = JobInfo(id: 2, spec: JobSpec(.prime(n: 97)), state: .done, attempts: 1, submittedAt: 100)
        short.node = "n1"
        return [long, short]
    }

    @Test("jobs, with pool, node and priority columns, fits 80 columns; without a width nothing is cut")
    func jobsAt80() {
        let lines = Rendering.jobs(Self.jobs(), width: 80)
        #expect(lines.count == 3)
        #expect(lines.allSatisfy { $0.count <= 80 }, "\(lines.joined(separator: "\n"))")
        #expect(lines[0].hasPrefix("     ID  POOL") && lines[0].contains("NODE") && lines[0].contains("PRI"))
        #expect(
            lines[1].contains("a-pool…") && lines[1].contains("node-w…") && lines[1].contains("-100"),
            "\(lines.joined(separator: "\n"))")
        #expect(lines[1].hasSuffix("…"), "the result is cut with an ellipsis")
        let whole = Rendering.jobs(Self.jobs())
        #expect(whole[1].hasSuffix("the command exited with status 1 after printing a great deal to its standard error (exit 1)"))
        let details = Rendering.jobDetails(Self.jobs(), width: 80)
        #expect(details.allSatisfy { $0.count <= 80 }, "\(details.joined(separator: "\n"))")
        #expect(details.contains("  | last line") && details.contains { $0.hasPrefix("    ") })
    }

    @Test("status, stats and stats --follow fit 80 columns, one pool or several")
    func statusAndStatsAt80() {
        var stats = LiveViewTests.twoPools()
        stats.pools[1].pool = String(repeating: "p", count: 40)
        stats.pools[1].warnings = ["the pool's queue is nearly full: " + String(repeating: "more words ", count: 10)]
        stats.workers = (1...3).map { LiveViewTests.worker($0) }
        stats.status.warnings = ["a warning long enough to wrap onto a second line under its label, and a third"]
        let views = [
            Rendering.status(stats.status, width: 80), Rendering.status(pools: stats.pools, width: 80),
            Rendering.stats(stats, width: 80),
        ]
        for view in views {
            #expect(view.allSatisfy { $0.count <= 80 }, "\(view.joined(separator: "\n"))")
        }
        #expect(views[0].contains { $0.hasPrefix("          ") }, "a wrapped sentence continues under its label")
        #expect(views[1].contains { $0.hasPrefix("pppppppppp… tasks") }, "\(views[1].joined(separator: "\n"))")
        var follow = FollowLines(everyPool: true, width: 80)
        stats.pools[1].paused = true
        stats.pools[1].handingOver = 12
        let lines = [follow.header(for: stats)] + follow.lines(for: stats, clock: "12:00:00")
        #expect(lines.allSatisfy { $0.count <= 80 }, "\(lines.joined(separator: "\n"))")
        #expect(lines.contains("         paused, handover (12 finishing), warning: see status"))
    }

    @Test("top at 80 x 24: every line fits, the keys keep q quit, the events fill the room the workers leave")
    func topAt80() {
        var stats = LiveViewTests.twoPools(addressing: "io")
        stats.workers = (1...3).map { LiveViewTests.worker($0) }
        stats.events = (1...20).map { PoolEvent(time: Double($0), kind: .resized, message: "event \($0)") }
        let screen = TopScreen.lines(stats: stats, width: 80, height: 24, colour: false, message: nil)
        #expect(screen.count == 24 && screen.allSatisfy { $0.count <= 80 }, "\(screen.joined(separator: "\n"))")
        #expect(screen.last?.hasSuffix("q quit") == true && screen.last?.contains("tab pool") == true)
        // No empty half-screen: the events take what the tables leave, down to the keys.
        let events = screen.firstIndex(of: "recent events")
        #expect(events != nil)
        #expect(
            !zip(screen, zip(screen.dropFirst(), screen.dropFirst(2))).contains { $0.isEmpty && $1.0.isEmpty && $1.1.isEmpty },
            "no run of three blank lines: \(screen.joined(separator: "\n"))")
        #expect(screen.contains { $0.hasSuffix("event 20") })
    }

    @Test("top says how many task workers share how many threads")
    func taskThreads() {
        let workers = (1...3).map { id in
            WorkerInfo(id: id, model: .tasks, state: .busy, jobsDone: 1, busyFraction: 0.1, recentBusyFraction: 0.97)
        }
        var stats = LiveViewTests.stats(uptime: 30, done: 1, model: .tasks, workers: workers)
        stats.status.taskThreads = 2
        let screen = TopScreen.lines(stats: stats, width: 100, height: 30, colour: false, message: nil)
        #expect(screen[1].hasSuffix("; 3 tasks on 2 threads"), "\(screen[1])")
        // BUSY is the last 10 s, not the worker's life.
        #expect(screen.filter { $0.contains(" tasks     busy") }.allSatisfy { $0.contains("  97%") })
        stats.status.taskThreads = nil
        #expect(!TopScreen.lines(stats: stats, width: 100, height: 30, colour: false, message: nil)[1].contains("threads"))
    }

    @Test("a recent busy share out of range and a task thread count below one are refused when read")
    func wrongValues() throws {
        var worker = try LiveViewTests.object(LiveViewTests.worker(1).json)
        for wrong in [JSON.double(1.5), .double(-0.1), .string("most")] {
            worker["recentBusyFraction"] = wrong
            #expect(throws: VarlinkError.self) { try WorkerInfo(json: .object(worker), path: "w") }
        }
        worker["recentBusyFraction"] = .double(0.25)
        #expect(try WorkerInfo(json: .object(worker), path: "w").recentBusyFraction == 0.25)
        var status = try LiveViewTests.object(LiveViewTests.stats(uptime: 1, done: 1).status.json)
        for wrong in [JSON.int(0), .int(-3), .string("two")] {
            status["taskThreads"] = wrong
            #expect(throws: VarlinkError.self) { try PoolStatus(json: .object(status), path: "s") }
        }
        status["taskThreads"] = .int(2)
        #expect(try PoolStatus(json: .object(status), path: "s").taskThreads == 2)
    }
}
