package import ConcurCore
import ConcurProtocol
import Glibc

/// The job bodies. Written once, they run unchanged under every model; CPU-bound bodies check
/// the cancellation flag between chunks of about a millisecond, never per iteration.
package enum Workload {
    /// Iterations of the `cpu` mixing loop per unit of size: about 0.1 s of one core on the
    /// reference machine (2.7 ns per iteration).
    package static let cpuIterationsPerUnit: Double = 37_500_000

    /// Iterations between two looks at the cancellation flag.
    static let chunk: UInt64 = 1 << 18

    /// Runs a job to its outcome on the calling thread. `sleep` blocks the thread (the tasks
    /// model waits its own way); `crash` aborts the process only where `crashAllowed` (a child
    /// worker) or the job is forced, and fails otherwise.
    package static func run(_ job: Job, cancellation: CancellationFlag, crashAllowed: Bool) -> JobOutcome {
        switch job.kind {
        case .cpu(let size):
            guard let checksum = cpu(size: size, cancellation: cancellation) else {
                return .cancelled(JobOutcome.interruptedReason)
            }
            return .done(.checksum(checksum))
        case .prime(let n):
            guard let factor = smallestFactor(of: n, cancellation: cancellation) else {
                return .cancelled(JobOutcome.interruptedReason)
            }
            return .done(.primality(n: n, factor: factor))
        case .sleep(let milliseconds):
            if cancellation.sleep(nanoseconds: UInt64(milliseconds) * 1_000_000) {
                return .cancelled(JobOutcome.interruptedReason)
            }
            return .done(.slept(milliseconds: milliseconds))
        case .fail:
            return .failed("fail job: failed on purpose (fault injection)")
        case .crash(let forced):
            guard crashAllowed || forced else { return .failed(crashRefusedReason) }
            abort()
        case .exec(let argv):
            return CommandRunner.run(
                argv, context: job.spec.command,
                outputFolder: CommandOutput.directory.map { CommandOutput.folder(of: job.id, in: $0) },
                rerun: job.attempts > 1, timeLimit: job.spec.timeout, cancellation: cancellation)
        }
    }

    /// Why an unforced `crash` job is not run by a worker that shares the daemon's process.
    package static let crashRefusedReason =
        "refused: a crash job would abort the daemon itself outside the processes model (submit it with force to run it anyway)"

    /// A fixed amount of work proportional to `size`: a multiply-xorshift chain, whose final
    /// value is the checksum. Nil if cancelled.
    package static func cpu(size: Double, cancellation: CancellationFlag) -> UInt64? {
        var work = CPUChain(size: size)
        while true {
            if let checksum = work.advance() { return checksum }
            if cancellation.isRaised { return nil }
        }
    }

    @inline(__always)
    static func mix(_ start: UInt64, count: UInt64) -> UInt64 {
        var state = start
        var index: UInt64 = 0
        while index < count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            state ^= state >> 31
            index &+= 1
        }
        return state
    }

    /// The smallest factor of `n` greater than 1 by trial division over odd divisors up to
    /// isqrt(n): `n` itself when prime, 1 for n < 2. Nil if cancelled.
    package static func smallestFactor(of n: UInt64, cancellation: CancellationFlag) -> UInt64? {
        var work = TrialDivision(n: n)
        while true {
            if let factor = work.advance() { return factor }
            if cancellation.isRaised { return nil }
        }
    }

    /// The integer square root: the largest r with r * r <= n.
    package static func isqrt(_ n: UInt64) -> UInt64 {
        let largest: UInt64 = 0xFFFF_FFFF  // its square is the largest square below 2^64
        var root = min(UInt64(Double(n).squareRoot()), largest)
        while root * root > n { root -= 1 }
        while root < largest && (root + 1) * (root + 1) <= n { root += 1 }
        return root
    }
}

/// A `cpu` job's work, done a chunk at a time so its runner can look at the cancellation flag
/// (or yield, in a task) between chunks.
struct CPUChain {
    private var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    private var done: UInt64 = 0
    private let iterations: UInt64

    init(size: Double) {
        iterations = UInt64(max(0, size) * Workload.cpuIterationsPerUnit)
    }

    /// Does one chunk; the checksum once the chain is complete.
    @inline(__always)
    mutating func advance() -> UInt64? {
        guard done < iterations else { return state }
        let end = min(iterations, done &+ Workload.chunk)
        state = Workload.mix(state, count: end &- done)
        done = end
        return done < iterations ? nil : state
    }
}

/// A `prime` job's trial division, a chunk of divisors at a time.
struct TrialDivision {
    private let n: UInt64
    private let limit: UInt64
    private var divisor: UInt64 = 3

    init(n: UInt64) {
        self.n = n
        limit = Workload.isqrt(n)
    }

    /// Tries one chunk of divisors; the smallest factor once it is known.
    mutating func advance() -> UInt64? {
        if n < 2 { return 1 }
        if n % 2 == 0 { return 2 }
        // `divisor` stays odd.
        let chunkEnd = min(limit, divisor &+ 2 &* Workload.chunk)
        while divisor <= chunkEnd {
            if n % divisor == 0 { return divisor }
            divisor &+= 2
        }
        return divisor > limit ? n : nil
    }
}
