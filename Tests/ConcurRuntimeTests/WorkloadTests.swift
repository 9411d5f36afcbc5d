import ConcurCore
import ConcurProtocol
import ConcurRuntime
import ConcurTestSupport
import Foundation
import Testing

@Suite("Workloads")
struct WorkloadTests {
    let flag = CancellationFlag()

    func run(_ kind: JobKind, flag: CancellationFlag? = nil, crashAllowed: Bool = false) -> JobOutcome {
        Workload.run(Job(id: 1, spec: JobSpec(kind), submittedAt: 0), cancellation: flag ?? self.flag, crashAllowed: crashAllowed)
    }

    @Test(
        "finds the primes of the classic preset",
        arguments: [
            2, 142_702_110_479_723, 299_593_572_317_531, 3_333_333_333_333_301, 4_444_444_444_444_423, 5_555_555_555_555_503,
            6_666_666_666_666_719, 7_777_777_777_777_753, 9_999_999_999_999_917,
        ] as [UInt64])
    func primes(n: UInt64) {
        #expect(Workload.smallestFactor(of: n, cancellation: flag) == n)
        #expect(run(.prime(n: n)) == .done(.primality(n: n, factor: n)))
    }

    @Test(
        "finds the smallest factor of composites",
        arguments: [
            (3_333_333_333_333_333, 3), (3_333_335_652_092_209, 57_735_047), (4_444_444_444_444_444, 2),
            (4_444_444_488_888_889, 66_666_667), (5_555_553_133_149_889, 74_535_583), (5_555_555_555_555_555, 5),
            (6_666_666_666_666_666, 2), (6_666_667_141_414_921, 81_649_661), (7_777_777_536_340_681, 88_191_709),
            (7_777_777_777_777_777, 7), (9_999_999_999_999_999, 3), (9, 3), (25, 5), (49, 7),
        ] as [(UInt64, UInt64)])
    func composites(n: UInt64, factor: UInt64) {
        #expect(Workload.smallestFactor(of: n, cancellation: flag) == factor)
    }

    @Test("the preset holds nine primes")
    func presetCount() {
        let primes = JobKind.primesPreset.filter {
            guard case .prime(let n) = $0 else { return false }
            return Workload.smallestFactor(of: n, cancellation: flag) == n
        }
        #expect(primes.count == 9)
    }

    @Test("treats 0 and 1 as not prime", arguments: [0, 1] as [UInt64])
    func belowTwo(n: UInt64) {
        guard case .done(let output) = run(.prime(n: n)) else {
            Issue.record("not done")
            return
        }
        #expect(output.result.prime == false)
    }

    @Test(
        "computes exact integer square roots",
        arguments: [0, 1, 3, 4, 15, 16, 17, 1 << 52, 0xFFFF_FFFE_0000_0001, 0xFFFF_FFFE_0000_0000, UInt64.max] as [UInt64])
    func isqrt(n: UInt64) {
        let root = Workload.isqrt(n)
        #expect(root.multipliedReportingOverflow(by: root).overflow == false)
        #expect(root * root <= n)
        let next = root + 1
        let (square, overflow) = next.multipliedReportingOverflow(by: next)
        #expect(overflow || square > n)
    }

    @Test("cpu work gives the same checksum every time, and none when cancelled")
    func cpu() {
        let first = Workload.cpu(size: 0.01, cancellation: flag)
        #expect(first != nil)
        #expect(first == Workload.cpu(size: 0.01, cancellation: flag))
        #expect(first != Workload.cpu(size: 0.02, cancellation: flag))
        let raised = CancellationFlag()
        raised.raise()
        #expect(Workload.cpu(size: 1, cancellation: raised) == nil)
        #expect(Workload.smallestFactor(of: 9_999_999_999_999_917, cancellation: raised) == nil)
        #expect(run(.cpu(size: 1), flag: raised) == .cancelled(JobOutcome.interruptedReason))
    }

    @Test("a sleep ends early when its flag is raised")
    func sleepCancel() {
        let flag = CancellationFlag()
        let start = MonotonicClock.now()
        raise(flag, after: 0.02)
        #expect(run(.sleep(milliseconds: 60_000), flag: flag) == .cancelled(JobOutcome.interruptedReason))
        #expect(MonotonicClock.now() - start < 30_000_000_000)
    }

    @Test("fail jobs fail with a reason")
    func fail() {
        guard case .failed(let reason, _) = run(.fail) else {
            Issue.record("did not fail")
            return
        }
        #expect(reason.contains("on purpose"))
    }

    @Test("an unforced crash job is refused where it would abort the daemon")
    func crashRefused() {
        #expect(run(.crash(forced: false)) == .failed(Workload.crashRefusedReason))
    }

    @Test("exec runs a command and keeps its exit status, time and the tail of its output")
    func exec() {
        guard case .done(let output) = run(.exec(argv: ["sh", "-c", "echo out; echo err >&2"])) else {
            Issue.record("not done")
            return
        }
        #expect(output.result.exitCode == 0 && output.result.output == "out\nerr\n")
        guard case .failed(let reason, let failed) = run(.exec(argv: ["sh", "-c", "exit 3"])) else {
            Issue.record("did not fail")
            return
        }
        #expect(reason == "the command exited with status 3" && failed?.result.exitCode == 3)
        guard case .failed(let missing, _) = run(.exec(argv: ["/nonexistent/command"])) else {
            Issue.record("did not fail")
            return
        }
        #expect(missing.contains("cannot run /nonexistent/command"))
        let long = String(repeating: "x", count: 10_000)
        guard case .done(let tail) = run(.exec(argv: ["printf", long + "END"])) else {
            Issue.record("not done")
            return
        }
        #expect(tail.result.output?.count == CommandRunner.outputTail && tail.result.output?.hasSuffix("END") == true)
    }

    @Test("a command that exits while a process it started holds its output open: it ends with its output, the rest is killed")
    func execLeavesChild() {
        let start = MonotonicClock.now()
        guard case .done(let output) = run(.exec(argv: ["sh", "-c", "sleep 28.75 & printf 'last words'"])) else {
            Issue.record("not done")
            return
        }
        #expect(output.result.output == "last words" && output.result.exitCode == 0)
        #expect(MonotonicClock.now() - start < 10_000_000_000, "it did not wait for the background sleep")
        #expect(eventually(2) { livingProcesses(commandLine: ["sleep", "28.75"]).isEmpty })
    }

    @Test("a command cancelled before it was spawned never starts")
    func execCancelledFirst() throws {
        let marker = "/tmp/concur-never-\(getpid())-\(MonotonicClock.now())"
        let cancelled = CancellationFlag()
        cancelled.raise()
        let job = Job(id: 1, spec: JobSpec(.exec(argv: ["touch", marker])), submittedAt: 0)
        #expect(Workload.run(job, cancellation: cancelled, crashAllowed: false) == .cancelled(JobOutcome.interruptedReason))
        #expect(access(marker, F_OK) != 0, "the command ran")
    }

    @Test("exec kills its whole process group at the time limit and on cancel")
    func execStops() throws {
        let start = MonotonicClock.now()
        // A duration no other test's commands use: tests run in parallel, and the end-to-end
        // ones run `sleep 30` of their own.
        let job = Job(
            id: 1, spec: JobSpec(.exec(argv: ["sh", "-c", "sleep 29.25 & sleep 29.25; wait"]), timeout: 0.3), submittedAt: 0)
        guard case .failed(let reason, let output) = Workload.run(job, cancellation: flag, crashAllowed: false) else {
            Issue.record("did not fail")
            return
        }
        #expect(reason == "exceeded its time limit of 0.3 s")
        #expect(output?.result.signal == Int(SIGTERM))
        #expect(MonotonicClock.now() - start < 5_000_000_000)
        // No `sleep 29.25` survives: the group was killed, the background child included (a
        // process sent SIGKILL is gone a moment later, not at once).
        #expect(eventually(2) { livingProcesses(commandLine: ["sleep", "29.25"]).isEmpty })
        let cancel = CancellationFlag()
        raise(cancel, after: 0.1)
        #expect(run(.exec(argv: ["sleep", "30"]), flag: cancel) == .cancelled(JobOutcome.interruptedReason))
    }
}

@Suite("Seeded generation")
struct GeneratorTests {
    @Test("the same seed gives the same jobs, another seed others", arguments: GeneratedKind.allCases)
    func deterministic(kind: GeneratedKind) {
        let request = WorkloadRequest(count: 50, kind: kind)
        let a = WorkloadGenerator.jobs(for: request, seed: 7)
        #expect(a == WorkloadGenerator.jobs(for: request, seed: 7))
        #expect(a != WorkloadGenerator.jobs(for: request, seed: 8))
        #expect(a.count == 50)
    }

    @Test("cpu sizes fall in [0.5, 1.5) times the scale")
    func cpuRange() {
        for job in WorkloadGenerator.jobs(for: WorkloadRequest(count: 1000, kind: .cpu, scale: 2), seed: 1) {
            guard case .cpu(let size) = job.kind else {
                Issue.record("not cpu: \(job)")
                continue
            }
            #expect(size >= 1.0 && size < 3.0)
        }
        #expect(
            WorkloadGenerator.jobs(for: WorkloadRequest(count: 3, kind: .cpu, scale: 0), seed: 1)
                == Array(repeating: JobSpec(.cpu(size: 0)), count: 3))
        #expect(WorkloadGenerator.jobs(for: WorkloadRequest(count: 2, timeout: 4), seed: 1).allSatisfy { $0.timeout == 4 })
    }

    @Test("the first values of seed 1 never change (they are part of the seed contract)")
    func stable() {
        var random = SplitMix64(seed: 1)
        #expect(random.next() == 0x910A_2DEC_8902_5CC1)
        let jobs = WorkloadGenerator.jobs(for: WorkloadRequest(count: 2, kind: .prime), seed: 1)
        #expect(jobs.count == 2)
        for job in jobs {
            guard case .prime(let n) = job.kind else { continue }
            #expect(n >= 1_000_000_000_000_000 && n < 10_000_000_000_000_000)
        }
    }

    @Test("mixed workloads mix the three kinds")
    func mixed() {
        let names = Set(WorkloadGenerator.jobs(for: WorkloadRequest(count: 60, kind: .mixed), seed: 3).map(\.kind.name))
        #expect(names == ["cpu", "prime", "sleep"])
    }
}

/// Processes (not zombies) whose command line is exactly `arguments`.
func livingProcesses(commandLine arguments: [String]) -> [Int32] {
    let expected = Data(arguments.joined(separator: "\0").utf8 + [0])
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { entry in
        guard let pid = Int32(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else {
            return nil
        }
        return data == expected ? pid : nil
    }
}

/// Raises `flag` from an OS thread after `seconds`. (A task would wait for a free thread of the
/// cooperative pool, which synchronous tests keep busy.)
func raise(_ flag: CancellationFlag, after seconds: Double) {
    try? OSThread.start(name: "test-raiser") {
        usleep(UInt32(seconds * 1e6))
        flag.raise()
    }
}
