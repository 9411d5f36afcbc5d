package import ConcurProtocol

/// A job's id: consecutive from 1, unique for the daemon's lifetime.
package typealias JobID = UInt64

/// A worker's id: consecutive from 1, never reused, whatever the model.
package typealias WorkerID = Int

/// A job on its way through the queue to a worker.
package struct Job: Sendable, Equatable {
    /// The job's id.
    package let id: JobID
    /// What it does and its time limit.
    package let spec: JobSpec
    /// Attempts already started (0 for a fresh job).
    package var attempts: Int
    /// When it was accepted (monotonic nanoseconds).
    package let submittedAt: UInt64
    /// Attempts a preempting model switch interrupted: they do not count against the limit of
    /// attempts (the pool's business only; not sent to child workers).
    package var preemptions: Int
    /// Attempts that failed on their own and were retried by the job's retry policy: they do
    /// not count against the limit of attempts after worker deaths either (not sent to child
    /// workers).
    package var failures: Int

    /// A job with the given fields.
    package init(id: JobID, spec: JobSpec, attempts: Int = 0, submittedAt: UInt64, preemptions: Int = 0, failures: Int = 0) {
        self.id = id
        self.spec = spec
        self.attempts = attempts
        self.submittedAt = submittedAt
        self.preemptions = preemptions
        self.failures = failures
    }

    /// Attempts that count against the limit: those no switch interrupted and no retry followed.
    package var countedAttempts: Int { attempts - preemptions - failures }

    /// What the job does.
    package var kind: JobKind { spec.kind }
}

/// What a job produced, kept compact: the text shown to people is made only when asked for,
/// so a million no-op jobs cost no string.
package enum JobOutput: Sendable, Equatable {
    /// `cpu`: the checksum of the work.
    case checksum(UInt64)
    /// `prime`: the number and its smallest factor (the number itself when prime, 1 below 2).
    case primality(n: UInt64, factor: UInt64)
    /// `sleep`: the time waited.
    case slept(milliseconds: Int)
    /// `exec`: how the command ended, how long it ran, and the tail of its output.
    case command(exitCode: Int?, signal: Int?, seconds: Double, output: String)

    /// The output as the control interface shows it.
    package var result: JobResult {
        switch self {
        case .checksum(let checksum):
            return JobResult(summary: "checksum 0x\(String(checksum, radix: 16))", checksum: checksum)
        case .primality(let n, let factor):
            if n < 2 { return JobResult(summary: "not prime (below 2)", prime: false) }
            if factor == n { return JobResult(summary: "prime", prime: true) }
            return JobResult(summary: "composite (divisible by \(factor))", prime: false, factor: factor)
        case .slept(let milliseconds):
            return JobResult(summary: "slept \(milliseconds) ms")
        case .command(let exitCode, let signal, let seconds, let output):
            let ending = exitCode.map { "exit \($0)" } ?? "killed by signal \(signal ?? 0)"
            return JobResult(
                summary: "\(ending) after \(formatDuration(seconds))", exitCode: exitCode, signal: signal, output: output,
                seconds: seconds)
        }
    }
}

/// How a job ended, as its worker reports it.
package enum JobOutcome: Sendable, Equatable {
    /// It ran to the end and produced an output.
    case done(JobOutput)
    /// It failed; the text says why. An `exec` job keeps what its command produced.
    case failed(String, output: JobOutput? = nil)
    /// It was interrupted before finishing; the text says by what.
    case cancelled(String)
}

extension JobOutcome {
    /// The final state it leaves the job in.
    var state: JobState {
        switch self {
        case .done: .done
        case .failed: .failed
        case .cancelled: .cancelled
        }
    }

    /// Whether the job was cancelled.
    var isCancelled: Bool {
        if case .cancelled = self { return true }
        return false
    }

    /// The reason a worker reports for a job that stopped because its cancellation flag was
    /// raised (by a time limit, a preempting switch, a drain or a shrink).
    package static let interruptedReason = "interrupted while running"
}
