package import ConcurProtocol

/// SplitMix64: a tiny, fast, well-mixed generator whose output depends only on the seed, so a
/// seeded workload is identical across runs, models, machines and Swift versions.
package struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator started from `seed`.
    package init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A double uniform in [0, 1), from the top 53 bits.
    package mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }
}

/// Generates seeded workloads: the jobs of `Generate` and of `concurd run`.
package enum WorkloadGenerator {
    /// The jobs of `request`, using `seed` (the request's own seed is ignored here so that the
    /// caller decides how a missing seed is chosen), each with the request's time limit and placement.
    package static func jobs(for request: WorkloadRequest, seed: UInt64) -> [JobSpec] {
        var random = SplitMix64(seed: seed)
        var jobs: [JobSpec] = []
        jobs.reserveCapacity(request.count)
        // One spec changed per job: every job shares its options (one allocation, not one each).
        var spec = JobSpec(.fail, timeout: request.timeout, placement: request.placement)
        for _ in 0..<request.count {
            spec.kind = job(of: request.kind, scale: request.scale, random: &random)
            jobs.append(spec)
        }
        return jobs
    }

    /// One job of `kind`.
    static func job(of kind: GeneratedKind, scale: Double, random: inout SplitMix64) -> JobKind {
        switch kind {
        case .cpu:
            return .cpu(size: scale * (0.5 + random.nextUnit()))
        case .prime:
            return .prime(n: 1_000_000_000_000_000 + random.next() % 9_000_000_000_000_000)
        case .sleep:
            return .sleep(milliseconds: Int((scale * (50 + 100 * random.nextUnit())).rounded(.down)))
        case .mixed:
            let pick: [GeneratedKind] = [.cpu, .prime, .sleep]
            return job(of: pick[Int(random.next() % 3)], scale: scale, random: &random)
        }
    }

    /// A seed for a request that did not give one.
    package static func randomSeed() -> UInt64 {
        var system = SystemRandomNumberGenerator()
        return system.next() >> 1  // Varlink ints are signed: keep seeds positive
    }
}
