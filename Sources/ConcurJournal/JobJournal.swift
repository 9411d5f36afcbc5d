import CSQLite
public import ConcurCore
import ConcurProtocol
import Glibc
import Varlink

/// The durable record of every accepted job: an SQLite file in WAL mode in the state directory.
///
/// The pool collects its changes (``JournalChange``); one writer thread takes them and writes
/// them in group commits: a `Submit` waits for the commit that holds its jobs before it replies,
/// and a worker waits for the commit that records its hand-over before it gets its jobs, while
/// finishes are written with whatever commit comes next (at most ``flushInterval`` later). So
/// after a crash every accepted job is in the file, and every job that may have run without a
/// recorded end is one the file shows handed over or running: the start-up re-queues those
/// (a running one with its attempt counted, failed once the attempt limit is reached) and
/// counts them, which bounds the runs a crash can repeat.
///
/// `@unchecked Sendable`: the database is used only by the thread that opened it and then by
/// the writer thread (never both at once: the writer starts after the recovery); every other
/// `var` is read and written only while holding `lock`.
public final class JobJournal: DurabilityGate, @unchecked Sendable {
    /// The journal file's name in the state directory.
    public static let fileName = "journal.sqlite"
    /// The longest a finished job waits to be written.
    public static let flushInterval = 0.05

    /// How long finished jobs are kept.
    public struct Retention: Sendable, Equatable {
        /// The most finished jobs kept.
        public var count: Int
        /// Seconds a finished job is kept.
        public var age: Double

        /// A retention of `count` jobs for `age` seconds.
        public init(count: Int, age: Double) {
            self.count = count
            self.age = age
        }
    }

    /// How much the journal is trusted to survive.
    public enum Sync: String, Sendable, CaseIterable {
        /// Survives a crash or kill of concurd (each commit reaches the kernel); a power loss may
        /// take the last commits.
        case normal
        /// Survives a power loss too: every commit waits for the disk (fsync).
        case full
    }

    /// What the start-up found in the journal.
    public struct Recovery: Sendable {
        /// The jobs to put back: unfinished ones (queued) and the retained finished ones.
        public var records: [JobRecord] = []
        /// The id the next accepted job gets.
        public var nextJobID: JobID = 1
        /// Jobs waiting in the queue.
        public var queued = 0
        /// Jobs a worker had been given (or was running) when concurd stopped without finishing
        /// them: they may have run, and run again (re-queued), unless their attempts ran out.
        public var inFlight = 0
        /// Of those, the ones failed because their attempts ran out.
        public var failedAfterStop = 0
        /// Finished jobs kept for `ListJobs`.
        public var finished = 0
        /// The layout the journal was migrated from, if it was.
        public var migratedFrom: Int?

        /// One line for the log.
        public var summary: String {
            var text = "\(queued) queued"
            if inFlight > 0 {
                text += ", \(inFlight) in flight when concurd last stopped (re-queued"
                text += failedAfterStop > 0 ? "; \(failedAfterStop) failed: their attempts ran out)" : ")"
            }
            text += ", \(finished) finished kept"
            if let migratedFrom { text += "; migrated from journal layout \(migratedFrom) to \(JournalSchema.current)" }
            return text
        }
    }

    /// The journal's file.
    public let path: String
    private let database: SQLiteDatabase
    private let lockDescriptor: Int32
    private let clock: MonotonicClock
    private let lock = ConditionLock()
    private let writerWake: Condition
    private var durable: UInt64 = 0
    private var wanted: UInt64 = 0
    private var callbacks: [(count: UInt64, completion: @Sendable (JournalFailure?) -> Void)] = []
    private var failed: JournalFailure?
    private var stopping = false
    private var writerRunning = false
    private var retention: Retention
    private let onFailure: @Sendable (JournalFailure) -> Void

    private init(
        path: String, database: SQLiteDatabase, lockDescriptor: Int32, clock: MonotonicClock, retention: Retention,
        onFailure: @escaping @Sendable (JournalFailure) -> Void
    ) {
        self.path = path
        self.database = database
        self.lockDescriptor = lockDescriptor
        self.clock = clock
        self.retention = retention
        self.onFailure = onFailure
        writerWake = lock.makeCondition()
    }

    deinit {
        Glibc.close(lockDescriptor)
    }

    // MARK: Opening

    /// Opens (or creates) the journal in `directory`, migrates an older layout, and reads what
    /// it holds: jobs a stop left in flight are re-queued (attempts counted; failed with the
    /// reason once `maxAttempts` is reached) and finished jobs beyond `retention` pruned.
    ///
    /// Refuses, with what to do, a directory it cannot create, a journal another concurd holds,
    /// a file that is not a readable journal, or one written by a newer concurd: it never starts
    /// empty in place of a journal it cannot read.
    public static func open(
        directory: String, sync: Sync = .normal, maxAttempts: Int, retention: Retention, clock: MonotonicClock,
        onFailure: @escaping @Sendable (JournalFailure) -> Void = { _ in }
    ) throws(JournalOpenError) -> (JobJournal, Recovery) {
        try makeDirectory(directory)
        let path = directory + "/" + fileName
        let lockPath = directory + "/journal.lock"
        let lockDescriptor = Glibc.open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockDescriptor >= 0 else {
            throw JournalOpenError(
                "cannot open \(lockPath): \(String(cString: strerror(errno))); check the state directory's owner and mode, or use --ephemeral"
            )
        }
        guard flock(lockDescriptor, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = pread(lockDescriptor, &buffer, 31, 0)
            let holder = count > 0 ? String(decoding: buffer[..<count], as: UTF8.self).trimmingNewlines : "?"
            Glibc.close(lockDescriptor)
            throw JournalOpenError(
                "another concurd (pid \(holder)) is using the job journal in \(directory); stop it, or give this one another --state-directory (or --ephemeral)"
            )
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(lockDescriptor, 0)
        _ = pid.withCString { pwrite(lockDescriptor, $0, strlen($0), 0) }

        let database: SQLiteDatabase
        var recovery = Recovery()
        do {
            database = try SQLiteDatabase(path: path)
            try database.execute("PRAGMA busy_timeout = 5000")
            let mode = try database.texts("PRAGMA journal_mode = WAL").first
            guard mode == "wal" else {
                throw SQLiteError(code: SQLITE_ERROR, message: "WAL mode is not available (\(mode ?? "?"))", context: "opening")
            }
            try database.execute("PRAGMA synchronous = \(sync == .full ? "FULL" : "NORMAL")")
            recovery.migratedFrom = try prepareLayout(database, path: path)
            let check = try database.texts("PRAGMA quick_check")
            guard check == ["ok"] else {
                throw SQLiteError(
                    code: SQLITE_CORRUPT, message: check.prefix(3).joined(separator: "; "), context: "checking the journal")
            }
        } catch {
            Glibc.close(lockDescriptor)
            throw JournalOpenError(unreadable: path, error)
        }
        let journal = JobJournal(
            path: path, database: database, lockDescriptor: lockDescriptor, clock: clock, retention: retention,
            onFailure: onFailure)
        do {
            try journal.recover(into: &recovery, maxAttempts: maxAttempts)
        } catch {
            throw JournalOpenError(unreadable: path, error)
        }
        return (journal, recovery)
    }

    private static func makeDirectory(_ directory: String) throws(JournalOpenError) {
        var info = stat()
        if stat(directory, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw JournalOpenError("the state directory \(directory) is not a directory; give another --state-directory")
            }
            return
        }
        // Parents first (like mkdir -p); only the last one is private.
        var built = ""
        for part in directory.split(separator: "/", omittingEmptySubsequences: true) {
            built += "/" + part
            if stat(built, &info) == 0 { continue }
            guard mkdir(built, built.count == directory.count ? 0o700 : 0o755) == 0 || errno == EEXIST else {
                throw JournalOpenError(
                    "cannot create the state directory \(directory): \(String(cString: strerror(errno))); create it, or give another --state-directory (or --ephemeral to keep jobs in memory only)"
                )
            }
        }
    }

    /// Creates the current layout in a new file, or migrates an older one; returns the layout
    /// migrated from.
    private static func prepareLayout(_ database: SQLiteDatabase, path: String) throws(SQLiteError) -> Int? {
        let version = Int(try database.integer("PRAGMA user_version") ?? 0)
        let tables = try database.integer("SELECT COUNT(*) FROM sqlite_master") ?? 0
        if version == 0 {
            guard tables == 0 else {
                throw SQLiteError(
                    code: SQLITE_NOTADB, message: "it holds tables but no journal layout number", context: "reading")
            }
            try database.execute("BEGIN IMMEDIATE; \(JournalSchema.creation) COMMIT;")
            return nil
        }
        guard version <= JournalSchema.current else {
            throw SQLiteError(
                code: SQLITE_ERROR,
                message:
                    "it was written by a newer concurd (journal layout \(version); this one knows up to \(JournalSchema.current)); run that version, or a newer one",
                context: "reading")
        }
        guard version < JournalSchema.current else { return nil }
        // A copy of the old file first: a migration is a one-way step.
        let backup = "\(path).v\(version).bak"
        unlink(backup)
        let quoted = backup.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "''")
        try database.execute("VACUUM INTO '\(quoted)'")
        try database.execute("BEGIN IMMEDIATE")
        do throws(SQLiteError) {
            for step in version..<JournalSchema.current {
                guard let sql = JournalSchema.migrations[step] else {
                    throw SQLiteError(code: SQLITE_ERROR, message: "no migration from layout \(step)", context: "migrating")
                }
                try database.execute(sql)
            }
            try database.execute("COMMIT")
        } catch {
            try? database.execute("ROLLBACK")
            throw error
        }
        return version
    }

    /// Re-queues what a stop left in flight, prunes, and reads the jobs to put back.
    private func recover(into recovery: inout Recovery, maxAttempts: Int) throws(SQLiteError) {
        let now = clock.unixTime(MonotonicClock.now())
        try database.execute("BEGIN IMMEDIATE")
        do {
            let inFlight = try database.prepare(
                "SELECT id, state, attempts, preemptions FROM jobs WHERE state IN (1, 2) ORDER BY id")
            let fail = try database.prepare(
                "UPDATE jobs SET state = 4, finished_at = ?2, error = ?3 WHERE id = ?1")
            var requeue: [Int64] = []
            while try inFlight.step() {
                recovery.inFlight += 1
                let id = inFlight.int64(0)
                let running = inFlight.int64(1) == JournalSchema.State.running.rawValue
                let counted = Int(inFlight.int64(2) - inFlight.int64(3))
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
            let back = try database.prepare("UPDATE jobs SET state = 0 WHERE id = ?1")
            for id in requeue { try back.run(.integer(id)) }
            try prune(now: now)
            try database.execute("COMMIT")
        } catch {
            try? database.execute("ROLLBACK")
            throw error
        }

        let next = try database.integer("SELECT value FROM meta WHERE key = 'next_job_id'") ?? 1
        let highest = try database.integer("SELECT MAX(id) FROM jobs") ?? 0
        recovery.nextJobID = JobID(max(next, highest + 1, 1))
        let columns =
            "id, spec, state, attempts, preemptions, submitted_at, started_at, finished_at, worker, model, out_kind, out_a, out_b, out_seconds, out_text, error"
        let unfinished = try database.prepare("SELECT \(columns) FROM jobs WHERE state < 3 ORDER BY id")
        while try unfinished.step() {
            recovery.records.append(try record(unfinished))
            recovery.queued += 1
        }
        let finished = try database.prepare(
            "SELECT \(columns) FROM jobs WHERE state >= 3 ORDER BY id DESC LIMIT ?1")
        finished.bind([.integer(Int64(retention.count))])
        var kept: [JobRecord] = []
        while try finished.step() { kept.append(try record(finished)) }
        recovery.finished = kept.count
        recovery.records += kept.reversed()
    }

    private func record(_ row: SQLiteStatement) throws(SQLiteError) -> JobRecord {
        let id = row.int64(0)
        let spec: JobSpec
        do {
            spec = try JobSpec(json: try JSON.parse(row.text(1) ?? ""), path: "spec")
        } catch {
            throw SQLiteError(code: SQLITE_CORRUPT, message: "job \(id) has an unreadable spec (\(error))", context: "reading")
        }
        let state: JobState =
            switch JournalSchema.State(rawValue: row.int64(2)) {
            case .done: .done
            case .failed: .failed
            case .cancelled: .cancelled
            default: .queued
            }
        let output: JobOutput? =
            switch row.optionalInt64(10) {
            case 1: .checksum(UInt64(bitPattern: row.int64(11)))
            case 2: .primality(n: UInt64(bitPattern: row.int64(11)), factor: UInt64(bitPattern: row.int64(12)))
            case 3: .slept(milliseconds: Int(row.int64(11)))
            case 4:
                .command(
                    exitCode: row.optionalInt64(11).map { Int($0) }, signal: row.optionalInt64(12).map { Int($0) },
                    seconds: row.double(13), output: row.text(14) ?? "")
            default: nil
            }
        return JobRecord(
            id: JobID(id), spec: spec, state: state, attempts: Int(row.int64(3)), preemptions: Int(row.int64(4)),
            submittedAt: clock.monotonic(unixTime: row.double(5)),
            startedAt: state.isFinal ? row.optionalDouble(6).map { clock.monotonic(unixTime: $0) } : nil,
            finishedAt: row.optionalDouble(7).map { clock.monotonic(unixTime: $0) },
            worker: state.isFinal ? row.optionalInt64(8).map { Int($0) } : nil,
            model: state.isFinal ? row.text(9).flatMap(ConcurrencyModel.init(rawValue:)) : nil, output: output,
            error: row.text(15))
    }

    /// Deletes finished jobs beyond the retention (inside the caller's transaction).
    private func prune(now: Double) throws(SQLiteError) {
        let retention = lock.withLock { self.retention }
        try database.prepare("DELETE FROM jobs WHERE state >= 3 AND finished_at < ?1").run(.real(now - retention.age))
        if retention.count == 0 {
            try database.execute("DELETE FROM jobs WHERE state >= 3")
        } else {
            try database.prepare(
                """
                DELETE FROM jobs WHERE state >= 3 AND id < (
                    SELECT id FROM jobs WHERE state >= 3 ORDER BY id DESC LIMIT 1 OFFSET ?1)
                """
            ).run(.integer(Int64(retention.count - 1)))
        }
    }

    // MARK: Writing

    /// Starts the writer thread, which takes `pool`'s changes from now on.
    public func start(pool: Pool) throws(OSThread.StartError) {
        lock.withLock { writerRunning = true }
        do {
            try OSThread.start(name: "concur-journal") { [self] in
                do {
                    writeLoop(pool: pool, statements: try Statements(database))
                } catch {
                    fail(JournalFailure(reason: "the job journal \(path) cannot be written: \(error)"))
                    lock.withLock {
                        writerRunning = false
                        lock.broadcast()
                    }
                }
            }
        } catch {
            lock.withLock { writerRunning = false }
            throw error
        }
    }

    /// Changes the retention (a reload); pruning follows within a second.
    public func setRetention(_ retention: Retention) {
        lock.withLock { self.retention = retention }
    }

    /// Writes what is left and stops the writer: after a drain, no job is left `running`.
    public func close() {
        lock.withLock {
            stopping = true
            writerWake.broadcast()
            while writerRunning { lock.wait() }
        }
        try? database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    /// Why the journal stopped recording, if it did.
    public var failure: JournalFailure? { lock.withLock { failed } }

    /// Blocks until the first `count` changes are durable.
    public func waitUntilDurable(_ count: UInt64) throws(JournalFailure) {
        let failure = lock.withLock { () -> JournalFailure? in
            while durable < count && failed == nil {
                if count > wanted {
                    wanted = count
                    writerWake.signal()
                }
                lock.wait()
            }
            return durable >= count ? nil : failed
        }
        if let failure { throw failure }
    }

    /// Calls `completion` once the first `count` changes are durable, or the journal failed.
    public func whenDurable(_ count: UInt64, _ completion: @escaping @Sendable (JournalFailure?) -> Void) {
        let now = lock.withLock { () -> JournalFailure?? in
            if durable >= count { return .some(nil) }
            if let failed { return .some(failed) }
            callbacks.append((count, completion))
            if count > wanted {
                wanted = count
                writerWake.signal()
            }
            return nil
        }
        if let now { completion(now) }
    }

    private func fail(_ failure: JournalFailure) {
        let waiting = lock.withLock { () -> [@Sendable (JournalFailure?) -> Void] in
            guard failed == nil else { return [] }
            failed = failure
            lock.broadcast()
            defer { callbacks.removeAll() }
            return callbacks.map(\.completion)
        }
        onFailure(failure)
        for completion in waiting { completion(failure) }
    }

    private func writeLoop(pool: Pool, statements: Statements) {
        var lastPrune = MonotonicClock.now()
        while true {
            let finishing = lock.withLock { () -> Bool in
                if !stopping && wanted <= durable {
                    _ = lock.wait(writerWake, untilMonotonic: MonotonicClock.now() + UInt64(Self.flushInterval * 1e9))
                }
                return stopping
            }
            let (changes, through) = pool.takeJournalChanges()
            if !changes.isEmpty && failure == nil {
                do {
                    try write(changes, statements)
                } catch {
                    fail(JournalFailure(reason: "writing the job journal \(path) failed: \(error)"))
                }
            }
            let now = MonotonicClock.now()
            if now - lastPrune >= 1_000_000_000 && failure == nil {
                lastPrune = now
                do {
                    try database.execute("BEGIN IMMEDIATE")
                    try prune(now: clock.unixTime(now))
                    try database.execute("COMMIT")
                } catch {
                    try? database.execute("ROLLBACK")
                    fail(JournalFailure(reason: "pruning the job journal \(path) failed: \(error)"))
                }
            }
            let done = lock.withLock { () -> [(@Sendable (JournalFailure?) -> Void)] in
                durable = max(durable, through)
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
            if finishing { break }
        }
        lock.withLock {
            writerRunning = false
            lock.broadcast()
        }
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
                if case .handedOver(let id) = change {
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
                case .handedOver(let id):
                    handedOver = id...id
                case .started(let id, let attempts, let preemptions, let worker, let model, let at):
                    guard !finishing.contains(id) else { continue }
                    try statements.start.run(
                        .integer(Int64(id)), .integer(Int64(attempts)), .integer(Int64(preemptions)), .integer(Int64(worker)),
                        .text(model.rawValue), .real(clock.unixTime(at)))
                case .requeued(let id, let attempts, let preemptions):
                    guard !finishing.contains(id) else { continue }
                    try statements.requeue.run(.integer(Int64(id)), .integer(Int64(attempts)), .integer(Int64(preemptions)))
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
        let state: JournalSchema.State =
            switch record.state {
            case .done: .done
            case .failed: .failed
            default: .cancelled
            }
        var kind: SQLiteValue = .null
        var a: SQLiteValue = .null
        var b: SQLiteValue = .null
        var seconds: SQLiteValue = .null
        var text: SQLiteValue = .null
        switch record.output {
        case .checksum(let checksum)?:
            kind = .integer(1)
            a = .integer(Int64(bitPattern: checksum))
        case .primality(let n, let factor)?:
            kind = .integer(2)
            a = .integer(Int64(bitPattern: n))
            b = .integer(Int64(bitPattern: factor))
        case .slept(let milliseconds)?:
            kind = .integer(3)
            a = .integer(Int64(milliseconds))
        case .command(let exitCode, let signal, let elapsed, let output)?:
            kind = .integer(4)
            a = .int(exitCode)
            b = .int(signal)
            seconds = .real(elapsed)
            text = .text(output)
        case nil: break
        }
        try statement.run(
            .integer(Int64(record.id)), .integer(state.rawValue), .integer(Int64(record.attempts)),
            .integer(Int64(record.preemptions)), .real(record.startedAt.map(clock.unixTime)),
            .real(record.finishedAt.map(clock.unixTime)), .int(record.worker), .text(record.model?.rawValue), kind, a, b,
            seconds, text, .text(record.error))
    }

    /// The writer's compiled statements.
    private struct Statements {
        let insert: SQLiteStatement
        let handOver: SQLiteStatement
        let start: SQLiteStatement
        let requeue: SQLiteStatement
        let finish: SQLiteStatement
        let nextID: SQLiteStatement

        init(_ database: SQLiteDatabase) throws(SQLiteError) {
            insert = try database.prepare(
                "INSERT OR REPLACE INTO jobs (id, spec, state, attempts, preemptions, submitted_at) VALUES (?1, ?2, 0, 0, 0, ?3)")
            handOver = try database.prepare("UPDATE jobs SET state = 1 WHERE id BETWEEN ?1 AND ?2 AND state = 0")
            start = try database.prepare(
                "UPDATE jobs SET state = 2, attempts = ?2, preemptions = ?3, worker = ?4, model = ?5, started_at = ?6 WHERE id = ?1"
            )
            requeue = try database.prepare("UPDATE jobs SET state = 0, attempts = ?2, preemptions = ?3 WHERE id = ?1")
            finish = try database.prepare(
                """
                UPDATE jobs SET state = ?2, attempts = ?3, preemptions = ?4, started_at = ?5, finished_at = ?6, worker = ?7,
                    model = ?8, out_kind = ?9, out_a = ?10, out_b = ?11, out_seconds = ?12, out_text = ?13, error = ?14
                WHERE id = ?1
                """)
            nextID = try database.prepare(
                "INSERT INTO meta (key, value) VALUES ('next_job_id', ?1) ON CONFLICT (key) DO UPDATE SET value = MAX(value, ?1)")
        }
    }
}

/// The journal could not be opened; the message says why and what to do.
public struct JournalOpenError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The text shown to people.
    public let description: String

    init(_ description: String) {
        self.description = description
    }

    init(unreadable path: String, _ error: any Error) {
        let damaged = (error as? SQLiteError)?.isCorruption ?? false
        let what = damaged ? "is damaged or not a job journal" : "cannot be used"
        description =
            "the job journal \(path) \(what) (\(error)); concurd will not start without the jobs it may hold: "
            + "restore it from a backup, or move it aside (mv \(path) \(path).broken) to start with an empty journal"
    }
}

extension String {
    fileprivate var trimmingNewlines: String {
        var text = self
        while text.last == "\n" || text.last == "\0" { text.removeLast() }
        return text
    }
}
