import ConcurCore

/// The layouts of the journal file, oldest first, and the steps from each to the next.
///
/// `PRAGMA user_version` holds the layout's number. A journal with an older number is copied
/// aside (`journal.sqlite.v1.bak`) and migrated in one transaction at start; a newer one is
/// refused (an older concurd must not guess at it).
enum JournalSchema {
    /// The layout this build writes.
    static let current = 4

    /// Layout 1, the first: one row per job (`state` and `out_kind` hold ``JobEncoding`` codes).
    /// Kept to test the migration from it.
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
        CREATE INDEX jobs_finished_by_id ON jobs (id) WHERE \(JobEncoding.State.finishedSQL);
        CREATE INDEX jobs_finished_by_time ON jobs (finished_at) WHERE \(JobEncoding.State.finishedSQL);
        """

    /// The step from layout `n` to `n + 1`, by `n`. Layout 2 adds preempted attempts (they do
    /// not count against the limit), the next job id (ids are never reused, even once the
    /// newest jobs are pruned), and indexes for the retention's pruning. Layout 3 adds the
    /// reason of a cancel asked for while a worker held the job: a job cut short by a stop
    /// with one is not run again. Layout 4 adds the history of a job's failed and retried runs
    /// (a JSON array of `Attempt` objects, Unix times).
    static let migrations: [Int: String] = [
        1: """
        ALTER TABLE jobs ADD COLUMN preemptions INTEGER NOT NULL DEFAULT 0;
        """ + indexesAndMeta + """
            INSERT INTO meta (key, value) SELECT 'next_job_id', COALESCE(MAX(id), 0) + 1 FROM jobs;
            PRAGMA user_version = 2;
            """,
        2: """
        ALTER TABLE jobs ADD COLUMN cancel_reason TEXT;
        PRAGMA user_version = 3;
        """,
        3: """
        ALTER TABLE jobs ADD COLUMN history TEXT;
        PRAGMA user_version = 4;
        """,
    ]
}
