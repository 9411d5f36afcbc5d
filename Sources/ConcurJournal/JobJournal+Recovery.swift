import CSQLite
package import ConcurCore
import ConcurProtocol
import ConcurRuntime
import Varlink

extension JobJournal {
    /// What the start-up found in the journal.
    package struct Recovery: Sendable {
        /// The jobs to put back: unfinished ones (queued) and the retained finished ones.
        package var records: [JobRecord] = []
        /// The id the next accepted job gets.
        package var nextJobID: JobID = 1
        /// Jobs waiting in the queue.
        package var queued = 0
        /// Jobs a worker had been given (or was running) when concurd stopped without finishing
        /// them: they may have run, and run again (re-queued), unless their attempts ran out.
        package var inFlight = 0
        /// Of those, the ones failed because their attempts ran out.
        package var failedAfterStop = 0
        /// Of those, the ones cancelled while they ran: they end cancelled, not run again.
        package var cancelledAfterStop = 0
        /// Finished jobs kept for `ListJobs`.
        package var finished = 0
        /// The layout the journal was migrated from, if it was.
        package var migratedFrom: Int?

        /// One line for the log.
        package var summary: String {
            var text = "\(queued) queued"
            if inFlight > 0 {
                text += ", \(inFlight) in flight when concurd last stopped (re-queued"
                if failedAfterStop > 0 { text += "; \(failedAfterStop) failed: their attempts ran out, or they are at-most-once" }
                if cancelledAfterStop > 0 { text += "; \(cancelledAfterStop) cancelled: a cancel was under way" }
                text += ")"
            }
            text += ", \(finished) finished kept"
            if let migratedFrom { text += "; migrated from journal layout \(migratedFrom) to \(JournalSchema.current)" }
            return text
        }
    }

    /// The reason of an at-most-once job that may have run when concurd stopped.
    static let atMostOnceCutShort =
        "concurd stopped without a drain (a crash, kill -9 or power loss) while it ran; it is at-most-once, so it is not run again"

    /// The reason of a job that was being cancelled (`reason`) when concurd stopped.
    static func cancelledAtStop(_ reason: String) -> String {
        "\(reason); concurd stopped before the job ended, so it is not run again"
    }

    /// The largest job id a journal may hold: far beyond any real count, and far enough below
    /// the integers' end that the ids after it cannot overflow.
    static let maxJobID: Int64 = 1 << 62
    /// The most attempts (or preemptions) a row may show.
    static let maxAttempts = JobEncoding.maxAttempts
    /// Unix times a row may hold (0 to the year 5138): a time outside is damage.
    static let unixTimes = JobEncoding.unixTimes

    /// Re-queues what a stop left in flight, prunes, and reads the jobs to put back. Every
    /// value read is checked: a row out of range stops the start, naming the job and the field.
    func recover(into recovery: inout Recovery, maxAttempts: Int) throws(SQLiteError) {
        let now = clock.unixTime(MonotonicClock.now())
        try database.execute("BEGIN IMMEDIATE")
        do {
            let inFlight = try database.prepare(
                """
                SELECT id, state, attempts, preemptions, cancel_reason, json_extract(spec, '$.delivery'),
                    json_extract(spec, '$.kind'), COALESCE(json_array_length(history), 0) FROM jobs
                WHERE state IN (\(JobEncoding.State.inFlightSQL))
                    OR (cancel_reason IS NOT NULL AND state = \(JobEncoding.State.queued.rawValue))
                ORDER BY id
                """)
            let fail = try database.prepare(
                "UPDATE jobs SET state = \(JobEncoding.State.failed.rawValue), finished_at = ?2, error = ?3 WHERE id = ?1")
            let cancel = try database.prepare(
                "UPDATE jobs SET state = \(JobEncoding.State.cancelled.rawValue), finished_at = ?2, error = ?3 WHERE id = ?1")
            var requeue: [Int64] = []
            while try inFlight.step() {
                recovery.inFlight += 1
                let id = try Self.checked(inFlight.int64(0), "id", id: nil, in: 1...Self.maxJobID)
                if let reason = inFlight.text(4) {
                    recovery.cancelledAfterStop += 1
                    try cancel.run(.integer(id), .real(now), .text(Self.cancelledAtStop(reason)))
                    continue
                }
                let running = inFlight.int64(1) == Int64(JobEncoding.State.running.rawValue)
                // An exec job's start is durable before its command runs: one only handed over
                // never ran. Any other handed-over job may have.
                let mayHaveRun = running || inFlight.text(6) != "exec"
                if inFlight.text(5) == Delivery.atMostOnce.rawValue && mayHaveRun {
                    recovery.failedAfterStop += 1
                    try fail.run(.integer(id), .real(now), .text(Self.atMostOnceCutShort))
                    continue
                }
                let attempts = try Self.checked(inFlight.int64(2), "attempts", id: id, in: 0...Self.maxAttempts)
                let preemptions = try Self.checked(inFlight.int64(3), "preemptions", id: id, in: 0...attempts)
                let failures = try Self.checked(inFlight.int64(7), "history", id: id, in: 0...attempts)
                let counted = Int(attempts - preemptions - failures)
                if running && counted >= maxAttempts {
                    recovery.failedAfterStop += 1
                    try fail.run(
                        .integer(id), .real(now),
                        .text(
                            "concurd stopped without a drain (a crash, kill -9 or power loss) while it ran (attempt \(counted) of \(maxAttempts))"
                        ))
                } else {
                    requeue.append(id)
                }
            }
            let back = try database.prepare("UPDATE jobs SET state = \(JobEncoding.State.queued.rawValue) WHERE id = ?1")
            for id in requeue { try back.run(.integer(id)) }
            try prune(now: now)
            try database.execute("COMMIT")
        } catch {
            try? database.execute("ROLLBACK")
            throw error
        }

        let next = try database.integer("SELECT value FROM meta WHERE key = 'next_job_id'") ?? 1
        _ = try Self.checked(next, "next_job_id (table meta)", id: nil, in: 1...(Self.maxJobID + 1))
        let highest = try database.integer("SELECT MAX(id) FROM jobs") ?? 0
        _ = try Self.checked(highest, "the highest id", id: nil, in: 0...Self.maxJobID)
        recovery.nextJobID = JobID(max(next, highest + 1, 1))
        let columns =
            "id, spec, state, attempts, preemptions, submitted_at, started_at, finished_at, worker, model, out_kind, out_a, out_b, out_seconds, out_text, error, history"
        let unfinished = try database.prepare(
            "SELECT \(columns) FROM jobs WHERE state < \(JobEncoding.State.done.rawValue) ORDER BY id")
        while try unfinished.step() {
            recovery.records.append(try record(unfinished))
            recovery.queued += 1
        }
        let finished = try database.prepare(
            "SELECT \(columns) FROM jobs WHERE state >= \(JobEncoding.State.done.rawValue) ORDER BY id DESC LIMIT ?1")
        finished.bind([.integer(Int64(retention.count))])
        var kept: [JobRecord] = []
        while try finished.step() { kept.append(try record(finished)) }
        recovery.finished = kept.count
        recovery.records += kept.reversed()
    }

    /// `value` if it lies in `range`; else the error that names the job and the field.
    static func checked(_ value: Int64, _ field: String, id: Int64?, in range: ClosedRange<Int64>) throws(SQLiteError) -> Int64 {
        guard range.contains(value) else { throw outOfRange(field, "\(value)", id: id, allowed: "\(range)") }
        return value
    }

    static func outOfRange(_ field: String, _ value: String, id: Int64?, allowed: String) -> SQLiteError {
        SQLiteError(
            code: SQLITE_CORRUPT,
            message: "\(id.map { "job \($0): " } ?? "")\(field) is \(value), outside \(allowed)", context: "reading a job")
    }

    /// A Unix time from a row: nil for NULL, else finite and in ``unixTimes``.
    private static func time(_ row: SQLiteStatement, _ column: Int32, _ field: String, id: Int64) throws(SQLiteError) -> Double? {
        guard !row.isNull(column) else { return nil }
        let value = row.double(column)
        guard value.isFinite && unixTimes.contains(value) else {
            throw outOfRange(field, "\(value)", id: id, allowed: "Unix times \(unixTimes)")
        }
        return value
    }

    /// A job's row as a record, every value checked.
    private func record(_ row: SQLiteStatement) throws(SQLiteError) -> JobRecord {
        let id = try Self.checked(row.int64(0), "id", id: nil, in: 1...Self.maxJobID)
        let spec: JobSpec
        do {
            spec = try JobSpec(json: try JSON.parse(row.text(1) ?? ""), path: "spec")
        } catch {
            throw SQLiteError(code: SQLITE_CORRUPT, message: "job \(id) has an unreadable spec (\(error))", context: "reading")
        }
        guard let stored = UInt8(exactly: row.int64(2)).flatMap(JobEncoding.State.init(rawValue:)) else {
            throw Self.outOfRange("state", "\(row.int64(2))", id: id, allowed: "0...5")
        }
        let state: JobState =
            switch stored {
            case .done: .done
            case .failed: .failed
            case .cancelled: .cancelled
            case .queued, .handedOver, .running: .queued
            }
        let attempts = try Self.checked(row.int64(3), "attempts", id: id, in: 0...Self.maxAttempts)
        let preemptions = try Self.checked(row.int64(4), "preemptions", id: id, in: 0...attempts)
        guard let submitted = try Self.time(row, 5, "submitted_at", id: id) else {
            throw Self.outOfRange("submitted_at", "NULL", id: id, allowed: "a Unix time")
        }
        let started = try Self.time(row, 6, "started_at", id: id)
        let finishedAt = try Self.time(row, 7, "finished_at", id: id)
        let worker = try row.optionalInt64(8).map { value throws(SQLiteError) in
            Int(try Self.checked(value, "worker", id: id, in: 1...Int64(Int32.max)))
        }
        var model: ConcurrencyModel?
        if let text = row.text(9) {
            guard let known = ConcurrencyModel(rawValue: text) else {
                throw Self.outOfRange("model", "'\(text.prefix(40))'", id: id, allowed: "threads, processes, tasks")
            }
            model = known
        }
        let output = try self.output(row, id: id)
        let history = try self.history(row, column: 16, id: id)
        return JobRecord(
            id: JobID(id), spec: spec, state: state, attempts: Int(attempts), preemptions: Int(preemptions),
            submittedAt: clock.monotonic(unixTime: submitted),
            startedAt: state.isFinal ? started.map { clock.monotonic(unixTime: $0) } : nil,
            finishedAt: finishedAt.map { clock.monotonic(unixTime: $0) },
            worker: state.isFinal ? worker : nil, model: state.isFinal ? model : nil, output: output, error: row.text(15),
            history: history)
    }

    /// A job's history of failed and retried runs, every value checked.
    private func history(_ row: SQLiteStatement, column: Int32, id: Int64) throws(SQLiteError) -> [AttemptRecord] {
        guard let text = row.text(column) else { return [] }
        let attempts: [JobAttempt]
        do {
            attempts = try [JobAttempt](json: try JSON.parse(text), path: "history")
        } catch {
            throw SQLiteError(code: SQLITE_CORRUPT, message: "job \(id) has an unreadable history (\(error))", context: "reading")
        }
        do throws(JobEncoding.Damage) {
            return try JobEncoding.history(attempts, clock: clock)
        } catch {
            throw Self.outOfRange(error.field, error.value, id: id, allowed: error.allowed ?? "")
        }
    }

    /// What a job produced, from its row's `out_*` columns (``JobEncoding/OutputColumns``).
    private func output(_ row: SQLiteStatement, id: Int64) throws(SQLiteError) -> JobOutput? {
        do throws(JobEncoding.Damage) {
            return try JobEncoding.OutputColumns(
                rawKind: row.optionalInt64(10), a: row.optionalInt64(11), b: row.optionalInt64(12),
                seconds: row.isNull(13) ? nil : row.double(13), text: row.text(14)
            ).output()
        } catch {
            throw Self.outOfRange(error.field, error.value, id: id, allowed: error.allowed ?? "")
        }
    }

    /// Deletes finished jobs beyond the retention (inside the caller's transaction).
    func prune(now: Double) throws(SQLiteError) {
        let retention = lock.withLock { self.retention }
        let finished = JobEncoding.State.finishedSQL
        try database.prepare("DELETE FROM jobs WHERE \(finished) AND finished_at < ?1").run(.real(now - retention.age))
        if retention.count == 0 {
            try database.execute("DELETE FROM jobs WHERE \(finished)")
        } else {
            try database.prepare(
                """
                DELETE FROM jobs WHERE \(finished) AND id < (
                    SELECT id FROM jobs WHERE \(finished) ORDER BY id DESC LIMIT 1 OFFSET ?1)
                """
            ).run(.integer(Int64(retention.count - 1)))
        }
    }
}
