import ConcurCore
import ConcurProtocol
import Testing

@Suite("Workloads")
struct WorkloadTests {
    let flag = CancellationFlag()

    @Test(
        "finds the primes of the classic preset",
        arguments: [
            2, 142_702_110_479_723, 299_593_572_317_531, 3_333_333_333_333_301, 4_444_444_444_444_423, 5_555_555_555_555_503,
            6_666_666_666_666_719, 7_777_777_777_777_753, 9_999_999_999_999_917,
        ] as [UInt64])
    func primes(n: UInt64) {
        #expect(Workload.smallestFactor(of: n, cancellation: flag) == n)
        #expect(Workload.run(.prime(n: n), cancellation: flag) == .done(JobResult(summary: "prime", prime: true)))
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
        guard case .done(let result) = Workload.run(.prime(n: n), cancellation: flag) else {
            Issue.record("not done")
            return
        }
        #expect(result.prime == false)
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
        #expect(Workload.run(.cpu(size: 1), cancellation: raised) == .cancelled(Workload.cancelReason))
    }

    @Test("a sleep ends early when its flag is raised")
    func sleepCancel() {
        let flag = CancellationFlag()
        let start = MonotonicClock.now()
        Task.detached {
            try? await Task.sleep(for: .milliseconds(20))
            flag.raise()
        }
        #expect(Workload.run(.sleep(milliseconds: 60_000), cancellation: flag) == .cancelled(Workload.cancelReason))
        #expect(MonotonicClock.now() - start < 30_000_000_000)
    }

    @Test("fail jobs fail with a reason")
    func fail() {
        guard case .failed(let reason) = Workload.run(.fail, cancellation: flag) else {
            Issue.record("did not fail")
            return
        }
        #expect(reason.contains("on purpose"))
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
            guard case .cpu(let size) = job else {
                Issue.record("not cpu: \(job)")
                continue
            }
            #expect(size >= 1.0 && size < 3.0)
        }
        #expect(
            WorkloadGenerator.jobs(for: WorkloadRequest(count: 3, kind: .cpu, scale: 0), seed: 1)
                == Array(repeating: .cpu(size: 0), count: 3))
    }

    @Test("the first values of seed 1 never change (they are part of the seed contract)")
    func stable() {
        var random = SplitMix64(seed: 1)
        #expect(random.next() == 0x910A_2DEC_8902_5CC1)
        let jobs = WorkloadGenerator.jobs(for: WorkloadRequest(count: 2, kind: .prime), seed: 1)
        #expect(jobs.count == 2)
        for job in jobs {
            guard case .prime(let n) = job else { continue }
            #expect(n >= 1_000_000_000_000_000 && n < 10_000_000_000_000_000)
        }
    }

    @Test("mixed workloads mix the three kinds")
    func mixed() {
        let names = Set(WorkloadGenerator.jobs(for: WorkloadRequest(count: 60, kind: .mixed), seed: 3).map(\.name))
        #expect(names == ["cpu", "prime", "sleep"])
    }
}
