import CSQLite
import ConcurCore

extension JobJournal {
    /// How many unfinished jobs (queued, scheduled, waiting or in flight) the journal in
    /// `directory` holds: 0 when there is none. Reads without the journal's lock and changes
    /// nothing (a concurd about to join a shared queue asks, so that it never leaves such jobs
    /// behind unsaid).
    ///
    /// - Throws: ``JournalOpenError`` when a journal is there and cannot be read.
    package static func unfinishedJobs(in directory: String) throws(JournalOpenError) -> Int {
        let path = directory + "/" + fileName
        guard exists(path) else { return 0 }
        do {
            let database = try SQLiteDatabase(path: path, create: false)
            defer { database.close() }
            try database.execute("PRAGMA busy_timeout = 5000")
            guard try database.integer("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'jobs'") == 1 else {
                return 0
            }
            return Int(try database.integer("SELECT count(*) FROM jobs WHERE NOT (\(JobEncoding.State.finishedSQL))") ?? 0)
        } catch {
            throw JournalOpenError(unreadable: path, error)
        }
    }
}
