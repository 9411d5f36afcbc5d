import ConcurClient
import ConcurProtocol
import Glibc
import Testing
import Varlink

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
        ])
    func refuses(arguments: [String]) {
        #expect(throws: (any Error).self) { try ConcurctlCommand.parseAsRoot(arguments) }
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
        let exec = try ConcurctlCommand.Submit.parse(["--exec", "--timeout", "2", "--", "ls", "-l", "/tmp"])
        #expect(try exec.listedJobs() == [JobSpec(.exec(argv: ["ls", "-l", "/tmp"]), timeout: 2)])
        let crash = try ConcurctlCommand.Submit.parse(["crash", "--force"])
        #expect(try crash.listedJobs() == [JobSpec(.crash(forced: true))])
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
            (SupervisorError.queueFull(limit: 10, queued: 9), "the queue is full (9 of 10 jobs waiting)"),
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
        ])
    func remote(error: VarlinkError, text: String) {
        #expect(ClientFailure.from(error).message.contains(text))
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
                "workers   4 live (1 busy, 3 idle, 0 retiring), target 4", "queue     7 waiting, 1 running (limit 100)",
                "jobs      10 submitted: 2 done, 0 failed, 0 cancelled; 0 retried",
            ])
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

    @Test("id lists collapse consecutive ids")
    func idRanges() {
        #expect(Rendering.idRange([1, 2, 3]) == "1-3")
        #expect(Rendering.idRange([4]) == "4")
        #expect(Rendering.idRange([1, 5]) == "1, 5")
    }
}
