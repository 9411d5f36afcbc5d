package import ConcurProtocol

// The journal feed: changes to record, restore, prune.
extension PoolStateMachine {
    /// Starts collecting every change to the jobs' records for a durable journal (see
    /// ``takeJournalChanges()``); a shutdown then keeps unfinished jobs queued for the next start.
    package mutating func startJournal() {
        table.startJournal()
        let cancels = restoredCancels
        restoredCancels = []
        for (id, reason, at) in cancels { _ = endCancelled(id, reason: reason, now: at) }
    }

    /// The changes collected since the last call, and how many were collected in all.
    package mutating func takeJournalChanges() -> (changes: [JournalChange], through: UInt64) {
        table.takeChanges()
    }

    /// How many changes have been collected in all (a worker or a `Submit` waits until the
    /// journal has made this many durable).
    package var journalChangeCount: UInt64 { table.changeCount }

    /// Puts back the jobs a journal held at start-up, before any job is submitted: unfinished
    /// ones are placed in id order (queued at their priority, scheduled, or waiting for the jobs
    /// they run after), finished ones kept for `ListJobs`. New ids continue from `nextJobID`.
    /// A job whose time passed while the daemon was down is queued; one a job it runs after
    /// already cancels ends cancelled once the journal records (``startJournal()``); one
    /// waiting out a retry's delay waits for the rest of it. Each unfinished job counts as
    /// submitted (the totals are this run's: each ends once more in them).
    ///
    /// `foreign` gives the state of a job another pool holds (nil: none does); a job waiting
    /// for one still pending waits on, to be registered with its pool
    /// (``foreignDependencies``).
    package mutating func restore(
        _ records: [JobRecord], nextJobID: JobID, now: UInt64 = 0, foreign: (JobID) -> JobState? = { _ in nil }
    ) {
        for record in records.sorted(by: { $0.id < $1.id }) where record.id >= self.nextJobID {
            table.restore(record)
            self.nextJobID = record.id + 1
            guard !record.state.isFinal else { continue }
            // Counted as submitted to this run of the daemon: each will be counted as it ends.
            totals.submitted += 1
            if let due = retryDue(of: record), due > now {
                timetable.add(record.id, at: due, reason: .retry)
                continue
            }
            var outside: [JobID: JobState] = [:]
            for other in record.spec.after where table[other] == nil {
                if let state = foreign(other) { outside[other] = state }
            }
            if case .cancelled(let reason) = place(record.id, spec: record.spec, now: now, foreign: outside) {
                restoredCancels.append((record.id, reason, now))
            }
        }
        self.nextJobID = max(self.nextJobID, nextJobID)
    }

    /// When a restored job that failed and waits for its retry may run again: its last failed
    /// run's end plus its policy's wait, which depends only on the job and the retry (nil for a
    /// job without a failed run). A run that ended before this boot reads as the clock's start,
    /// so its wait is counted from there.
    private func retryDue(of record: JobRecord) -> UInt64? {
        guard let policy = record.spec.retry, let last = record.history.last else { return nil }
        let wait = policy.wait(beforeRetry: record.history.count, of: record.id)
        return last.finishedAt + UInt64(wait * 1e9)
    }

    /// Forgets finished records older than the retention's age (monotonic nanoseconds).
    package mutating func pruneFinished(before cutoff: UInt64) {
        table.pruneFinished(before: cutoff)
    }

    /// Notes that the journal cannot record (`reason`) or can again (nil). While it cannot,
    /// workers take no new jobs; once it can, the waiting ones are woken.
    package mutating func setJournalFailure(_ reason: String?, now: UInt64) -> [PoolAction] {
        guard reason != journalFailure else { return [] }
        let was = journalFailure
        journalFailure = reason
        if let reason {
            if was == nil { record(.journal, "the job journal cannot record: workers start no new jobs (\(reason))", now: now) }
            return []
        }
        record(.journal, "the job journal records again (\(queue.count) queued)", now: now)
        return wakeWaiting(upTo: max(queue.count, 1))
    }
}
