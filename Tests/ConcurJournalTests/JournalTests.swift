import ConcurCore
import ConcurProtocol
import ConcurRuntime
import ConcurTestSupport
import Foundation
import Glibc
import Testing

@testable import ConcurJournal

/// A fresh state directory for one test, removed afterwards.
final class StateDirectory {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "concur-journal-\(UUID().uuidString.prefix(8))"
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    var journal: String { path + "/" + JobJournal.fileName }

    func open(maxAttempts: Int = 3, retention: JobJournal.Retention = .init(count: 1000, age: 86_400)) throws -> (
        JobJournal, JobJournal.Recovery
    ) {
        try JobJournal.open(directory: path, maxAttempts: maxAttempts, retention: retention, clock: MonotonicClock())
    }

    /// Runs SQL on the journal file directly (the journal must be closed).
    func sql(_ text: String) throws {
        let database = try SQLiteDatabase(path: journal)
        try database.execute(text)
    }
}

/// A pool with no workers over `journal`, holding what it restored: changes are collected and
/// written, nothing runs.
func idleSupervisor(_ journal: JobJournal) throws -> Supervisor {
    let supervisor = Supervisor(
        configuration: .init(limits: .init(maxQueue: 1000, allowExec: true)), models: [], version: "test", store: journal)
    try journal.follow(supervisor.pool)
    return supervisor
}

@Suite("The job journal", .serialized)
struct JournalTests {
    @Test("a submit returns once its jobs are in the file; the next start queues them again with the same ids")
    func acceptedJobsSurvive() throws {
        let state = StateDirectory()
        do {
            let (journal, recovery) = try state.open()
            #expect(recovery.queued == 0 && recovery.nextJobID == 1)
            let supervisor = try idleSupervisor(journal)
            let (ids, _) = try supervisor.pool.submit([
                JobSpec(.prime(n: 97)), JobSpec(.sleep(milliseconds: 5), timeout: 2), JobSpec(.exec(argv: ["/bin/true", "x"])),
            ])
            #expect(ids == 1..<4)
            // Read by another connection while the journal is open: the rows are committed.
            let database = try SQLiteDatabase(path: state.journal)
            #expect(try database.integer("SELECT COUNT(*) FROM jobs WHERE state = 0") == 3)
            journal.close()
        }
        let (journal, recovery) = try state.open()
        #expect(recovery.queued == 3 && recovery.inFlight == 0 && recovery.nextJobID == 4)
        #expect(
            recovery.records.map(\.spec) == [
                JobSpec(.prime(n: 97)), JobSpec(.sleep(milliseconds: 5), timeout: 2), JobSpec(.exec(argv: ["/bin/true", "x"])),
            ])
        let supervisor = try idleSupervisor(journal)
        #expect(supervisor.status().queued == 3)
        #expect(supervisor.pool.read { $0.jobs(state: .queued, limit: 10) }.map(\.id) == [1, 2, 3])
        let (next, _) = try supervisor.pool.submit([JobSpec(.fail)])
        #expect(next == 4..<5)
        journal.close()
    }

    @Test("jobs in flight at a crash are queued again; a running one whose attempts ran out fails with the reason")
    func inFlightAfterCrash() throws {
        let state = StateDirectory()
        do {
            let (journal, _) = try state.open()
            let supervisor = try idleSupervisor(journal)
            _ = try supervisor.pool.submit(Array(repeating: JobSpec(.sleep(milliseconds: 1)), count: 4))
            journal.close()
        }
        // As a kill -9 leaves it: 1 handed over, 2 running its second attempt, 3 running its
        // third (two preempted: they do not count), 4 queued.
        try state.sql(
            """
            UPDATE jobs SET state = 1 WHERE id = 1;
            UPDATE jobs SET state = 2, attempts = 2, worker = 1, model = 'threads', started_at = 1 WHERE id = 2;
            UPDATE jobs SET state = 2, attempts = 3, preemptions = 2, worker = 2, model = 'tasks' WHERE id = 3;
            """)
        do {
            let (journal, recovery) = try state.open(maxAttempts: 2)
            defer { journal.close() }
            #expect(recovery.inFlight == 3)
            #expect(recovery.failedAfterStop == 1)
            #expect(recovery.queued == 3)
            let failed = try #require(recovery.records.first { $0.id == 2 })
            #expect(failed.state == .failed)
            #expect(failed.error?.contains("concurd stopped without a drain") == true)
            #expect(failed.error?.contains("attempt 2 of 2") == true)
            let third = try #require(recovery.records.first { $0.id == 3 })
            #expect(third.state == .queued && third.attempts == 3 && third.preemptions == 2)
            #expect(recovery.summary.contains("3 in flight when concurd last stopped"))
        }
    }

    @Test("a drain leaves no job running: finished ones are written, interrupted and queued ones wait for the next start")
    func drainKeepsUnfinished() throws {
        let state = StateDirectory()
        do {
            let (journal, _) = try state.open()
            let supervisor = Supervisor(
                configuration: .init(workers: 3, limits: .init(maxQueue: 1000)), models: [ThreadModel()], version: "test",
                store: journal)
            try journal.follow(supervisor.pool)
            try supervisor.start(workers: 3)
            _ = try supervisor.pool.submit([JobSpec(.sleep(milliseconds: 60_000))])
            _ = try supervisor.pool.submit([JobSpec(.sleep(milliseconds: 60_000))])
            #expect(eventually { supervisor.status().running == 2 })
            _ = try supervisor.pool.submit(
                Array(repeating: JobSpec(.sleep(milliseconds: 1)), count: 20) + Array(repeating: JobSpec(.fail), count: 30))
            #expect(eventually { supervisor.status().totals.done == 20 && supervisor.status().totals.failed == 30 })
            _ = supervisor.pool.setPaused(true)
            _ = try supervisor.pool.submit(Array(repeating: JobSpec(.fail), count: 30))
            #expect(supervisor.drain(timeout: 1) == .cancelled)
            #expect(supervisor.pool.read { $0.keptForRestart } == 32)
            journal.close()
        }
        let database = try SQLiteDatabase(path: state.journal)
        #expect(try database.integer("SELECT COUNT(*) FROM jobs WHERE state IN (1, 2)") == 0)
        #expect(try database.integer("SELECT COUNT(*) FROM jobs WHERE state = 3") == 20)
        #expect(try database.integer("SELECT COUNT(*) FROM jobs WHERE state = 4") == 30)
        // The two long sleeps were interrupted: queued, their attempt not counted.
        #expect(try database.integer("SELECT COUNT(*) FROM jobs WHERE state = 0 AND preemptions = 1") == 2)
        #expect(try database.integer("SELECT COUNT(*) FROM jobs WHERE state = 0") == 32)
    }

    @Test("finished jobs beyond the retention's count or age are pruned")
    func retention() throws {
        let state = StateDirectory()
        do {
            let (journal, _) = try state.open()
            let supervisor = try idleSupervisor(journal)
            _ = try supervisor.pool.submit(Array(repeating: JobSpec(.fail), count: 10))
            journal.close()
        }
        let now = Date().timeIntervalSince1970
        try state.sql(
            """
            UPDATE jobs SET state = 3, out_kind = 3, out_a = 1, finished_at = \(now) WHERE id <= 8;
            UPDATE jobs SET finished_at = \(now - 7200) WHERE id <= 2;
            """)
        let (journal, recovery) = try state.open(retention: .init(count: 5, age: 3600))
        journal.close()
        #expect(recovery.finished == 5)
        #expect(recovery.records.filter { $0.state == .done }.map(\.id) == [4, 5, 6, 7, 8])
        #expect(recovery.records.first { $0.id == 8 }?.output == .slept(milliseconds: 1))
        #expect(recovery.queued == 2)
        let database = try SQLiteDatabase(path: state.journal)
        #expect(try database.integer("SELECT COUNT(*) FROM jobs") == 7)
    }

    @Test("a file that is not a journal stops the start with what to do; it is left as it was")
    func corrupt() throws {
        let state = StateDirectory()
        try FileManager.default.createDirectory(atPath: state.path, withIntermediateDirectories: true)
        let garbage = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        try garbage.write(to: URL(fileURLWithPath: state.journal))
        #expect {
            _ = try state.open()
        } throws: { error in
            let text = "\(error)"
            return text.contains("is damaged or not a job journal") && text.contains("mv \(state.journal)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: state.journal)) == garbage)
    }

    @Test("a journal whose pages are damaged is refused, not started empty")
    func damagedPages() throws {
        let state = StateDirectory()
        do {
            let (journal, _) = try state.open()
            let supervisor = try idleSupervisor(journal)
            for _ in 0..<20 {
                _ = try supervisor.pool.submit(
                    Array(repeating: JobSpec(.exec(argv: ["/bin/echo", String(repeating: "x", count: 200)])), count: 50))
            }
            journal.close()
        }
        // Scribble over the middle of the file (past the header page).
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: state.journal))
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: size / 2)
        try handle.write(contentsOf: Data(repeating: 0xA5, count: 8192))
        try handle.close()
        #expect {
            _ = try state.open()
        } throws: { error in "\(error)".contains("concurd will not start without the jobs it may hold") }
    }

    @Test("a journal from a newer concurd is refused")
    func newer() throws {
        let state = StateDirectory()
        do {
            let (journal, _) = try state.open()
            journal.close()
        }
        try state.sql("PRAGMA user_version = 99")
        #expect {
            _ = try state.open()
        } throws: { error in "\(error)".contains("written by a newer concurd (journal layout 99") }
    }

    @Test("a layout 1 journal is copied aside and migrated; its jobs are kept")
    func migration() throws {
        let state = StateDirectory()
        try FileManager.default.createDirectory(atPath: state.path, withIntermediateDirectories: true)
        try state.sql(
            JournalSchema.version1 + """
                INSERT INTO jobs (id, spec, state, attempts, submitted_at) VALUES
                    (7, '{"kind":"prime","n":97}', 0, 0, 1700000000),
                    (8, '{"kind":"sleep","ms":5}', 2, 1, 1700000000);
                INSERT INTO jobs (id, spec, state, attempts, submitted_at, finished_at, out_kind, out_a, out_b) VALUES
                    (5, '{"kind":"prime","n":91}', 3, 1, 1700000000, \(Date().timeIntervalSince1970), 2, 91, 7);
                """)
        let (journal, recovery) = try state.open()
        #expect(recovery.migratedFrom == 1)
        #expect(recovery.queued == 2 && recovery.inFlight == 1 && recovery.finished == 1)
        #expect(recovery.nextJobID == 9)
        #expect(recovery.records.first { $0.id == 5 }?.output == .primality(n: 91, factor: 7))
        #expect(FileManager.default.fileExists(atPath: state.journal + ".v1.bak"))
        let supervisor = try idleSupervisor(journal)
        #expect(try supervisor.pool.submit([JobSpec(.fail)]).ids == 9..<10)
        journal.close()
        let database = try SQLiteDatabase(path: state.journal)
        #expect(try database.integer("PRAGMA user_version") == Int64(JournalSchema.current))
    }

    @Test("a second concurd on the same state directory is refused, naming the first one's pid")
    func locked() throws {
        let state = StateDirectory()
        let (journal, _) = try state.open()
        defer { journal.close() }
        #expect {
            _ = try state.open()
        } throws: { error in "\(error)".contains("another concurd (pid \(getpid())) is using the job journal") }
    }

    @Test("a state directory that cannot be made is refused with what to do")
    func badDirectory() throws {
        let file = NSTemporaryDirectory() + "concur-journal-file-\(UUID().uuidString.prefix(8))"
        _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect {
            _ = try JobJournal.open(directory: file, maxAttempts: 3, retention: .init(count: 1, age: 1), clock: MonotonicClock())
        } throws: { error in "\(error)".contains("is not a directory") }
        #expect {
            _ = try JobJournal.open(
                directory: file + "/below", maxAttempts: 3, retention: .init(count: 1, age: 1), clock: MonotonicClock())
        } throws: { error in "\(error)".contains("cannot create the state directory") }
    }
}
