import CSQLite
package import ConcurCore
import ConcurProtocol
import ConcurRuntime
import Glibc
import Varlink

extension JobJournal {
    /// Starts the writer thread, which takes `pool`'s changes from now on and tells the pool
    /// when the journal cannot record (and when it can again).
    package func follow(_ pool: any JobChangeSource) throws(JobStoreStartError) {
        lock.withLock { writerRunning = true }
        do {
            try OSThread.start(name: "concur-journal") { [self] in
                do {
                    // The statements live only inside this call: once it returns they are
                    // finalized, so ``close()`` really closes the database (and SQLite removes
                    // the write-ahead log) rather than leave it open until they go.
                    try runWriter(pool: pool)
                } catch {
                    let failure = JournalFailure(reason: "the job journal \(path) cannot be written: \(error)")
                    pool.setJournalFailure(failure)
                    _ = markFailed(failure, permanently: true)
                }
                lock.withLock {
                    writerRunning = false
                    lock.broadcast()
                }
            }
        } catch {
            lock.withLock { writerRunning = false }
            throw JobStoreStartError(reason: "the journal's writer thread could not start: \(error)")
        }
    }

    /// Writes what is left and stops the writer: after a drain, no job is left `running`. What
    /// could never be written is logged (``Event/lost(unrecorded:)``).
    package func close() {
        let left = lock.withLock { () -> [JournalChange]? in
            guard lockDescriptor >= 0 else { return nil }
            stopping = true
            writerWake.broadcast()
            while writerRunning { lock.wait() }
            return unwritten
        }
        guard let left else { return }  // closed before
        if !left.isEmpty { onEvent(.lost(unrecorded: JournalChange.consequences(of: left))) }
        try? database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        database.close()
        // The state directory is free for the next concurd from here on.
        lock.withLock {
            if lockDescriptor >= 0 { Glibc.close(lockDescriptor) }
            lockDescriptor = -1
        }
    }

    /// Records a failure; false if the journal had already failed. Waiting submits are told.
    private func markFailed(_ failure: JournalFailure, permanently: Bool) -> Bool {
        let (first, waiting) = lock.withLock { () -> (Bool, [@Sendable (JournalFailure?) -> Void]) in
            if permanently { broken = true }
            let first = failed == nil
            failed = failure
            lock.broadcast()
            defer { callbacks.removeAll() }
            return (first, callbacks.map(\.completion))
        }
        for completion in waiting { completion(failure) }
        return first
    }

    private func runWriter(pool: any JobChangeSource) throws(SQLiteError) {
        let statements = try Statements(database)
        writeLoop(pool: pool, statements: statements)
    }

    /// What the writer's loop remembers between rounds: when it last pruned and tried, since
    /// when it fails, and what it last reported of the changes that wait.
    private struct WriterProgress {
        var lastPrune = MonotonicClock.now()
        var lastAttempt: UInt64 = 0
        var failingSince: UInt64?
        var lastReport: UInt64 = 0
        var reported = 0
    }

    private func writeLoop(pool: any JobChangeSource, statements: Statements) {
        var progress = WriterProgress()
        let retryNanoseconds = UInt64(Self.retryInterval * 1e9)
        while true {
            let (finishing, isBroken) = lock.withLock { () -> (Bool, Bool) in
                if !stopping && (wanted <= durable || failed != nil) {
                    _ = lock.wait(writerWake, untilMonotonic: MonotonicClock.now() + UInt64(Self.flushInterval * 1e9))
                }
                return (stopping, broken)
            }
            let (changes, through) = pool.takeJournalChanges()
            let now = MonotonicClock.now()
            let pending = lock.withLock { () -> [JournalChange] in
                unwritten.append(contentsOf: changes)
                unwrittenThrough = max(unwrittenThrough, through)
                return unwritten
            }
            if isBroken {
                if finishing { break }
                continue
            }
            // Every commit first checks that the file is still the one opened: a journal deleted
            // or replaced under concurd must not take commits that no restart will see.
            if !pending.isEmpty, let replaced = fileReplaced() {
                breakPermanently(replaced, pool: pool)
                continue
            }
            // While failing, a try every retry interval (and a last one at the stop).
            if progress.failingSince == nil || finishing || now - progress.lastAttempt >= retryNanoseconds {
                progress.lastAttempt = now
                commit(pending, statements, now: now, progress: &progress, pool: pool)
            }
            if now - progress.lastPrune >= 1_000_000_000 {
                progress.lastPrune = now
                if let replaced = fileReplaced() {
                    breakPermanently(replaced, pool: pool)
                    continue
                }
                if progress.failingSince == nil { pruneOnce(now: now) }
            }
            completeDurableCallbacks()
            if finishing { break }
        }
    }

    /// Writes what waits in one transaction; on success marks it durable (and a recovery, if
    /// it was failing), on failure tells the pool and logs what waits (again as it grows, and
    /// once a minute).
    private func commit(
        _ pending: [JournalChange], _ statements: Statements, now: UInt64, progress: inout WriterProgress,
        pool: any JobChangeSource
    ) {
        do {
            if !pending.isEmpty { try write(pending, statements) }
            let recovered = progress.failingSince != nil
            lock.withLock {
                unwritten.removeAll(keepingCapacity: true)
                durable = max(durable, unwrittenThrough)
                if recovered { failed = nil }
            }
            if let since = progress.failingSince {
                progress.failingSince = nil
                pool.setJournalFailure(nil)
                onEvent(.recovered(seconds: Double(now - since) / 1e9, written: pending.count))
            }
        } catch {
            let failure = JournalFailure(
                reason:
                    "the job journal \(path) cannot record (\(error.message)): concurd refuses new jobs and starts none "
                    + "until it can, and tries again every \(formatDecimal(Self.retryInterval)) s; free space on its disk"
            )
            if progress.failingSince == nil {
                progress.failingSince = now
                progress.lastReport = now
                // The pool first: whoever hears of the failure next finds it degraded.
                pool.setJournalFailure(failure)
                if markFailed(failure, permanently: false) {
                    onEvent(.failed(failure, unrecorded: JournalChange.summary(of: pending)))
                }
            } else if let since = progress.failingSince,
                pending.count > progress.reported || now - progress.lastReport >= 60_000_000_000
            {
                // What waits is named again as it grows (once a retry at most), and once a
                // minute while nothing changes.
                progress.lastReport = now
                onEvent(
                    .stillFailing(failure, seconds: Double(now - since) / 1e9, unrecorded: JournalChange.summary(of: pending)))
            }
            progress.reported = pending.count
        }
    }

    /// Forgets finished jobs past the retention, in a transaction of its own.
    private func pruneOnce(now: UInt64) {
        do {
            try database.execute("BEGIN IMMEDIATE")
            try prune(now: clock.unixTime(now))
            try database.execute("COMMIT")
        } catch {
            // A full disk can refuse even a delete; the next commit reports it.
            try? database.execute("ROLLBACK")
        }
    }

    /// Wakes the blocked waiters and calls the callbacks whose changes are durable now.
    private func completeDurableCallbacks() {
        let done = lock.withLock { () -> [(@Sendable (JournalFailure?) -> Void)] in
            lock.broadcast()
            var ready: [@Sendable (JournalFailure?) -> Void] = []
            callbacks.removeAll { waiting in
                guard waiting.count <= durable else { return false }
                ready.append(waiting.completion)
                return true
            }
            return ready
        }
        for completion in done { completion(nil) }
    }

    /// The journal file is gone or another one: nothing can be kept from now on.
    private func breakPermanently(_ replaced: String, pool: any JobChangeSource) {
        let failure = JournalFailure(
            reason: "the job journal \(path) \(replaced) while concurd ran: it can keep no job any more; "
                + "restart concurd (what was queued or finished since is not in a journal)")
        pool.setJournalFailure(failure)
        _ = markFailed(failure, permanently: true)
        onEvent(.failed(failure, unrecorded: "every job queued, and every change since"))
    }

    /// How the file at ``path`` differs from the one opened ("was deleted", "was replaced"),
    /// or nil if it is the same.
    private func fileReplaced() -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return "was deleted (\(String(cString: strerror(errno))))" }
        guard UInt64(info.st_dev) == identity.device && UInt64(info.st_ino) == identity.inode else {
            return "was replaced by another file"
        }
        return nil
    }

    /// Writes a batch of changes in one transaction. A job's start is skipped when the same
    /// batch also finishes it; hand-overs of consecutive ids (a worker's batch) are written as
    /// one ranged update.
    private func write(_ changes: [JournalChange], _ statements: Statements) throws(SQLiteError) {
        var finishing = Set<JobID>()
        var highestAccepted: JobID = 0
        for change in changes {
            switch change {
            case .finished(let record): finishing.insert(record.id)
            case .accepted(let id, _, _): highestAccepted = max(highestAccepted, id)
            default: continue
            }
        }
        try database.execute("BEGIN")
        do {
            var handedOver: ClosedRange<JobID>?
            for change in changes {
                if case .claimed(let id, _) = change {
                    if let run = handedOver, id == run.upperBound + 1 {
                        handedOver = run.lowerBound...id
                        continue
                    }
                }
                // Every other change comes after the hand-overs before it.
                if let run = handedOver {
                    try statements.handOver.run(.integer(Int64(run.lowerBound)), .integer(Int64(run.upperBound)))
                    handedOver = nil
                }
                switch change {
                case .accepted(let id, let spec, let submittedAt):
                    try statements.insert.run(
                        .integer(Int64(id)), .text(spec.json.serialized), .real(clock.unixTime(submittedAt)))
                case .claimed(let id, _):
                    handedOver = id...id
                case .started(let id, let attempts, let preemptions, let worker, let model, let at):
                    guard !finishing.contains(id) else { continue }
                    try statements.start.run(
                        .integer(Int64(id)), .integer(Int64(attempts)), .integer(Int64(preemptions)), .integer(Int64(worker)),
                        .text(model.rawValue), .real(clock.unixTime(at)))
                case .requeued(let id, let attempts, let preemptions):
                    guard !finishing.contains(id) else { continue }
                    try statements.requeue.run(.integer(Int64(id)), .integer(Int64(attempts)), .integer(Int64(preemptions)))
                case .retrying(let id, let attempt, let attempts):
                    guard !finishing.contains(id) else { continue }
                    try statements.retry.run(
                        .integer(Int64(id)), .integer(Int64(attempts)), .text(attempt.info(clock: clock).json.serialized))
                case .cancelRequested(let id, let reason):
                    guard !finishing.contains(id) else { continue }
                    try statements.cancelRequest.run(.integer(Int64(id)), .text(reason))
                case .finished(let record):
                    try finish(record, statements.finish)
                }
            }
            if let run = handedOver {
                try statements.handOver.run(.integer(Int64(run.lowerBound)), .integer(Int64(run.upperBound)))
            }
            if highestAccepted > 0 { try statements.nextID.run(.integer(Int64(highestAccepted + 1))) }
            try database.execute("COMMIT")
        } catch {
            try? database.execute("ROLLBACK")
            throw error
        }
    }

    private func finish(_ record: JobRecord, _ statement: SQLiteStatement) throws(SQLiteError) {
        let state: JobEncoding.State =
            switch record.state {
            case .done: .done
            case .failed: .failed
            default: .cancelled
            }
        let columns = JobEncoding.OutputColumns(record.output)
        let kind = columns.kind == .none ? nil : columns.kind
        let a: SQLiteValue = columns.a.map { .integer($0) } ?? .null
        let b: SQLiteValue = columns.b.map { .integer($0) } ?? .null
        let seconds: SQLiteValue = columns.seconds.map { .real($0) } ?? .null
        let text: SQLiteValue = columns.text.map { .text($0) } ?? .null
        try statement.run(
            .integer(Int64(record.id)), .integer(Int64(state.rawValue)), .integer(Int64(record.attempts)),
            .integer(Int64(record.preemptions)), .real(record.startedAt.map(clock.unixTime)),
            .real(record.finishedAt.map(clock.unixTime)), .int(record.worker), .text(record.model?.rawValue),
            kind.map { .integer(Int64($0.rawValue)) } ?? .null, a, b, seconds, text, .text(record.error),
            record.history.isEmpty ? .null : .text(JSON.array(record.history.map { $0.info(clock: clock).json }).serialized))
    }

    /// The writer's compiled statements.
    private struct Statements {
        let insert: SQLiteStatement
        let handOver: SQLiteStatement
        let start: SQLiteStatement
        let requeue: SQLiteStatement
        let cancelRequest: SQLiteStatement
        let retry: SQLiteStatement
        let finish: SQLiteStatement
        let nextID: SQLiteStatement

        init(_ database: SQLiteDatabase) throws(SQLiteError) {
            typealias State = JobEncoding.State
            insert = try database.prepare(
                "INSERT OR REPLACE INTO jobs (id, spec, state, attempts, preemptions, submitted_at) VALUES (?1, ?2, \(State.queued.rawValue), 0, 0, ?3)"
            )
            handOver = try database.prepare(
                "UPDATE jobs SET state = \(State.handedOver.rawValue) WHERE id BETWEEN ?1 AND ?2 AND state = \(State.queued.rawValue)"
            )
            start = try database.prepare(
                "UPDATE jobs SET state = \(State.running.rawValue), attempts = ?2, preemptions = ?3, worker = ?4, model = ?5, started_at = ?6 WHERE id = ?1"
            )
            requeue = try database.prepare(
                "UPDATE jobs SET state = \(State.queued.rawValue), attempts = ?2, preemptions = ?3 WHERE id = ?1")
            cancelRequest = try database.prepare("UPDATE jobs SET cancel_reason = ?2 WHERE id = ?1")
            retry = try database.prepare(
                "UPDATE jobs SET state = \(State.queued.rawValue), attempts = ?2, history = json_insert(COALESCE(history, '[]'), '$[#]', json(?3)) WHERE id = ?1"
            )
            finish = try database.prepare(
                """
                UPDATE jobs SET state = ?2, attempts = ?3, preemptions = ?4, started_at = ?5, finished_at = ?6, worker = ?7,
                    model = ?8, out_kind = ?9, out_a = ?10, out_b = ?11, out_seconds = ?12, out_text = ?13, error = ?14,
                    history = ?15
                WHERE id = ?1
                """)
            nextID = try database.prepare(
                "INSERT INTO meta (key, value) VALUES ('next_job_id', ?1) ON CONFLICT (key) DO UPDATE SET value = MAX(value, ?1)")
        }
    }
}
