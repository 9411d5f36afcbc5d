import ConcurProtocol
import Glibc
import Testing
import Varlink

@testable import ConcurClient

@Suite("concurctl's arguments")
struct ArgumentTests {
    @Test(
        "refuses wrong arguments before connecting",
        arguments: [
            ["submit"], ["submit", "--jobs", "0"], ["submit", "--jobs", "5", "prime:7"], ["submit", "prime:7", "--seed", "3"],
            ["submit", "--jobs", "3", "--scale", "500"], ["submit", "--jobs", "3", "--kind", "quantum"],
            ["submit", "--jobs", "3", "--seed", "-2"],
            ["resize"], ["resize", "--workers", "0"], ["resize", "--workers", "many"], ["jobs", "--limit", "0"], ["jobs", "0"],
            ["jobs", "--state", "sleeping"], ["status", "--bogus"], ["stats", "extra"], ["frobnicate"], ["submit", "--exec"],
            ["submit", "--exec", "--jobs", "3", "--", "ls"], ["submit", "prime:7", "--timeout", "0"],
            ["submit", "fail", "--timeout", "x"],
            ["submit", "--exec", "--", ""], ["model"], ["model", "fibers"], ["model", "tasks", "processes"],
            ["model", "tasks", "--now"], ["model", "--preempt"],
            ["stats", "--follow", "--interval", "10ms"], ["stats", "-f", "--interval", "61s"],
            ["stats", "-f", "--interval", "soon"],
            ["stats", "-f", "--interval", "-1"], ["stats", "--format", "yaml"], ["stats", "--format", "prometheus", "--follow"],
            ["stats", "--format", "text", "--json"], ["top", "--interval", "0"], ["top", "--json"], ["pause", "now"],
            ["resume", "--all"], ["reload", "now"], ["reload", "--config", "x"],
            ["submit", "prime:97", "--exec", "--", "true"], ["submit", "--", "true"], ["submit", "prime:7", "--cwd", "/tmp"],
            ["submit", "--exec", "--cwd", "relative", "--", "ls"], ["submit", "--exec", "--env", "NOEQUALS", "--", "ls"],
            ["submit", "--exec", "--env", "=1", "--", "ls"], ["submit", "fail", "--env", "A=1"],
            ["submit", "fail", "--clear-env"],
            ["submit", "--jobs", "2", "--at-most-once"], ["cancel"], ["cancel", "1", "--queued"], ["cancel", "0"],
            ["cancel", "one"], ["wait"], ["wait", "1", "--all"], ["wait", "1", "--timeout", "0"],
            ["wait", "1", "--timeout", "x"],
            ["wait", "--all", "--timeout", "40000000"], ["shutdown", "--later"], ["shutdown", "now"],
            ["submit", "fail", "--retries", "0"], ["submit", "fail", "--retries", "101"], ["submit", "fail", "--retries", "x"],
            ["submit", "fail", "--retry-delay", "1"], ["submit", "fail", "--retries", "2", "--retry-delay", "3601"],
            ["submit", "--jobs", "3", "--retries", "2"], ["logs"], ["logs", "0"], ["logs", "1", "--stdout", "--stderr"],
            ["logs", "1", "2"],
            ["submit", "fail", "--priority", "11"], ["submit", "fail", "--priority", "-11"],
            ["submit", "fail", "--priority", "high"], ["submit", "fail", "--delay", "0"], ["submit", "fail", "--delay", "-5"],
            ["submit", "fail", "--delay", "2y"], ["submit", "fail", "--delay", "400d"], ["submit", "fail", "--delay", "5m3"],
            ["submit", "fail", "--delay", "soon"], ["submit", "fail", "--at", "tomorrow"],
            ["submit", "fail", "--at", "2026-02-31T10:00"], ["submit", "fail", "--at", "2026-12-01T25:00"],
            ["submit", "fail", "--at", "2026-12-01T10:00+25:00"], ["submit", "fail", "--at", "2026-12-01"],
            ["submit", "fail", "--delay", "5s", "--at", "2030-01-01T00:00"], ["submit", "fail", "--after", "0"],
            ["submit", "fail", "--after", "x"], ["submit", "fail", "--after", "1,1"], ["submit", "fail", "--after", "1,"],
            ["submit", "fail", "--after", "-3"],
        ])
    func refuses(arguments: [String]) {
        #expect(throws: (any Error).self) { try ConcurctlCommand.parseAsRoot(ConcurctlCommand.prepared(arguments)) }
    }

    @Test("a command after -- never mixes with listed jobs: options go before --, the rest is the command")
    func terminator() throws {
        #expect(
            ConcurctlCommand.prepared(["submit", "--exec", "--", "ls", "--all", "--", "x"]) == [
                "submit", "--exec", "--argv", "ls", "--argv", "--all", "--argv", "--", "--argv", "x",
            ])
        #expect(ConcurctlCommand.prepared(["jobs", "--", "3"]) == ["jobs", "--", "3"])
        let parsed = try ConcurctlCommand.Submit.parse(ConcurctlCommand.Submit.commandLine(["--exec", "--", "ls", "--wait"]))
        #expect(try parsed.listedJobs().first?.kind == .exec(argv: ["ls", "--wait"]))
        #expect(!parsed.wait)
    }

    @Test("expands the primes preset and parses listed jobs")
    func listedJobs() throws {
        let submit = try ConcurctlCommand.Submit.parse(["primes", "sleep:5"])
        let jobs = try submit.listedJobs()
        #expect(jobs.count == 21)
        #expect(jobs.last == JobSpec(.sleep(milliseconds: 5)))
    }

    @Test("builds exec, forced crash and timed jobs")
    func specialJobs() throws {
        let exec = try ConcurctlCommand.Submit.parse(
            ConcurctlCommand.Submit.commandLine(["--exec", "--timeout", "2", "--cwd", "/srv", "--", "ls", "-l", "/tmp"]))
        #expect(
            try exec.listedJobs() == [
                JobSpec(.exec(argv: ["ls", "-l", "/tmp"]), timeout: 2, command: CommandContext(directory: "/srv"))
            ])
        let here = try ConcurctlCommand.Submit.parse(
            ConcurctlCommand.Submit.commandLine(["--exec", "--env", "A=1", "--clear-env", "--at-most-once", "--", "env"]))
        let spec = try #require(try here.listedJobs().first)
        #expect(
            spec.command
                == CommandContext(
                    directory: ConcurctlCommand.Submit.currentDirectory(), environment: ["A=1"], clearsEnvironment: true))
        #expect(spec.delivery == .atMostOnce)
        let crash = try ConcurctlCommand.Submit.parse(["crash", "--force"])
        #expect(try crash.listedJobs() == [JobSpec(.crash(forced: true))])
    }

    @Test("reads delays with units and times in local time, with Z or with an offset")
    func startTimes() throws {
        for (text, seconds) in [("90", 90.0), ("0.5", 0.5), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172_800)] {
            #expect(StartTime.seconds(ofDelay: text) == seconds, "\(text)")
        }
        for wrong in ["", "m", "5x", "1h30", "1.2.3s", "-"] { #expect(StartTime.seconds(ofDelay: wrong) == nil, "\(wrong)") }
        #expect(StartTime.unixTime(of: "2026-12-01T18:00Z") == 1_796_148_000)
        #expect(StartTime.unixTime(of: "2026-12-01 18:00:30+01:00") == 1_796_144_430.0)
        #expect(StartTime.unixTime(of: "2026-12-01T18:00-0530") == 1_796_167_800.0)
        // Local time: mktime with the zone of the environment (TZ).
        setenv("TZ", "America/New_York", 1)
        tzset()
        defer {
            unsetenv("TZ")
            tzset()
        }
        #expect(StartTime.unixTime(of: "2026-12-01T18:00") == 1_796_166_000.0)
        #expect(StartTime.localText(1_796_148_000 + 5 * 3600) == "2026-12-01 18:00:00")
        // In the past, or more than a year ahead: refused with how far.
        let now = 1_796_148_000.0
        #expect {
            try StartTime.unixTime(at: "2026-12-01T17:00Z", now: now)
        } throws: { ($0 as? ClientFailure)?.message.contains("lies 1h00m in the past") == true }
        #expect {
            try StartTime.unixTime(at: "2028-12-01T17:00Z", now: now)
        } throws: { ($0 as? ClientFailure)?.message.contains("more than a year ahead") == true }
        #expect(try StartTime.unixTime(at: "2026-12-01T19:00Z", now: now) == now + 3600)
        // A time of day alone: its next one, today or tomorrow (now is 13:00 in New York).
        #expect(try StartTime.unixTime(at: "14:30", now: now) == now + 5400)
        #expect(try StartTime.unixTime(at: "12:59:30", now: now) == now + 86_400 - 30)
        for wrong in ["24:00", "9:30", "12:60", "12:30:61", "12"] {
            #expect(StartTime.nextOccurrence(ofTimeOfDay: wrong, after: now) == nil, "\(wrong)")
        }
    }

    @Test("gives listed and generated jobs the priority, the start and the jobs to run after")
    func placedJobs() throws {
        let submit = try ConcurctlCommand.Submit.parse(["sleep:5", "fail", "--priority", "7", "--delay", "1m", "--after", "4, 9"])
        let jobs = try submit.listedJobs(now: 1_800_000_000)
        let placement = JobPlacement(priority: 7, startAt: 1_800_000_060, after: [4, 9])
        #expect(jobs == [JobSpec(.sleep(milliseconds: 5), placement: placement), JobSpec(.fail, placement: placement)])
    }

    @Test("says what a wrong listed job should look like")
    func wrongListedJob() throws {
        let submit = try ConcurctlCommand.Submit.parse(["prime:x"])
        #expect {
            try submit.listedJobs()
        } throws: { error in
            guard let failure = error as? ClientFailure else { return false }
            return failure.message.contains("expected prime:N") && failure.exitCode == ClientFailure.ExitStatus.usage
        }
    }
}

@Suite("concurctl's messages")
struct FailureMessageTests {
    @Test(
        "explains connection failures with a hint",
        arguments: [
            (ENOENT, "is concurd running?", ClientFailure.ExitStatus.unavailable),
            (ECONNREFUSED, "nothing listens", ClientFailure.ExitStatus.unavailable),
            (EACCES, "try sudo", ClientFailure.ExitStatus.permission),
        ])
    func connection(code: Int32, hint: String, exitCode: Int32) {
        let failure = ClientFailure.from(.connectFailed(path: "/x.sock", errno: code), socket: "/x.sock")
        #expect(failure.message.contains(hint) && failure.message.contains("/x.sock"))
        #expect(failure.exitCode == exitCode)
    }

    @Test(
        "explains each error reply",
        arguments: [
            (SupervisorError.queueFull(limit: 10, queued: 9), "the queue has no room for these jobs (9 of its 10 places taken)"),
            (SupervisorError.shuttingDown, "shutting down"),
            (SupervisorError.invalidWorkers(min: 1, max: 256), "between 1 and 256"),
            (SupervisorError.noSuchJob(42), "no job 42"),
            (SupervisorError.invalidValue(parameter: "count", reason: "too big"), "count: too big"),
            (VarlinkError.permissionDenied, "only root and the user running concurd"),
            (VarlinkError.invalidParameter("x"), "parameter 'x'"), (VarlinkError.methodNotFound("a.B"), "does not know a.B"),
            (VarlinkError("org.example.Other"), "org.example.Other"), (SupervisorError.execDisabled, "--allow-exec"),
            (SupervisorError.crashRefused(model: .threads), "under the threads model"),
            (SupervisorError.modelUnavailable(model: .processes, reason: "no luck"), "cannot run the processes model: no luck"),
            (SupervisorError.switchSuperseded(by: .tasks), "another switch, to the tasks model"),
            (SupervisorError.journalUnavailable(reason: "disk full"), "cannot record jobs in its journal: disk full"),
            (SupervisorError.jobFinished(7, state: .failed), "job 7 has already ended (failed)"),
        ])
    func remote(error: VarlinkError, text: String) {
        #expect(ClientFailure.from(error).message.contains(text))
    }

    @Test("a stream cut off for falling behind is not called a wrong argument")
    func cutOff() {
        let failure = ClientFailure.from(
            SupervisorError.invalidValue(parameter: "more", reason: "the client fell too far behind"))
        #expect(failure.exitCode == ClientFailure.ExitStatus.unavailable && failure.message.contains("cut this stream off"))
        #expect(
            ClientFailure.from(SupervisorError.invalidValue(parameter: "ids", reason: "x")).exitCode
                == ClientFailure.ExitStatus.refused)
    }
}

@Suite("concurctl's human output")
struct RenderingTests {
    let status = PoolStatus(
        version: "0.1.0", pid: 42, uptimeSeconds: 192, model: .threads, phase: .serving,
        workers: WorkerCounts(target: 4, live: 4, busy: 1, idle: 3, retiring: 0), queued: 7, running: 1, maxQueue: 100,
        totals: JobTotals(submitted: 10, done: 2, failed: 0, cancelled: 0, retried: 0))

    @Test("status shows model, workers, queue and totals")
    func statusLines() {
        #expect(
            Rendering.status(status) == [
                "concurd 0.1.0, pid 42, up 3m12s: serving", "model     threads",
                "workers   4 live (1 busy, 3 idle, 0 retiring), target 4", "queue     7 queued, 1 running (limit 100)",
                "jobs      10 submitted: 2 done, 0 failed, 0 cancelled; 0 retried",
            ])
    }

    @Test("a node of a shared queue counts the jobs it claimed, not submitted; a name is shown escaped")
    func sharedNodeLines() throws {
        var node = status
        node.node = "b"
        #expect(
            Rendering.status(node).last
                == "jobs      10 claimed by node b from the shared queue: 2 done, 0 failed, 0 cancelled; 0 retried")
        node.node = "b\u{1b}[2J"
        #expect(Rendering.status(node).last?.contains("node b\\e[2J from") == true)
        // Read back from JSON, and absent from a daemon with its own queue.
        #expect(try PoolStatus(json: node.json, path: "status").node == node.node)
        #expect(try PoolStatus(json: status.json, path: "status").node == nil)
        guard case .object(var wrong) = node.json else {
            Issue.record("status is not an object")
            return
        }
        wrong["node"] = .int(3)
        #expect(throws: VarlinkError.self) { try PoolStatus(json: .object(wrong), path: "status") }
    }

    @Test("status names the switches and a handover under way; stats times the last switch")
    func switchLines() {
        var switching = status
        switching.switches = 3
        switching.handingOver = 2
        #expect(
            Rendering.status(switching)[1] == "model     threads, 3 switches since start; 2 workers of the old model finishing")
        let record = ModelSwitch(
            from: .processes, to: .threads, preempt: true, requestedAt: 0, servingAfter: 0.0012, firstJobAfter: 0.0015)
        #expect(
            Rendering.lastSwitch(record)
                == "switch    processes -> threads (preempting): serving after 1.2 ms, first job after 1.5 ms, old workers still finishing"
        )
    }

    @Test("jobs are a table with wait, run and the result")
    func jobLines() {
        let job = JobInfo(
            id: 3, spec: JobSpec(.prime(n: 97)), state: .done, attempts: 1, submittedAt: 100, startedAt: 100.5,
            finishedAt: 100.502,
            worker: 2, model: .threads, result: JobResult(summary: "prime", prime: true))
        let lines = Rendering.jobs([job])
        #expect(lines.count == 2)
        #expect(
            lines[1].contains("prime(97)") && lines[1].contains("500 ms") && lines[1].contains("2 ms")
                && lines[1].hasSuffix("prime"))
        #expect(Rendering.finishedJob(job) == "job 3 prime(97): done in 2 ms on worker 2: prime")
        #expect(Rendering.jobs([]) == ["no jobs"])
    }

    @Test("a scheduled job shows when it starts, a waiting one what it waits for, each with its priority by id")
    func placedJobLines() {
        setenv("TZ", "UTC", 1)
        tzset()
        defer {
            unsetenv("TZ")
            tzset()
        }
        let scheduled = JobInfo(
            id: 4, spec: JobSpec(.fail, placement: JobPlacement(priority: 2, startAt: 1_796_148_000)), state: .scheduled,
            attempts: 0, submittedAt: 100)
        var waiting = JobInfo(
            id: 5, spec: JobSpec(.fail, placement: JobPlacement(after: [1, 3])), state: .waiting, attempts: 0, submittedAt: 100)
        waiting.waitingFor = [3]
        let lines = Rendering.jobs([scheduled, waiting])
        #expect(lines[1].contains("scheduled") && lines[1].hasSuffix("starts 2026-12-01 18:00:00"), "\(lines)")
        #expect(lines[2].contains("waiting") && lines[2].hasSuffix("after 3"), "\(lines)")
        #expect(
            Rendering.jobDetails([scheduled, waiting]) == [
                "job 4 has priority 2", "job 4 is scheduled to start at 2026-12-01 18:00:00",
                "job 5 runs after 1, 3; it waits for 3",
            ])
    }

    @Test("id lists collapse consecutive ids")
    func idRanges() {
        #expect(Rendering.idRange([1, 2, 3]) == "1-3")
        #expect(Rendering.idRange([4]) == "4")
        #expect(Rendering.idRange([1, 5]) == "1, 5")
        #expect(Rendering.idRange([3, 4, 5, 8, 9, 10, 17, 22, 41, 42, 43]) == "3-5, 8-10, 17, 22, 41-43")
        #expect(
            Rendering.idRange(Array(1...1000).filter { $0 % 3 != 0 })
                == "1-2, 4-5, 7-8, 10-11, 13-14, 16-17, 19-20, 22-23, 25-26, 28-29, ... (667 jobs)")
        #expect(Rendering.idRange([]) == "none")
    }
}

@Suite("concurctl's live views")
struct LiveViewTests {
    static func stats(
        uptime: Double, done: Int, model: ConcurrencyModel = .threads, workers: [WorkerInfo] = [], paused: Bool = false,
        phase: DaemonPhase = .serving
    ) -> PoolStats {
        let status = PoolStatus(
            version: "0.1.0", pid: 42, uptimeSeconds: uptime, model: model, phase: phase,
            workers: WorkerCounts(
                target: workers.count, live: workers.count, busy: workers.filter { $0.state == .busy }.count,
                idle: workers.filter { $0.state == .idle }.count, retiring: 0),
            queued: 5, running: 1, maxQueue: 100, totals: JobTotals(submitted: done + 6, done: done), paused: paused)
        let run = Percentiles(count: 10, p50: 0.0021, p90: 0.003, p99: 0.0125, max: 0.02)
        let latency = LatencySummary(queueWait: run, run: run, endToEnd: run)
        return PoolStats(
            status: status, throughput: Throughput(last1s: 1234, last10s: 1000, last60s: 900, history: [1, 2, 4, 8]),
            latency: latency, recentLatency: latency, workers: workers,
            process: ProcessUsage(cpuUserSeconds: 1, cpuSystemSeconds: 0.5, rssBytes: 1 << 24, threads: 9, cpuPercent: 187.4),
            resizes: 0,
            events: [PoolEvent(time: 0, kind: .resized, message: "resized from 1 to 2 workers")])
    }

    static func worker(_ id: Int, _ state: WorkerState = .busy) -> WorkerInfo {
        WorkerInfo(
            id: id, model: .threads, state: state, thread: 100 + id, job: 7, jobSeconds: 0.5, jobsDone: 3, busyFraction: 0.5)
    }

    @Test("stats --follow lines: a header, then rates measured between frames by the daemon's clock")
    func followLines() {
        var lines = FollowLines()
        let stats = Self.stats(uptime: 10, done: 100, workers: [Self.worker(1)])
        #expect(
            lines.header(for: stats)
                == "time     model        busy queued running    done/s failed    p50    p99 cpu%  note")
        let first = lines.lines(for: stats, clock: "12:00:00")
        #expect(first == ["12:00:00 threads       1/1      5       1     1,234      0  2.1ms 12.5ms  187"])
        let second = lines.lines(
            for: Self.stats(uptime: 10.5, done: 600, workers: [Self.worker(1)], paused: true), clock: "12:00:01")
        #expect(second.count == 1 && second[0].contains("     1,000 ") && second[0].hasSuffix("  paused"))
        // At 80 columns the header has no room for its note title; a note that does not fit
        // goes under its row.
        var narrow = FollowLines(width: 80)
        #expect(narrow.header(for: stats) == "time     model        busy queued running    done/s failed    p50    p99 cpu%")
        var draining = Self.stats(uptime: 10, done: 100, workers: [Self.worker(1)], paused: true)
        draining.status.phase = .draining
        draining.status.handingOver = 3
        let split = narrow.lines(for: draining, clock: "12:00:00")
        #expect(split.count == 2 && split.allSatisfy { $0.count <= 80 })
        #expect(split[1] == "         draining, paused, handover (3 finishing)")
        #expect(lines.farewell(reason: "concurd is stopping") == "-- concurd is stopping")
        _ = lines.lines(for: Self.stats(uptime: 11, done: 600, phase: .draining), clock: "12:00:02")
        #expect(lines.farewell(reason: "bye") == "-- bye (concurd was draining)")
        #expect(formatGrouped(1_234_567) == "1,234,567" && formatGrouped(12) == "12" && formatGrouped(-1_000.4) == "-1,000")
    }

    @Test("top fits the terminal: header and keys always, events give way, then the worker table is cut with a count")
    func topScreen() {
        let stats = Self.stats(uptime: 65, done: 9, workers: (1...30).map { Self.worker($0) })
        let tall = TopScreen.lines(stats: stats, width: 100, height: 60, colour: false, message: "resized to 30 workers")
        #expect(tall.count == 60 && tall.allSatisfy { $0.count <= 100 })
        #expect(tall[0].hasPrefix("concurd 0.1.0  pid 42  up 1m05s  model threads  serving"))
        #expect(tall.contains { $0.contains("recent events") } && tall.filter { $0.contains(" threads   busy") }.count == 30)
        #expect(tall.last == TopScreen.keys(current: .threads, paused: false) && tall[58] == "resized to 30 workers")
        let short = TopScreen.lines(stats: stats, width: 60, height: 16, colour: false, message: nil)
        #expect(short.count == 16 && short.allSatisfy { $0.count <= 60 })
        #expect(!short.contains { $0.contains("recent events") })
        let shown = short.filter { $0.contains(" threads   busy") }.count
        #expect(shown > 0 && short.contains("  ... \(30 - shown) more workers (enlarge the window)"))
        #expect(short.last == "keys: m ->processes  +/- worker  p pause  q quit")
        let coloured = TopScreen.lines(stats: stats, width: 100, height: 60, colour: true, message: nil)
        #expect(coloured[0].hasPrefix("\u{1B}[1m") && !tall[0].contains("\u{1B}"))
    }

    @Test("a sparkline scales to its largest value; keys cycle the models")
    func sparklineAndKeys() {
        #expect(TopScreen.sparkline([0, 1, 2, 4, 8]) == "▁▂▃▅█")
        #expect(TopScreen.sparkline([0, 0]) == "▁▁")
        #expect(TopScreen.nextModel(after: .threads) == .processes && TopScreen.nextModel(after: .tasks) == .threads)
    }

    @Test("the Prometheus text: HELP and TYPE once per family, latencies as summaries, workers by place, the same text twice")
    func prometheus() {
        var workers = [Self.worker(7), Self.worker(3)]
        workers[0].slot = 1
        workers[1].slot = 2
        let stats = Self.stats(uptime: 1, done: 9, workers: workers)
        let text = PrometheusExposition.text(stats)
        #expect(text.contains("# TYPE concur_jobs_finished_total counter"))
        #expect(text.contains(#"concur_jobs_finished_total{pool="default",outcome="done"} 9"#))
        #expect(text.contains("# TYPE concur_job_run_seconds summary"))
        #expect(text.contains(#"concur_job_run_seconds{pool="default",window="10s",quantile="0.99"} 0.0125"#))
        #expect(text.contains(#"concur_job_run_seconds_count{pool="default",window="10s"} "#))
        #expect(text.contains(#"concur_job_run_seconds_sum{pool="default",window="10s"} "#))
        #expect(text.contains("concur_cpu_percent 187.4"))
        // Worker 7 holds place 1: series by place, not by an id that grows with every replacement.
        #expect(text.contains(#"concur_worker_jobs_done_total{pool="default",slot="1"}"#))
        #expect(!text.contains("slot=\"7\"") && !text.contains("worker=\""))
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(line.split(separator: " ").count == 2, "\(line)")
        }
        let families = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }
        #expect(Set(families).count == families.count)
        #expect(PrometheusExposition.text(stats) == text)
    }

    /// The members of a JSON object.
    static func object(_ json: JSON) throws -> JSONObject {
        guard case .object(let members) = json else { throw VarlinkError.invalidParameter("not an object") }
        return members
    }

    @Test("a worker's place and a latency's sum are read back and checked")
    func placeAndSum() throws {
        var worker = Self.worker(4)
        worker.slot = 2
        #expect(try WorkerInfo(json: worker.json, path: "w").slot == 2)
        var wrong = try Self.object(worker.json)
        wrong["slot"] = .int(0)
        #expect(throws: VarlinkError.self) { try WorkerInfo(json: .object(wrong), path: "w") }
        let latency = Percentiles(count: 2, p50: 1, p90: 1, p99: 1, max: 1, sum: 2)
        #expect(try Percentiles(json: latency.json, path: "p") == latency)
        var negative = try Self.object(latency.json)
        negative["sum"] = .double(-1)
        #expect(throws: VarlinkError.self) { try Percentiles(json: .object(negative), path: "p") }
        negative["sum"] = nil
        #expect(try Percentiles(json: .object(negative), path: "p").sum == nil)
    }

    @Test("Prometheus values and labels are written as the format says")
    func prometheusFormat() {
        #expect(PrometheusText.number(23) == "23" && PrometheusText.number(0.5) == "0.5")
        #expect(PrometheusText.number(.infinity) == "+Inf" && PrometheusText.number(-.infinity) == "-Inf")
        #expect(PrometheusText.number(.nan) == "NaN")
        var text = PrometheusText()
        text.add("x", .gauge, help: "a \\ and\na line", labels: [("pool", #"a"b\c"#)], value: 1)
        #expect(text.text == "# HELP x a \\\\ and\\na line\n# TYPE x gauge\nx{pool=\"a\\\"b\\\\c\"} 1\n")
    }

    /// Stats of a daemon with a second pool, `io`, as the default pool's reply shows it.
    static func twoPools(addressing name: String = "default") -> PoolStats {
        var stats = Self.stats(uptime: 10, done: 100, workers: [Self.worker(1)])
        var io = stats.status
        io.pool = "io"
        io.model = .tasks
        io.workers = WorkerCounts(target: 64, live: 64, busy: 60, idle: 4, retiring: 0)
        io.queued = 1200
        io.totals = JobTotals(submitted: 2000, done: 700)
        io.recentRun = Percentiles(count: 5, p50: 0.1, p90: 0.1, p99: 0.15, max: 0.2)
        stats.pools = [stats.status, io]
        if name == "io" { stats.status = io }
        return stats
    }

    @Test("with several pools the Prometheus text labels each pool's figures, the process ones once")
    func prometheusPools() {
        var io = Self.twoPools(addressing: "io")
        io.process = Self.stats(uptime: 10, done: 0).process
        let text = PrometheusExposition.text([Self.twoPools(), io])
        #expect(text.contains(#"concur_queue_jobs{pool="default"} 5"#) && text.contains(#"concur_queue_jobs{pool="io"} 1200"#))
        #expect(text.contains(#"concur_model{pool="io",model="tasks"} 1"#))
        #expect(text.contains(#"concur_jobs_finished_total{pool="io",outcome="done"} 700"#))
        #expect(text.split(separator: "\n").filter { $0.hasPrefix("concur_process_threads") } == ["concur_process_threads 9"])
        #expect(text.split(separator: "\n").filter { $0.hasPrefix("# TYPE concur_queue_jobs") }.count == 1)
    }

    @Test("--host: the ssh command line quotes the remote words, and a host ssh would misread is refused")
    func remoteCommandLine() {
        let environment = ["CONCUR_SSH": "ssh -F /etc/concur ssh.conf", "CONCUR_REMOTE_CONCURCTL": "/opt/concur/bin/concurctl"]
        let argv = RemoteBridge.arguments(host: "ops@db-2", remoteArguments: ["--socket", "/run/it's here.sock"]) {
            environment[$0]
        }
        #expect(
            argv == [
                "ssh", "-F", "/etc/concur", "ssh.conf", "-T", "-e", "none", "-o", "BatchMode=yes", "--", "ops@db-2",
                #"'/opt/concur/bin/concurctl' 'bridge' '--socket' '/run/it'\''s here.sock'"#,
            ])
        #expect(RemoteBridge.arguments(host: "h", remoteArguments: []) { _ in nil }.prefix(1) == ["ssh"])
        #expect(RemoteBridge.arguments(host: "h", remoteArguments: []) { _ in "" }.last == "'concurctl' 'bridge'")
        for (host, problem) in [
            ("", "give a host"), ("-oProxyCommand=sh", "starts with '-'"), ("a b", "no blanks"), ("a\u{7}b", "no blanks"),
            (String(repeating: "h", count: 256), "at most 255 bytes"),
        ] {
            #expect(RemoteBridge.problem(with: host)?.contains(problem) == true, "\(host)")
        }
        #expect(RemoteBridge.problem(with: "ops@db-2.example.org") == nil)
    }

    @Test("status --cluster: a line per node, its pools under it, the queue by pool, in 80 columns")
    func clusterView() throws {
        let status = ClusterStatus(
            answeredBy: "web-1",
            nodes: [
                ClusterNode(
                    name: "web-1", host: "alpha", pid: 4021, version: "0.1.0", state: .running, startedAt: 0,
                    heartbeatAge: 0.42, leaseSeconds: 30,
                    pools: [
                        NodePool(pool: "default", model: .threads, workers: 2, busy: 1),
                        NodePool(pool: "io", model: .tasks, workers: 64, busy: 60, paused: true),
                    ],
                    done: 1200, failed: 3, cancelled: 1),
                ClusterNode(
                    name: "a-node-with-a-long-name", host: "a.host.with.a.long.name", pid: 77, version: "0.1.0",
                    state: .lost, startedAt: 0, heartbeatAge: 4000, leaseSeconds: 30,
                    pools: [NodePool(pool: "default", model: .processes, workers: 4, busy: 4)],
                    problem: "its \u{1b}[31mpools"),
            ],
            queue: [
                {
                    var row = ClusterQueue(pool: "default")
                    (row.queued, row.claimed, row.running, row.done) = (5, 8, 3, 123_456)
                    return row
                }()
            ])
        let lines = Rendering.cluster(status)
        #expect(
            lines == [
                "cluster: 2 nodes, 1 running (read by web-1)",
                "NODE          STATE    HOST               PID    BEAT     DONE  FAILED  CANCEL",
                "web-1         running  alpha             4021    0.4s     1200       3       1",
                "  pool default: threads, 2 workers, 1 busy",
                "  pool io: tasks, 64 workers, 60 busy, paused",
                "a-node-with-… lost     a.host.with.…       77     66m        0       0       0",
                "  warning: its \\e[31mpools",
                "queue",
                "POOL          QUEUED  SCHED CLAIMED RUNNING       DONE   FAILED   CANCEL",
                "default            5      0       8       3     123456        0        0",
            ], "\(lines.joined(separator: "\n"))")
        #expect(lines.allSatisfy { $0.count <= 80 })
        let narrow = Rendering.cluster(status, width: 60)
        #expect(narrow.allSatisfy { $0.count <= 60 } && narrow[1].hasPrefix("NODE") && narrow[2].hasSuffix("…"), "\(narrow)")
        #expect(Rendering.cluster(ClusterStatus(answeredBy: "n", nodes: [], queue: [])).last == "queue: no jobs")
        // What a newer concurd might send that this one cannot read is refused with what to do.
        #expect(throws: (any Error).self) { try ClusterStatus(json: .object(["answeredBy": "n"]), path: "reply") }
        #expect(throws: (any Error).self) {
            try NodePool(json: .object(["pool": "p", "model": "fibers", "workers": 1, "busy": 0]), path: "pool")
        }
        #expect(throws: (any Error).self) {
            try NodePool(json: .object(["pool": "p", "model": "threads", "workers": -1, "busy": 0]), path: "pool")
        }
        #expect(try ClusterStatus(json: status.json, path: "reply") == status)
    }

    @Test("status, stats --follow and top show each pool")
    func poolViews() {
        let stats = Self.twoPools()
        let status = Rendering.status(pools: stats.pools)
        #expect(status[0].hasSuffix(": serving, 2 pools"))
        #expect(status[1] == "POOL        MODEL     WORKERS BUSY  QUEUED RUNNING     DONE FAILED  STATE")
        #expect(status[2] == "default     threads         1    1       5       1      100      0  serving")
        #expect(status[3].hasPrefix("io          tasks          64   60    1200") && status[3].hasSuffix("  serving"))
        #expect(status[4].hasPrefix("jobs      2106 submitted: 800 done"))
        #expect(Rendering.status(pools: [stats.status]) == Rendering.status(stats.status))
        // A long name is cut, so the columns keep their place.
        var long = stats
        long.pools[1].pool = String(repeating: "a", count: 32)
        #expect(Rendering.status(pools: long.pools)[3].hasPrefix("aaaaaaaaaa… tasks          64"))

        var follow = FollowLines(everyPool: true)
        #expect(
            follow.header(for: stats)
                == "time     pool        model        busy queued running    done/s failed    p50    p99  note")
        let first = follow.lines(for: stats, clock: "12:00:00")
        #expect(first.count == 2)
        #expect(
            first[1].hasPrefix(
                "12:00:00 io          tasks       60/64   1200       1         0      0  100ms  150ms"), "\(first[1])"
        )
        var later = stats
        later.status.uptimeSeconds = 11
        later.pools[1].uptimeSeconds = 11
        later.pools[1].totals.done = 1200
        #expect(follow.lines(for: later, clock: "12:00:01")[1].contains("       500      0 "))
        var single = FollowLines(everyPool: false)
        #expect(single.lines(for: stats, clock: "12:00:00").count == 1)
        #expect(
            single.header(for: stats)
                == "time     model        busy queued running    done/s failed    p50    p99 cpu%  note")

        let screen = TopScreen.lines(stats: Self.twoPools(addressing: "io"), width: 120, height: 40, colour: false, message: nil)
        #expect(screen[0].contains("pool io  model tasks"))
        #expect(screen.contains { $0.hasPrefix("> io          tasks        64/64    60    1200") })
        #expect(screen.contains { $0.hasPrefix("  default     threads") })
        #expect(
            screen.last == "keys (pool io): m model (-> threads)  + add worker  - remove worker  p pause  tab next pool  q quit")
        #expect(TopScreen.nextPool(after: "io", in: stats.pools) == "default")
        #expect(TopScreen.nextPool(after: "default", in: stats.pools) == "io")
    }
}

@Suite("What concurctl does not pass to the terminal, and what a shutdown means per call")
struct ClientSafetyTests {
    @Test(
        "control characters from the daemon are shown escaped, never sent to the terminal",
        arguments: [
            ("plain text", "plain text"), ("\u{1b}[2J\u{1b}]0;owned\u{07}", "\\e[2J\\e]0;owned\\x07"),
            ("a\nb\tc\r", "a\\nb\\tc\\r"), ("\u{7f}\u{9b}31m", "\\x7f\\u{9b}31m"), ("back\\slash", "back\\\\slash"),
            ("café ünïcode", "café ünïcode"),
        ])
    func escaping(raw: String, shown: String) {
        #expect(TerminalText.escaped(raw) == shown)
    }

    @Test("a job's command line and error are escaped in every human view")
    func jobViews() {
        let job = JobInfo(
            id: 7, spec: JobSpec(.exec(argv: ["printf", "\u{1b}]2;pwned\u{07}"])), state: .failed, attempts: 1,
            submittedAt: 1, error: "the command \u{1b}[31mfailed")
        let lines = Rendering.jobs([job]) + [Rendering.finishedJob(job)]
        for line in lines {
            #expect(!line.unicodeScalars.contains { $0.value == 0x1b || $0.value == 0x07 }, "\(line)")
        }
        #expect(Rendering.finishedJob(job).contains("exec(printf \\e]2;pwned\\x07)"))
        #expect(Rendering.finishedJob(job).contains("the command \\e[31mfailed"))
        var status = PoolStatus(
            version: "0", pid: 1, uptimeSeconds: 1, model: .threads, phase: .degraded,
            workers: WorkerCounts(target: 1, live: 1, busy: 0, idle: 1, retiring: 0), queued: 0, running: 0, maxQueue: 1,
            totals: JobTotals())
        status.warnings = ["disk \u{1b}[5mfull"]
        #expect(Rendering.status(status).last == "warning   disk \\e[5mfull")
    }

    @Test(
        "ShuttingDown says what it means for the call that got it",
        arguments: [
            (SupervisorInterface.Method.setModel, "the switch did not complete"),
            (.submit, "accepts no new jobs; submit again"), (.generate, "accepts no new jobs"),
            (.resize, "nothing was changed"), (.pause, "nothing was changed"),
        ])
    func shuttingDown(method: SupervisorInterface.Method, text: String) {
        let message = ClientFailure.from(SupervisorError.shuttingDown, method: method).message
        #expect(message.contains(text), "\(message)")
        if method == .setModel { #expect(!message.contains("submit")) }
    }
}
