import ConcurCore
import ConcurProtocol
import ConcurRuntime
import Foundation
import Glibc
import Testing

@testable import ConcurJournal

/// What the journal refuses to open: files another user could have written, traces of a journal
/// that is gone, values no concurd writes.
@Suite("What the job journal does not trust", .serialized)
struct JournalTrustTests {
    /// A uid that is neither root nor ours (nobody's).
    static let foreign: uid_t = 65534

    /// A journal with one queued exec job, closed.
    static func journalWithExecJob() throws -> StateDirectory {
        let state = StateDirectory()
        let (journal, _) = try state.open()
        let supervisor = try idleSupervisor(journal)
        _ = try supervisor.pool.submit([JobSpec(.exec(argv: ["/bin/true"]))])
        journal.close()
        return state
    }

    static func refusal(_ state: StateDirectory) -> String? {
        // A child another test spawns at this moment holds a copy of every descriptor until it
        // execs (close-on-exec or not), the lock's too: "another concurd" then means that.
        for _ in 0..<50 {
            do {
                let (journal, _) = try state.open()
                journal.close()
                return nil
            } catch {
                let message = "\(error)"
                guard message.contains("another concurd") else { return message }
                usleep(20_000)
            }
        }
        return "the lock stayed taken"
    }

    @Test("a state directory of another user is refused, naming it and the fix", .enabled(if: getuid() == 0))
    func foreignDirectory() throws {
        let state = try Self.journalWithExecJob()
        #expect(chown(state.path, Self.foreign, Self.foreign) == 0)
        let message = try #require(Self.refusal(state))
        #expect(message.contains("\(state.path) belongs to another user (uid 65534)"), "\(message)")
        #expect(message.contains("chown root \(state.path)"), "\(message)")
    }

    @Test("a state directory others may write is refused", .enabled(if: getuid() == 0))
    func writableDirectory() throws {
        let state = try Self.journalWithExecJob()
        #expect(chmod(state.path, 0o777) == 0)
        let message = try #require(Self.refusal(state))
        #expect(message.contains("\(state.path) is writable by its group or by others (mode 777)"), "\(message)")
        #expect(message.contains("chmod go-w \(state.path)"), "\(message)")
        // A directory above it that others may write (without the sticky bit) is refused too.
        let parent = NSTemporaryDirectory() + "concur-open-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: parent) }
        #expect(chmod(parent, 0o777) == 0)
        #expect {
            _ = try JobJournal.open(
                directory: parent + "/state", maxAttempts: 3, retention: .init(count: 1, age: 1), clock: MonotonicClock())
        } throws: { error in "\(error)".contains("\(parent) is writable by its group or by others") }
    }

    @Test(
        "a journal, lock or write-ahead log of another user, or writable by others, is refused",
        .enabled(if: getuid() == 0), arguments: ["journal.sqlite", "journal.lock"])
    func foreignFiles(name: String) throws {
        let state = try Self.journalWithExecJob()
        let file = state.path + "/" + name
        #expect(chown(file, Self.foreign, Self.foreign) == 0)
        var message = try #require(Self.refusal(state))
        #expect(message.contains("\(file) belongs to another user (uid 65534)"), "\(message)")
        #expect(chown(file, 0, 0) == 0 && chmod(file, 0o666) == 0)
        message = try #require(Self.refusal(state))
        #expect(message.contains("\(file) is writable by its group or by others"), "\(message)")
    }

    @Test("a journal that is a symbolic link is refused")
    func linkedJournal() throws {
        let state = try Self.journalWithExecJob()
        try FileManager.default.moveItem(atPath: state.journal, toPath: state.path + "/elsewhere.sqlite")
        try FileManager.default.createSymbolicLink(atPath: state.journal, withDestinationPath: state.path + "/elsewhere.sqlite")
        let message = try #require(Self.refusal(state))
        #expect(message.contains("\(state.journal) is a symbolic link"), "\(message)")
    }

    @Test("an empty journal file is refused as damaged, not started empty")
    func emptyJournal() throws {
        let state = try Self.journalWithExecJob()
        #expect(truncate(state.journal, 0) == 0)
        let message = try #require(Self.refusal(state))
        #expect(message.contains("is empty (0 bytes) where a journal was"), "\(message)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: state.journal)).isEmpty, "the file was changed")
    }

    @Test("a missing journal where one was (the lock names a concurd, or its WAL is there) is refused")
    func missingJournal() throws {
        let state = try Self.journalWithExecJob()
        try FileManager.default.removeItem(atPath: state.journal)
        let message = try #require(Self.refusal(state))
        #expect(message.contains("\(state.journal) is missing, but a journal was here"), "\(message)")
        #expect(message.contains("journal.lock names the concurd (pid \(getpid())) that last used it"), "\(message)")
        // Removing what is left, as the message says, starts an empty journal.
        try FileManager.default.removeItem(atPath: state.path + "/journal.lock")
        let (journal, recovery) = try state.open()
        journal.close()
        #expect(recovery.queued == 0 && recovery.finished == 0)
    }

    @Test("a fresh state directory starts an empty journal, made whole before it is in place")
    func freshDirectory() throws {
        let state = StateDirectory()
        let (journal, recovery) = try state.open()
        journal.close()
        #expect(recovery.queued == 0 && recovery.nextJobID == 1)
        #expect(!FileManager.default.fileExists(atPath: state.journal + ".new"))
        var info = stat()
        #expect(stat(state.path, &info) == 0 && info.st_mode & 0o777 == 0o700)
    }

    @Test("an immutable journal is not to be moved aside: the message says how to make it writable", .enabled(if: getuid() == 0))
    func immutableJournal() throws {
        let state = try Self.journalWithExecJob()
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: state.journal + suffix) }
        let marked = try Process.run(URL(fileURLWithPath: "/usr/bin/chattr"), arguments: ["+i", state.journal])
        marked.waitUntilExit()
        try #require(marked.terminationStatus == 0, "chattr +i is not supported here")
        defer {
            let cleared = try? Process.run(URL(fileURLWithPath: "/usr/bin/chattr"), arguments: ["-i", state.journal])
            cleared?.waitUntilExit()
        }
        let message = try #require(Self.refusal(state))
        #expect(message.contains("cannot be written"), "\(message)")
        #expect(message.contains("do not move it aside"), "\(message)")
        #expect(message.contains("chattr -i \(state.journal)"), "\(message)")
        #expect(!message.contains("mv "), "\(message)")
    }

    @Test("a journal whose ids have a huge gap starts at once with its jobs (memory follows the jobs, not the ids)")
    func gapInIDs() throws {
        let state = try Self.journalWithExecJob()
        try state.sql(
            """
            INSERT INTO jobs (id, spec, state, attempts, preemptions, submitted_at)
                VALUES (1099511627776, '{"kind":"sleep","ms":1}', 0, 0, 0, unixepoch());
            """)
        let started = ContinuousClock.now
        let (journal, recovery) = try state.open()
        #expect(recovery.queued == 2 && recovery.nextJobID == 1_099_511_627_777)
        let supervisor = try idleSupervisor(journal)
        #expect(supervisor.status().queued == 2)
        #expect(supervisor.pool.read { $0.jobs(state: .queued, limit: 10) }.map(\.id) == [1, 1_099_511_627_776])
        #expect(ContinuousClock.now - started < .seconds(5))
        journal.close()
    }

    /// Rows as damage or a hostile edit could leave them, and the field each refusal names.
    static let outOfRange: [(sql: String, names: String)] = [
        ("UPDATE jobs SET attempts = -5 WHERE id = 1", "job 1: attempts is -5"),
        ("UPDATE jobs SET id = 9223372036854775807 WHERE id = 1", "id is 9223372036854775807"),
        ("UPDATE jobs SET state = 9 WHERE id = 1", "job 1: state is 9"),
        ("UPDATE jobs SET preemptions = 7, attempts = 2 WHERE id = 1", "job 1: preemptions is 7"),
        ("UPDATE jobs SET submitted_at = 1e300 WHERE id = 1", "job 1: submitted_at is 1e+300"),
        (
            "UPDATE jobs SET state = 3, worker = 99999999999, finished_at = unixepoch() WHERE id = 1",
            "job 1: worker is 99999999999"
        ),
        ("UPDATE jobs SET state = 3, model = 'fibres', finished_at = unixepoch() WHERE id = 1", "job 1: model is 'fibres'"),
        ("UPDATE jobs SET state = 3, out_kind = 7, finished_at = unixepoch() WHERE id = 1", "job 1: out_kind is 7"),
        (
            "UPDATE jobs SET state = 3, out_kind = 4, out_a = 300, out_seconds = 1, finished_at = unixepoch() WHERE id = 1",
            "out_a (exit code) is 300"
        ),
        ("UPDATE jobs SET state = 1, attempts = -1 WHERE id = 1", "job 1: attempts is -1"),
        ("UPDATE meta SET value = -1 WHERE key = 'next_job_id'", "next_job_id (table meta) is -1"),
        ("UPDATE jobs SET spec = '{\"kind\":\"sleep\",\"ms\":-4}' WHERE id = 1", "job 1 has an unreadable spec"),
    ]

    @Test("a value out of range in the journal stops the start, naming the job and the field", arguments: outOfRange)
    func valuesOutOfRange(_ row: (sql: String, names: String)) throws {
        let state = try Self.journalWithExecJob()
        try state.sql(row.sql)
        let message = try #require(Self.refusal(state))
        #expect(message.contains(row.names), "\(message)")
        #expect(message.contains("concurd will not start without the jobs it may hold"), "\(message)")
    }
}
