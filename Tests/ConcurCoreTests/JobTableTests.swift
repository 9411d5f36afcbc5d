import ConcurProtocol
import Testing

@testable import ConcurCore

@Suite("The job table")
struct JobTableTests {
    @Test("a jump in ids far past the ring's end costs the records, not the span (a journal's ids after pruning)")
    func gapInIDs() {
        var table = JobTable(retainFinished: 10)
        let far: JobID = 1 << 40
        table.insert(id: 1, spec: JobSpec(.fail), submittedAt: 1)
        table.insert(id: 2, spec: JobSpec(.fail), submittedAt: 1)
        table.markFinished(2, outcome: .failed("no"), at: 2)
        table.insert(id: far, spec: JobSpec(.sleep(milliseconds: 1)), submittedAt: 3)
        table.insert(id: far + 1, spec: JobSpec(.fail), submittedAt: 3)
        #expect(table.count == 4)
        #expect(table.job(1)?.spec == JobSpec(.fail) && table.job(far)?.spec == JobSpec(.sleep(milliseconds: 1)))
        #expect(table[2]?.state == .failed && table[2]?.error == "no")
        table.markRunning(1, attempts: 1, worker: 1, model: .threads, at: 4)
        table.markFinished(1, outcome: .done(.checksum(7)), at: 5)
        #expect(table[1]?.state == .done && table[1]?.output == .checksum(7))
        #expect(table.recentlyFinished(state: nil, limit: 5).map(\.id) == [1, 2])
    }

    @Test("a pool beside a busier one: gaps of other pools' ids cost the records held, not the span of ids")
    func gapsOfOtherPools() {
        var table = JobTable(retainFinished: 10_000)
        var id: JobID = 1
        for round in 0..<200 {
            table.insert(id: id, spec: JobSpec(.cpu(size: 0)), submittedAt: 1)
            if round % 2 == 0 { table.markFinished(id, outcome: .done(.checksum(0)), at: 2) }
            id += 65_000
        }
        #expect(table.count == 200)
        #expect(table.ringSlots <= 2 * 200 + JobTable.gapFill, "\(table.ringSlots) slots for 200 records")
        #expect(table[1]?.state == .done && table[65_001]?.state == .queued && table[id - 65_000] != nil)
        // Consecutive batches with small gaps (two busy pools alternating) stay in the ring.
        var busy = JobTable(retainFinished: 100_000)
        var next: JobID = 1
        for _ in 0..<20 {
            for offset in 0..<1_000 { busy.insert(id: next + JobID(offset), spec: JobSpec(.cpu(size: 0)), submittedAt: 1) }
            next += 2_000
        }
        #expect(busy.count == 20_000 && busy.ringSlots <= 40_000)
        #expect(busy[1]?.state == .queued && busy[next - 1_001]?.state == .queued)
    }

    @Test("the recently finished of one state, newest first, as jobs of other states come and go (retention by count and by age)")
    func recentlyFinishedByState() {
        var table = JobTable(retainFinished: 6)
        let outcomes: [JobOutcome] = [.done(.checksum(1)), .failed("no"), .cancelled("stop"), .done(.checksum(2))]
        for id in JobID(1)...20 {
            table.insert(id: id, spec: JobSpec(.fail), submittedAt: id)
            table.markFinished(id, outcome: outcomes[Int(id) % 4], at: id * 10)
        }
        // Kept: 15...20 (six). By state: done 15, 16, 19, 20 (ids 0 and 3 mod 4), failed 17, cancelled 18.
        #expect(table.recentlyFinished(state: .done, limit: 10).map(\.id) == [20, 19, 16, 15])
        #expect(table.recentlyFinished(state: .done, limit: 2).map(\.id) == [20, 19])
        #expect(table.recentlyFinished(state: .failed, limit: 10).map(\.id) == [17])
        #expect(table.recentlyFinished(state: .cancelled, limit: 10).map(\.id) == [18])
        #expect(table.recentlyFinished(state: nil, limit: 3).map(\.id) == [20, 19, 18])
        table.pruneFinished(before: 185)  // 15...18 finished at 150...180
        #expect(table.recentlyFinished(state: .done, limit: 10).map(\.id) == [20, 19])
        #expect(
            table.recentlyFinished(state: .failed, limit: 10).isEmpty
                && table.recentlyFinished(state: .cancelled, limit: 10).isEmpty)
        #expect(table.recentlyFinished(state: .queued, limit: 10).isEmpty)
    }

    @Test("keeps only the most recent finished records")
    func retention() {
        var table = JobTable(retainFinished: 2)
        for id in 1...4 as ClosedRange<JobID> { table.insert(id: id, spec: JobSpec(.fail), submittedAt: 0) }
        for id in 1...3 as ClosedRange<JobID> { table.markFinished(id, outcome: .failed("x"), at: 1) }
        #expect(table[1] == nil)
        #expect(table[2]?.state == .failed)
        #expect(table[3]?.state == .failed)
        #expect(table[4]?.state == .queued)
        #expect(table.count == 3)
        #expect(table.recentlyFinished(state: nil, limit: 5).map(\.id) == [3, 2])
        #expect(table.newest(limit: 10, below: 5).map(\.id) == [4, 3, 2])
    }

    @Test("keeps every kind of output and error, and what a job needs to run again")
    func contents() {
        var table = JobTable(retainFinished: 10)
        let outputs: [JobOutcome] = [
            .done(.checksum(7)), .done(.primality(n: 9, factor: 3)), .done(.slept(milliseconds: 5)),
            .failed("exit 2", output: .command(exitCode: 2, signal: nil, seconds: 0.5, output: "oops")), .cancelled("stop"),
        ]
        for (offset, outcome) in outputs.enumerated() {
            let id = JobID(offset + 1)
            table.insert(id: id, spec: JobSpec(.cpu(size: 1), timeout: 3), submittedAt: 10)
            table.markRunning(id, attempts: 2, worker: 4, model: .processes, at: 20)
            table.markFinished(id, outcome: outcome, at: 30)
        }
        #expect(table[1]?.output == .checksum(7) && table[1]?.worker == 4 && table[1]?.model == .processes)
        #expect(table[2]?.output?.result.summary == "composite (divisible by 3)")
        #expect(table[3]?.output == .slept(milliseconds: 5) && table[3]?.attempts == 2)
        #expect(table[4]?.state == .failed && table[4]?.error == "exit 2" && table[4]?.output?.result.output == "oops")
        #expect(table[5]?.state == .cancelled && table[5]?.error == "stop" && table[5]?.output == nil)
        #expect(table[1]?.startedAt == 20 && table[1]?.finishedAt == 30 && table[1]?.submittedAt == 10)
        table.insert(id: 6, spec: JobSpec(.prime(n: 5), timeout: 1), submittedAt: 40)
        table.markRunning(6, attempts: 1, worker: 1, model: .threads, at: 41)
        table.markRequeued(6, attempts: 0)
        #expect(table.job(6) == Job(id: 6, spec: JobSpec(.prime(n: 5), timeout: 1), attempts: 0, submittedAt: 40))
        #expect(table[6]?.state == .queued)
    }

    @Test("stays bounded while one job stays unfinished for long, and still finds it")
    func straggler() {
        var table = JobTable(retainFinished: 100)
        table.insert(id: 1, spec: JobSpec(.sleep(milliseconds: 1)), submittedAt: 0)
        for id in 2...300_000 as ClosedRange<JobID> {
            table.insert(id: id, spec: JobSpec(.fail), submittedAt: 0)
            table.markFinished(id, outcome: .failed("x"), at: 1)
        }
        #expect(table.count == 101)
        #expect(table[1]?.state == .queued)
        #expect(table[299_999]?.state == .failed)
        #expect(table[1_000] == nil)
        table.markFinished(1, outcome: .done(.slept(milliseconds: 1)), at: 2)
        #expect(table[1]?.state == .done)
    }
}
