import ConcurProtocol

// Retries: a run that fails on its own is followed by another, after the job's delay.
extension PoolStateMachine {
    /// Whether a run of job `id` that ended with `outcome` is followed by another: it failed on
    /// its own (not by a worker's death, a cancel or a shutdown) and its policy has retries
    /// left. If so, the run goes to the job's history and the job waits out its delay
    /// (``releaseDue(now:)`` queues it) or, during a drain with a journal, waits in the
    /// journal for the next start; the return is true. Without a journal a drain ends it.
    mutating func retryIfPolicyAllows(_ id: JobID, outcome: JobOutcome, startedAt: UInt64?, now: UInt64) -> Bool {
        guard case .failed(let reason, let output) = outcome, intakeOpen || table.isJournaled, cancelling[id] == nil,
            let job = table.job(id), let policy = job.spec.retry
        else { return false }
        let failures = table[job.id]?.history.count ?? 0
        guard failures < policy.retries else { return false }
        var attempt = AttemptRecord(attempt: job.attempts, startedAt: startedAt, finishedAt: now, error: reason)
        if case .command(let exitCode, let signal, _, _)? = output {
            attempt.exitCode = exitCode
            attempt.signal = signal
        }
        let number = table.markRetrying(job.id, attempt: attempt)
        guard intakeOpen else {
            // A drain: the retry waits in the journal for the next start, as queued jobs do.
            keptForRestart += 1
            return true
        }
        let wait = policy.wait(beforeRetry: number, of: job.id)
        // Counted in `totals.retried` when it starts again, as every rerun is.
        timetable.add(job.id, at: now + UInt64(wait * 1e9), reason: .retry)
        return true
    }
}
