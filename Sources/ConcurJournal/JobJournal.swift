import CSQLite
package import ConcurCore
import ConcurProtocol
import ConcurRuntime
import Glibc
import PathTrust

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
/// A commit that fails (a full disk) is not the end: the changes stay with the writer, which
/// tries again every ``retryInterval``; meanwhile the pool is told (intake refuses jobs, workers
/// start nothing whose start the file could not show), and once a commit succeeds everything
/// carries on. A journal file that was deleted or replaced while concurd ran cannot be written
/// again: that failure is final until a restart.
///
/// `@unchecked Sendable`: the database is used only by the thread that opened it and then by
/// the writer thread (never both at once: the writer starts after the recovery); every other
/// `var` is read and written only while holding `lock`.
package final class JobJournal: JobStore, @unchecked Sendable {
    /// The journal file's name in the state directory.
    package static let fileName = "journal.sqlite"
    /// The lock file's name: held (flock) while a concurd uses the journal, it holds that pid.
    package static let lockName = "journal.lock"
    /// The longest a change waits to be written, in seconds: with the workers' own bound on
    /// reporting a finish (``Pool/reportWithin``), a finished job is in the file within 50 ms.
    package static let flushInterval = 0.04
    /// Seconds between attempts to write while the journal cannot record.
    package static let retryInterval = 1.0

    /// How long finished jobs are kept.
    package typealias Retention = JobRetention

    /// How much the journal is trusted to survive.
    package enum Sync: String, Sendable, CaseIterable {
        /// Survives a crash or kill of concurd (each commit reaches the kernel); a power loss may
        /// take the last commits.
        case normal
        /// Survives a power loss too: every commit waits for the disk (fsync).
        case full
    }

    /// What happened to the journal while it ran, for the log.
    package enum Event: Sendable, Equatable {
        /// A commit failed: `failure` says why; `unrecorded` lists what waits to be written.
        case failed(JournalFailure, unrecorded: String)
        /// It still cannot record after `seconds`; `unrecorded` lists what waits.
        case stillFailing(JournalFailure, seconds: Double, unrecorded: String)
        /// It records again after `seconds`; `written` changes that had waited are in the file.
        case recovered(seconds: Double, written: Int)
        /// It stopped with changes it never wrote; `unrecorded` says which and what follows.
        case lost(unrecorded: String)
    }

    /// The journal's file.
    package let path: String
    let database: SQLiteDatabase
    /// The lock file, held until ``close()``.
    var lockDescriptor: Int32
    let clock: MonotonicClock
    let lock = ConditionLock()
    let writerWake: Condition
    /// The device and inode of the file opened: a file there that is not this one means the
    /// journal was deleted or replaced.
    let identity: (device: UInt64, inode: UInt64)
    var durable: UInt64 = 0
    var wanted: UInt64 = 0
    var callbacks: [(count: UInt64, completion: @Sendable (JournalFailure?) -> Void)] = []
    var failed: JournalFailure?
    /// The failure cannot be undone by retrying (the file is gone).
    var broken = false
    var stopping = false
    var writerRunning = false
    /// Changes taken from the pool but not in the file yet (a commit failed), and the count
    /// they bring the journal to once written.
    var unwritten: [JournalChange] = []
    var unwrittenThrough: UInt64 = 0
    var retention: Retention
    /// What the file held at open, until the pool takes it (``takeRestored()``).
    var restored: (records: [JobRecord], nextJobID: JobID)?
    let onEvent: @Sendable (Event) -> Void

    private init(
        path: String, database: SQLiteDatabase, lockDescriptor: Int32, identity: (device: UInt64, inode: UInt64),
        clock: MonotonicClock, retention: Retention, onEvent: @escaping @Sendable (Event) -> Void
    ) {
        self.path = path
        self.database = database
        self.lockDescriptor = lockDescriptor
        self.identity = identity
        self.clock = clock
        self.retention = retention
        self.onEvent = onEvent
        writerWake = lock.makeCondition()
    }

    deinit {
        if lockDescriptor >= 0 { Glibc.close(lockDescriptor) }
    }

    // MARK: Opening

    /// Opens (or creates) the journal in `directory`, migrates an older layout, and reads what
    /// it holds: jobs a stop left in flight are re-queued (attempts counted; failed with the
    /// reason once `maxAttempts` is reached) and finished jobs beyond `retention` pruned.
    ///
    /// Refuses, with what to do, a directory it cannot create, a directory or file another user
    /// could change (see ``PathTrust``), a journal another concurd holds, a file that is not a
    /// readable journal (an empty one included), a journal that is missing where a journal was,
    /// a value out of range in any row, or a journal written by a newer concurd: it never starts
    /// empty in place of a journal it cannot read, and never runs what someone else put there.
    package static func open(
        directory: String, sync: Sync = .normal, maxAttempts: Int, retention: Retention, clock: MonotonicClock,
        onEvent: @escaping @Sendable (Event) -> Void = { _ in }
    ) throws(JournalOpenError) -> (JobJournal, Recovery) {
        try makeDirectory(directory)
        try trust(directory, as: .directory)
        let path = directory + "/" + fileName
        let lockPath = directory + "/" + lockName
        for file in [lockPath, path, path + "-wal", path + "-shm"] where exists(file) {
            try trust(file, as: .file)
        }
        let lockDescriptor = try takeLock(lockPath, directory: directory)
        do {
            try checkTraces(path: path, lockDescriptor: lockDescriptor)
            if !exists(path) { try create(path) }
        } catch {
            Glibc.close(lockDescriptor)
            throw error
        }

        let database: SQLiteDatabase
        var recovery = Recovery()
        do {
            database = try SQLiteDatabase(path: path, create: false)
            try database.execute("PRAGMA busy_timeout = 5000")
            let mode = try database.texts("PRAGMA journal_mode = WAL").first
            guard mode == "wal" else {
                throw SQLiteError(code: SQLITE_ERROR, message: "WAL mode is not available (\(mode ?? "?"))", context: "opening")
            }
            try database.execute("PRAGMA synchronous = \(sync == .full ? "FULL" : "NORMAL")")
            try database.execute("PRAGMA wal_autocheckpoint = \(checkpointPages(directory: directory))")
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
        var info = stat()
        guard stat(path, &info) == 0 else {
            Glibc.close(lockDescriptor)
            throw JournalOpenError("the job journal \(path) vanished while it was opened: \(String(cString: strerror(errno)))")
        }
        let journal = JobJournal(
            path: path, database: database, lockDescriptor: lockDescriptor,
            identity: (UInt64(info.st_dev), UInt64(info.st_ino)), clock: clock, retention: retention, onEvent: onEvent)
        do {
            try journal.recover(into: &recovery, maxAttempts: maxAttempts)
        } catch {
            throw JournalOpenError(unreadable: path, error)
        }
        // Only now: a pid in the lock says that a journal was opened here (see checkTraces).
        let pid = "\(getpid())\n"
        _ = ftruncate(lockDescriptor, 0)
        _ = pid.withCString { pwrite(lockDescriptor, $0, strlen($0), 0) }
        _ = fsync(lockDescriptor)
        journal.restored = (recovery.records, recovery.nextJobID)
        return (journal, recovery)
    }

    /// Pages of write-ahead log after which SQLite checkpoints it into the database: its default
    /// of 1,000 (4 MiB), or a quarter of a smaller file system, so that on a small disk the log
    /// alone can never fill it (a checkpoint needs room for the database to grow).
    static func checkpointPages(directory: String) -> Int {
        var info = statvfs()
        guard statvfs(directory, &info) == 0 else { return 1000 }
        let bytes = Int(info.f_blocks) * Int(info.f_frsize)
        return max(16, min(1000, bytes / 4 / 4096))
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    private static func trust(_ path: String, as kind: PathTrust.Kind) throws(JournalOpenError) {
        do {
            try PathTrust.check(path, as: kind)
        } catch {
            throw JournalOpenError(
                "refusing the state directory: \(error); concurd trusts only what root or its own user could have written there (another user could plant jobs it would run)"
            )
        }
    }

    /// Opens and locks the lock file (never through a link), refusing a journal in use.
    private static func takeLock(_ lockPath: String, directory: String) throws(JournalOpenError) -> Int32 {
        let descriptor = Glibc.open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else {
            throw JournalOpenError(
                "cannot open \(lockPath): \(String(cString: strerror(errno))); check the state directory's owner and mode, or use --ephemeral"
            )
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let holder = lockHolder(descriptor) ?? "?"
            Glibc.close(descriptor)
            throw JournalOpenError(
                "another concurd (pid \(holder)) is using the job journal in \(directory); stop it, or give this one another --state-directory (or --ephemeral)"
            )
        }
        return descriptor
    }

    /// The pid a lock file holds, if any.
    private static func lockHolder(_ descriptor: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = pread(descriptor, &buffer, 31, 0)
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[..<count], as: UTF8.self).trimmingNewlines
        return text.isEmpty ? nil : text
    }

    /// Refuses an empty journal file, and a missing one where a journal was (the lock holds the
    /// pid of the concurd that last opened one, or its write-ahead log is still there): starting
    /// empty would silently drop the jobs it held.
    private static func checkTraces(path: String, lockDescriptor: Int32) throws(JournalOpenError) {
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_size > 0 else {
                throw JournalOpenError(
                    "the job journal \(path) is empty (0 bytes) where a journal was: it was truncated, or never finished; concurd will not start without the jobs it may have held: "
                        + "restore it from a backup, or remove it (rm \(path)) to start with an empty journal")
            }
            return
        }
        var traces: [String] = []
        if let holder = lockHolder(lockDescriptor) {
            traces.append("\(lockName) names the concurd (pid \(holder)) that last used it")
        }
        for suffix in ["-wal", "-shm"] where exists(path + suffix) { traces.append("\(fileName)\(suffix) is there") }
        guard traces.isEmpty else {
            let directory = String(path.dropLast(fileName.count + 1))
            throw JournalOpenError(
                "the job journal \(path) is missing, but a journal was here (\(traces.joined(separator: "; "))): it was deleted or moved; "
                    + "restore it from a backup, or remove what is left (rm -f \(directory)/\(lockName) \(path)-wal \(path)-shm) to start with an empty journal"
            )
        }
    }

    /// Creates a new journal under a temporary name and moves it into place: the file at `path`
    /// is always a whole journal, never a half-made one.
    private static func create(_ path: String) throws(JournalOpenError) {
        let temporary = path + ".new"
        for suffix in ["", "-wal", "-shm", "-journal"] { unlink(temporary + suffix) }
        do {
            let database = try SQLiteDatabase(path: temporary, create: true)
            guard try database.texts("PRAGMA journal_mode = WAL").first == "wal" else {
                throw SQLiteError(code: SQLITE_ERROR, message: "WAL mode is not available", context: "creating")
            }
            try database.execute("BEGIN IMMEDIATE; \(JournalSchema.creation) COMMIT;")
            try database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        } catch {
            for suffix in ["", "-wal", "-shm"] { unlink(temporary + suffix) }
            throw JournalOpenError(
                "cannot create the job journal \(path): \(error); check the disk and the state directory, or use --ephemeral")
        }
        for suffix in ["-wal", "-shm"] { unlink(temporary + suffix) }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw JournalOpenError("cannot create the job journal \(path): \(reason)")
        }
        let directory = Glibc.open(String(path[..<path.lastIndex(of: "/")!]), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            Glibc.close(directory)
        }
    }

    private static func makeDirectory(_ directory: String) throws(JournalOpenError) {
        var info = stat()
        if stat(directory, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw JournalOpenError(
                    "\(directory), where the job journal goes, is not a directory; move that file away, or give another --state-directory"
                )
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

    /// Migrates an older layout; returns the layout migrated from. A file without a layout
    /// number was not made by concurd.
    private static func prepareLayout(_ database: SQLiteDatabase, path: String) throws(SQLiteError) -> Int? {
        let version = Int(try database.integer("PRAGMA user_version") ?? 0)
        guard version > 0 else {
            throw SQLiteError(code: SQLITE_NOTADB, message: "it has no journal layout number", context: "reading")
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

    // MARK: Reading the state

    /// True: the pool collects every change for the journal.
    package var recordsChanges: Bool { true }

    /// The records read at open and the next job id, once.
    package func takeRestored() -> (records: [JobRecord], nextJobID: JobID)? {
        lock.withLock {
            defer { restored = nil }
            return restored
        }
    }

    /// Changes the retention (a reload); pruning follows within a second.
    package func setRetention(_ retention: Retention) {
        lock.withLock { self.retention = retention }
    }

    /// Why the journal cannot record now, if it cannot: new jobs are refused with this reason.
    package var failure: JournalFailure? { lock.withLock { failed } }

    /// Blocks until the first `count` changes are durable; throws at once while the journal
    /// cannot record (the caller gives its jobs back rather than wait).
    package func waitUntilDurable(_ count: UInt64) throws(JournalFailure) {
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

    /// Calls `completion` once the first `count` changes are durable (with nil), or at once with
    /// why the journal cannot record them now.
    package func whenDurable(_ count: UInt64, _ completion: @escaping @Sendable (JournalFailure?) -> Void) {
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
}

/// The journal could not be opened; the message says why and what to do.
package struct JournalOpenError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The text shown to people.
    package let description: String

    init(_ description: String) {
        self.description = description
    }

    /// A journal SQLite could not use: damaged content is told apart from a file concurd may
    /// not write (permissions, an immutable file, a read-only file system), which must not be
    /// moved aside (its jobs are fine), and from a value out of range in a row.
    init(unreadable path: String, _ error: any Error) {
        let sqlite = error as? SQLiteError
        if let sqlite, sqlite.isUnwritable {
            description =
                "the job journal \(path) cannot be written (\(sqlite)); its jobs are kept in it, so do not move it aside: "
                + "check its owner and mode, its attributes (lsattr \(path); chattr -i \(path) if it is immutable) and whether its file system is read-only, then start concurd again"
            return
        }
        let damaged = sqlite?.isCorruption ?? false
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
