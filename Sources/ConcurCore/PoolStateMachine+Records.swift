import ConcurProtocol

// Job records: completing a job and telling its watches.
extension PoolStateMachine {
    /// Moves a job to its final state, counts it and tells the watches that cover it. With a
    /// journal, a job a shutdown interrupted is not final: it goes back to `queued` in the
    /// journal (the interrupted attempt not counted) and runs again after the next start, unless
    /// it is at-most-once and had started. A job someone cancelled is final whatever interrupted
    /// it, and ends with their reason.
    mutating func complete(_ id: JobID, outcome: JobOutcome, startedAt: UInt64?, now: UInt64) -> [PoolAction] {
        var outcome = outcome
        // The rare cases out of the way of every job: a cancel under way, a cancelled job.
        if !cancelling.isEmpty || outcome.isCancelled {
            guard settleCancel(id, outcome: &outcome, startedAt: startedAt) else { return [] }
        }
        guard let submittedAt = table.markFinished(id, outcome: outcome, startedAt: startedAt, at: now) else { return [] }
        switch outcome {
        case .done:
            totals.done += 1
            if let startedAt { latency.record(submitted: submittedAt, started: startedAt, finished: now) }
        case .failed:
            totals.failed += 1
            if let startedAt { latency.record(submitted: submittedAt, started: startedAt, finished: now) }
        case .cancelled:
            // Latencies describe jobs that ran to an end; an interrupted job would skew them.
            totals.cancelled += 1
        }
        var actions = watches.isEmpty ? [] : notifyWatches(of: id)
        if !dependencies.isEmpty { actions += settleDependents(of: id, outcome: outcome, now: now) }
        if !awaitedOutside.isEmpty, awaitedOutside.remove(id) != nil { actions.append(.dependencyEnded(id, outcome.state)) }
        return actions
    }

    /// For ``complete(_:outcome:startedAt:now:)``: a job someone cancelled ends with their
    /// reason (and is final); one a shutdown cancelled goes back to `queued` in the journal for
    /// the next start (false: it is not final), unless it is at-most-once and had started.
    @inline(never)
    mutating func settleCancel(_ id: JobID, outcome: inout JobOutcome, startedAt: UInt64?) -> Bool {
        if !cancelling.isEmpty, let reason = cancelling.removeValue(forKey: id), outcome.isCancelled {
            outcome = .cancelled(reason)
            return true
        }
        guard outcome.isCancelled, !intakeOpen, table.isJournaled,
            !(startedAt != nil && table[id]?.spec.delivery == .atMostOnce)
        else { return true }
        table.markRequeued(id, preempted: table[id]?.state == .running)
        keptForRestart += 1
        return false
    }

    /// The notifications for the watches that cover a job that just finished. Kept out of
    /// ``complete(_:outcome:startedAt:now:)``: most jobs have no watch, and a job's full record
    /// is large to build.
    @inline(never)
    mutating func notifyWatches(of id: JobID) -> [PoolAction] {
        var actions: [PoolAction] = []
        var info: JobInfo?
        for (watchID, watch) in watches where watch.covers(id) {
            if info == nil { info = table[id]?.info(clock: clock) }
            guard let info else { break }
            var last = false
            if let remaining = watch.remaining {
                watches[watchID]?.remaining = remaining - 1
                last = remaining == 1
                if last { watches[watchID] = nil }
            }
            actions.append(.notify(watch: watchID, job: info, last: last))
        }
        return actions
    }
}
