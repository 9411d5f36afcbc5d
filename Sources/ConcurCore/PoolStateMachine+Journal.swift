import ConcurProtocol

// The journal feed: changes to record, restore, prune.
extension PoolStateMachine {
    /// Starts collecting every change to the jobs' records for a durable journal (see
    /// ``takeJournalChanges()``); a shutdown then keeps unfinished jobs queued for the next start.
    package mutating func startJournal() {
        table.startJournal()
    }

    /// The changes collected since the last call, and how many were collected in all.
    package mutating func takeJournalChanges() -> (changes: [JournalChange], through: UInt64) {
        table.takeChanges()
    }

    /// How many changes have been collected in all (a worker or a `Submit` waits until the
    /// journal has made this many durable).
    package var journalChangeCount: UInt64 { table.changeCount }

    /// Puts back the jobs a journal held at start-up, before any job is submitted: unfinished
    /// ones are queued in id order, finished ones kept for `ListJobs`. New ids continue from
    /// `nextJobID`.
    package mutating func restore(_ records: [JobRecord], nextJobID: JobID) {
        for record in records.sorted(by: { $0.id < $1.id }) where record.id >= self.nextJobID {
            table.restore(record)
            self.nextJobID = record.id + 1
            if !record.state.isFinal { queue.append(contentsOf: record.id..<(record.id + 1)) }
        }
        self.nextJobID = max(self.nextJobID, nextJobID)
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
