import ConcurCore
import ConcurProtocol
import ConcurRuntime
import ConcurTestSupport
import Foundation
import Glibc
import Synchronization
import Testing

@testable import ConcurJournal

/// A journal that cannot record: a full disk (it waits, and carries on once there is room), a
/// file deleted under it (it stops keeping jobs, and says so).
@Suite("The job journal when it cannot record", .serialized)
struct JournalFailureTests {
    /// The journal's events, as the daemon would log them.
    final class Events: Sendable {
        private let events = Mutex<[JobJournal.Event]>([])
        func append(_ event: JobJournal.Event) { events.withLock { $0.append(event) } }
        var all: [JobJournal.Event] { events.withLock { $0 } }
        var failures: [String] {
            all.compactMap { event in
                switch event {
                case .failed(let failure, let unrecorded), .stillFailing(let failure, _, let unrecorded):
                    "\(failure.reason) | \(unrecorded)"
                default: nil
                }
            }
        }
        var recovered: Bool { all.contains { if case .recovered = $0 { true } else { false } } }
        var lost: [String] { all.compactMap { if case .lost(let text) = $0 { text } else { nil } } }
    }

    /// What a failed expectation shows: the pool's counts and each worker's state.
    static func describe(_ supervisor: Supervisor) -> String {
        let status = supervisor.status()
        let workers = supervisor.pool.read { state in
            state.workers.values.sorted { $0.id < $1.id }.map {
                "worker \($0.id): ready \($0.ready), job \($0.job.map(String.init) ?? "-"), retiring \($0.retiring), waiting \($0.waiting)"
            }
        }
        return "\(status.phase) queued \(status.queued) running \(status.running) totals \(status.totals); \(workers)"
    }

    static func open(_ directory: String, events: Events) throws -> (JobJournal, Supervisor) {
        let (journal, _) = try JobJournal.open(
            directory: directory, maxAttempts: 3, retention: .init(count: 1000, age: 86_400), clock: MonotonicClock(),
            onEvent: { events.append($0) })
        let supervisor = Supervisor(
            configuration: .init(workers: 2, limits: .init(maxQueue: 1000)), models: [ThreadModel()], version: "test",
            store: journal)
        try journal.follow(supervisor.pool)
        try supervisor.start(workers: 2)
        return (journal, supervisor)
    }

    @Test(
        "a full disk: submits are refused, workers start nothing, finishes wait; with room again everything is recorded",
        .enabled(if: getuid() == 0))
    func fullDisk() throws {
        let disk = try TinyDisk(bytes: 2 << 20)
        let directory = disk.path + "/state"
        let events = Events()
        do {
            let (journal, supervisor) = try Self.open(directory, events: events)
            _ = try supervisor.pool.submit(Array(repeating: JobSpec(.sleep(milliseconds: 1)), count: 5))
            #expect(eventually { supervisor.status().totals.done == 5 })
            // One job runs while the disk fills: it finishes while nothing can be recorded.
            _ = try supervisor.pool.submit([JobSpec(.sleep(milliseconds: 400))])
            #expect(eventually { supervisor.status().running == 1 })
            // Handed over is not started: the worker starts it once the journal holds the
            // hand-over (a disk filled before that would rightly have it given back unstarted).
            try journal.waitUntilDurable(supervisor.pool.read { $0.journalChangeCount })
            disk.fill()
            var refusal = ""
            do {
                _ = try supervisor.pool.submit(Array(repeating: JobSpec(.sleep(milliseconds: 1)), count: 4))
            } catch {
                refusal = "\(error)"
            }
            #expect(refusal.contains("cannot record"), "\(refusal)")
            #expect(refusal.contains("jobs 7 to 10 were accepted but are not in the journal yet"), "\(refusal)")
            let status = supervisor.status()
            #expect(status.phase == .degraded)
            #expect(status.warnings.contains { $0.contains("cannot record") && $0.contains("free space") }, "\(status.warnings)")
            #expect(Supervisor.statusLine(status).hasPrefix("degraded, the job journal cannot record"))
            // The log names what waits, by id, as it comes (within a retry).
            #expect(eventually(5) { events.failures.contains { $0.contains("accepted 7-10") } }, "\(events.failures)")
            // A new submit is refused outright.
            #expect {
                _ = try supervisor.pool.submit([JobSpec(.fail)])
            } throws: { error in "\(error)".contains("no job was accepted") }
            // The running job finishes; the four queued ones do not start.
            #expect(eventually { supervisor.status().totals.done == 6 }, "\(Self.describe(supervisor))")
            Thread.sleep(forTimeInterval: 0.3)
            #expect(
                supervisor.status().queued == 4 && supervisor.status().running == 0, "\(Self.describe(supervisor))")

            disk.free()
            #expect(eventually(10) { supervisor.status().phase == .serving })
            #expect(eventually { supervisor.status().totals.done == 10 })
            #expect(events.recovered)
            #expect(supervisor.drain(timeout: 5) == .drained)
            journal.close()
            #expect(events.lost.isEmpty, "\(events.lost)")
        }
        // Everything reached the file: nothing runs again after a restart.
        let (journal, recovery) = try JobJournal.open(
            directory: directory, maxAttempts: 3, retention: .init(count: 1000, age: 86_400), clock: MonotonicClock())
        journal.close()
        #expect(recovery.queued == 0 && recovery.inFlight == 0 && recovery.finished == 10, "\(recovery.summary)")
    }

    @Test(
        "a stop while the disk is still full names what the restart will not see, and what will run again",
        .enabled(if: getuid() == 0))
    func stopWhileFull() throws {
        let disk = try TinyDisk(bytes: 2 << 20)
        let events = Events()
        let (journal, supervisor) = try Self.open(disk.path + "/state", events: events)
        _ = try supervisor.pool.submit([JobSpec(.sleep(milliseconds: 300))])
        #expect(eventually { supervisor.status().running == 1 })
        try journal.waitUntilDurable(supervisor.pool.read { $0.journalChangeCount })
        disk.fill()
        // Accepted in memory, never recorded; and the running job finishes unrecorded.
        #expect(throws: SubmitError.self) { _ = try supervisor.pool.submit([JobSpec(.fail), JobSpec(.fail)]) }
        #expect(eventually { supervisor.status().totals.done == 1 }, "\(Self.describe(supervisor))")
        _ = supervisor.drain(timeout: 5)
        journal.close()
        let lost = try #require(events.lost.first, "\(events.all)")
        #expect(lost.contains("jobs 2-3 are not in the journal and will not run after the restart"), "\(lost)")
        #expect(lost.contains("jobs 1 finished but will run again after the restart"), "\(lost)")
    }

    @Test("a journal file deleted while it runs: submits are refused, and the stop says what was not kept")
    func deletedFile() throws {
        let state = StateDirectory()
        let events = Events()
        let (journal, supervisor) = try Self.open(state.path, events: events)
        _ = try supervisor.pool.submit([JobSpec(.sleep(milliseconds: 1))])
        #expect(eventually { supervisor.status().totals.done == 1 })
        try FileManager.default.removeItem(atPath: state.path)
        #expect(eventually(5) { journal.failure != nil })
        #expect(journal.failure?.reason.contains("was deleted") == true, "\(journal.failure?.reason ?? "")")
        #expect(supervisor.status().phase == .degraded)
        #expect {
            _ = try supervisor.pool.submit([JobSpec(.fail)])
        } throws: { error in "\(error)".contains("can keep no job any more") }
        _ = supervisor.drain(timeout: 5)
        journal.close()
        #expect(events.failures.contains { $0.contains("was deleted") }, "\(events.all)")
    }

    @Test("a journal file replaced by another is noticed as well")
    func replacedFile() throws {
        let state = StateDirectory()
        let events = Events()
        let (journal, supervisor) = try Self.open(state.path, events: events)
        try FileManager.default.moveItem(atPath: state.journal, toPath: state.journal + ".old")
        try Data("not the journal".utf8).write(to: URL(fileURLWithPath: state.journal))
        #expect(eventually(5) { journal.failure?.reason.contains("was replaced by another file") == true })
        _ = supervisor.drain(timeout: 5)
        journal.close()
    }

    @Test("the unrecorded changes are named by job, with ranges")
    func summaries() {
        let spec = JobSpec(.fail)
        let record = JobRecord(id: 3, spec: spec, state: .done, attempts: 1, submittedAt: 1)
        let changes: [JournalChange] = [
            .accepted(7, spec, submittedAt: 1), .accepted(8, spec, submittedAt: 1), .accepted(10, spec, submittedAt: 1),
            .claimed(4, by: 1), .finished(record),
        ]
        #expect(JournalChange.summary(of: changes) == "accepted 7-8, 10; handed over 4; finished 3")
        let consequences = JournalChange.consequences(of: changes)
        #expect(consequences.contains("jobs 7-8, 10 are not in the journal and will not run after the restart"))
        #expect(consequences.contains("jobs 3 finished but will run again after the restart"))
        #expect(consequences.contains("jobs 4 go back to the queue"))
        #expect(JournalChange.summary(of: []) == "nothing")
    }
}
