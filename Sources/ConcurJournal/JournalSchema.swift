/// The layouts of the journal file, oldest first, and the steps from each to the next.
///
/// `PRAGMA user_version` holds the layout's number. A journal with an older number is copied
/// aside (`journal.sqlite.v1.bak`) and migrated in one transaction at start; a newer one is
/// refused (an older concurd must not guess at it).
enum JournalSchema {
    /// The layout this build writes.
    static let current = 2

    /// Layout 1, the first: one row per job. Kept to test the migration from it.
    static let version1 = """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            spec TEXT NOT NULL,
            state INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            submitted_at REAL NOT NULL,
            started_at REAL, finished_at REAL, worker INTEGER, model TEXT,
            out_kind INTEGER, out_a INTEGER, out_b INTEGER, out_seconds REAL, out_text TEXT,
            error TEXT
        );
        PRAGMA user_version = 1;
        """

    /// A new file: layout 1, then every migration, so that each step runs on every start-up
    /// that creates a journal, not only on the rare one that upgrades an old file.
    static var creation: String {
        version1 + (1..<current).compactMap { migrations[$0] }.joined(separator: "\n")
    }

    private static let indexesAndMeta = """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE INDEX jobs_finished_by_id ON jobs (id) WHERE state >= 3;
        CREATE INDEX jobs_finished_by_time ON jobs (finished_at) WHERE state >= 3;
        """

    /// The step from layout `n` to `n + 1`, by `n`. Layout 2 adds preempted attempts (they do
    /// not count against the limit), the next job id (ids are never reused, even once the
    /// newest jobs are pruned), and indexes for the retention's pruning.
    static let migrations: [Int: String] = [
        1: """
        ALTER TABLE jobs ADD COLUMN preemptions INTEGER NOT NULL DEFAULT 0;
        """ + indexesAndMeta + """
            INSERT INTO meta (key, value) SELECT 'next_job_id', COALESCE(MAX(id), 0) + 1 FROM jobs;
            PRAGMA user_version = 2;
            """
    ]

    /// A job's state as stored.
    enum State: Int64 {
        case queued = 0
        /// Handed to a worker, which may have started it.
        case handedOver = 1
        case running = 2
        case done = 3
        case failed = 4
        case cancelled = 5

        /// The states of a job a worker may have run without a recorded end, for SQL.
        static let inFlight = "\(State.handedOver.rawValue), \(State.running.rawValue)"
    }

    /// What a finished job produced, as stored in `out_kind` (the values in `out_a`, `out_b`,
    /// `out_seconds` and `out_text` depend on it).
    enum OutputKind: Int64 {
        /// `out_a`: the checksum's bits.
        case checksum = 1
        /// `out_a`: the number; `out_b`: its smallest factor.
        case primality = 2
        /// `out_a`: milliseconds slept.
        case slept = 3
        /// `out_a`: the exit code, `out_b`: the signal (either may be NULL), `out_seconds`,
        /// `out_text`: the output's tail.
        case command = 4
    }
}
