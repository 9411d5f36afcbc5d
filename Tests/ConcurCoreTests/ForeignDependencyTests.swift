import ConcurProtocol
import ConcurTestSupport
import Testing

@testable import ConcurCore

/// Dependencies across pools, with two state machines wired by hand the way the daemon wires
/// them: a shared id space (`allocate`), the other pool's states (`foreign`), and each
/// `dependencyEnded` carried to the other's `settleForeign`.
@Suite("Jobs that run after jobs of another pool")
struct ForeignDependencyTests {
    /// Two pools with one worker each and one id space.
    struct Pair {
        var a: PoolStateMachine
        var b: PoolStateMachine
        var next: JobID = 1
        /// Ends announced and not yet carried, as (from a?, id, state).
        var announced: [(fromA: Bool, id: JobID, state: JobState)] = []

        init() throws {
            a = try PoolFixture.pool(workers: 1, maxQueue: 10_000)
            b = try PoolFixture.pool(workers: 1, maxQueue: 10_000)
        }

        /// Submits to A (or B), reading the other's states as the daemon does: expect, then
        /// ask, then submit.
        mutating func submit(_ specs: [JobSpec], toA: Bool = true, now: UInt64 = 1) throws(SubmitError) -> Range<JobID> {
            var (target, other) = toA ? (a, b) : (b, a)
            defer {
                if toA { (a, b) = (target, other) } else { (b, a) = (target, other) }
            }
            let wanted = Set(specs.flatMap(\.after)).filter { !target.holds($0) }
            target.expectForeign(wanted)
            var foreign: [JobID: JobState] = [:]
            for id in wanted { if let state = other.awaitFromOutside(id) { foreign[id] = state } }
            target.forgetExpected(wanted.filter { foreign[$0] == nil })
            let first = next
            let result = try target.submit(specs, now: now, allocate: { _ in first }, foreign: foreign)
            next = result.ids.upperBound
            for case .dependencyEnded(let id, let state) in result.actions { announced.append((toA, id, state)) }
            return result.ids
        }

        mutating func submitToA(_ specs: [JobSpec], now: UInt64 = 1) throws(SubmitError) -> Range<JobID> {
            try submit(specs, toA: true, now: now)
        }

        mutating func submitToB(_ specs: [JobSpec], now: UInt64 = 1) throws(SubmitError) -> Range<JobID> {
            try submit(specs, toA: false, now: now)
        }

        mutating func collect(_ actions: [PoolAction], fromA: Bool) {
            for case .dependencyEnded(let id, let state) in actions { announced.append((fromA, id, state)) }
        }

        /// Carries every announced end to the other pool, and what that announces in turn.
        mutating func relay(now: UInt64 = 2) {
            while !announced.isEmpty {
                let end = announced.removeFirst()
                if end.fromA {
                    collect(b.settleForeign(end.id, ended: end.state, now: now), fromA: false)
                } else {
                    collect(a.settleForeign(end.id, ended: end.state, now: now), fromA: true)
                }
            }
        }

        /// Worker 1 of B runs its next job to `outcome`.
        mutating func runB(_ outcome: JobOutcome = PoolFixture.ok) -> JobID? {
            guard let job = PoolFixture.take(&b, 1).first else { return nil }
            collect(b.finish(worker: 1, job: job.id, outcome: outcome, now: 2), fromA: false)
            return job.id
        }

        mutating func runA(_ outcome: JobOutcome = PoolFixture.ok) -> JobID? {
            guard let job = PoolFixture.take(&a, 1).first else { return nil }
            collect(a.finish(worker: 1, job: job.id, outcome: outcome, now: 2), fromA: true)
            return job.id
        }
    }

    static func after(_ ids: JobID...) -> JobSpec {
        JobSpec(.cpu(size: 0), placement: JobPlacement(after: ids))
    }

    @Test("a job waits for another pool's job, and runs once it ended done")
    func release() throws {
        var pair = try Pair()
        let first = try pair.submitToB([JobSpec(.cpu(size: 0))]).lowerBound
        let waiter = try pair.submitToA([Self.after(first)]).lowerBound
        #expect(pair.a.job(waiter)?.state == .waiting && pair.a.job(waiter)?.waitingFor == [first])
        #expect(pair.runA() == nil)
        #expect(pair.runB() == first)
        #expect(pair.announced.count == 1)
        pair.relay()
        #expect(pair.a.job(waiter)?.state == .queued)
        #expect(pair.runA() == waiter)
    }

    @Test("a failure cancels across pools, and the cancel carries on back: B, then A, then B, then A")
    func cascade() throws {
        var pair = try Pair()
        let root = try pair.submitToB([JobSpec(.cpu(size: 0))]).lowerBound
        let first = try pair.submitToA([Self.after(root)]).lowerBound
        let second = try pair.submitToB([Self.after(first)]).lowerBound
        let third = try pair.submitToA([Self.after(second)]).lowerBound
        #expect([pair.a.job(first), pair.b.job(second), pair.a.job(third)].map { $0?.state } == [.waiting, .waiting, .waiting])
        #expect(pair.runB(.failed("boom")) == root)
        pair.relay()
        #expect(pair.a.job(first)?.error == "job \(root), which it runs after, failed")
        #expect(pair.b.job(second)?.error == "job \(first), which it runs after, was cancelled")
        #expect(pair.a.job(third)?.state == .cancelled && pair.a.waitingCount == 0 && pair.b.waitingCount == 0)
    }

    @Test("a chain of 3,000 jobs alternating between the pools is released link by link")
    func longChain() throws {
        var pair = try Pair()
        var last = try pair.submitToB([JobSpec(.cpu(size: 0))]).lowerBound
        for index in 0..<3_000 { last = try pair.submit([Self.after(last)], toA: index % 2 == 0).lowerBound }
        #expect(pair.a.waitingCount + pair.b.waitingCount == 3_000)
        var ran = 0
        while pair.runB() != nil || pair.runA() != nil {
            ran += 1
            pair.relay()
        }
        #expect(ran == 3_001 && (pair.a.job(last) ?? pair.b.job(last))?.state == .done)
    }

    @Test("an end that arrives between reading the state and the submit is not missed")
    func endDuringSubmit() throws {
        var pair = try Pair()
        let first = try pair.submitToB([JobSpec(.cpu(size: 0))]).lowerBound
        pair.a.expectForeign([first])
        let seen = pair.b.awaitFromOutside(first)
        #expect(seen == .queued)
        // It ends before A accepts the job that runs after it; the end reaches A first.
        #expect(pair.runB() == first)
        pair.relay()
        let ids = try pair.a.submit([Self.after(first)], now: 3, allocate: { _ in 10 }, foreign: [first: seen!]).ids
        #expect(pair.a.job(ids.lowerBound)?.state == .queued)
        #expect(pair.a.expectedForeign.isEmpty)
    }

    @Test("a refused submit takes its expectation back; a stale registration forwards once, harmlessly")
    func refused() throws {
        var pair = try Pair()
        let first = try pair.submitToB([JobSpec(.cpu(size: 0))]).lowerBound
        pair.a.configuration.allowExec = false
        #expect(throws: SubmitError.execDisabled) {
            try pair.submitToA([JobSpec(.exec(argv: ["true"]), placement: JobPlacement(after: [first]))])
        }
        #expect(pair.a.expectedForeign.isEmpty)
        #expect(pair.runB() == first)
        #expect(pair.announced.count == 1)
        pair.relay()
        #expect(pair.a.queuedCount == 0 && pair.a.waitingCount == 0)
        // Once ended, no more announcements for it.
        #expect(pair.b.awaitFromOutside(first) == .done && pair.b.awaitedOutside.isEmpty)
    }

    @Test("ids no pool holds are refused as before: never submitted, or forgotten")
    func unknown() throws {
        var pair = try Pair()
        _ = try pair.submitToB([JobSpec(.cpu(size: 0)), JobSpec(.cpu(size: 0))])
        #expect(throws: SubmitError.unknownDependency(index: 0, 99)) { try pair.submitToA([Self.after(99)]) }
        #expect(pair.a.expectedForeign.isEmpty)
    }

    @Test("restored: a job waiting for another pool's job waits on, goes on, or is cancelled as that one stands")
    func restore() throws {
        let spec = Self.after(5)
        let waiting = JobRecord(id: 7, spec: spec, state: .queued, attempts: 0, submittedAt: 1)
        for (state, expected) in [(JobState.queued, JobState.waiting), (.done, .queued), (.failed, .cancelled)] {
            var pool = try PoolFixture.pool()
            pool.restore([waiting], nextJobID: 8, now: 1, foreign: { $0 == 5 ? state : nil })
            pool.startJournal()
            #expect(pool.job(7)?.state == expected, "\(state)")
            #expect(pool.foreignDependencies == (expected == .waiting ? [5] : []))
        }
    }

    @Test("a job a shutdown puts back announces nothing")
    func shutdownKeeps() throws {
        var pair = try Pair()
        pair.b.startJournal()
        let first = try pair.submitToB([JobSpec(.sleep(milliseconds: 10))]).lowerBound
        _ = try pair.submitToA([Self.after(first)])
        let job = PoolFixture.take(&pair.b, 1).first
        #expect(job?.id == first)
        _ = pair.b.beginDrain(now: 2)
        pair.collect(
            pair.b.finish(worker: 1, job: first, outcome: .cancelled(JobOutcome.interruptedReason), now: 3), fromA: false)
        #expect(pair.announced.isEmpty)
        #expect(pair.b.awaitedOutside == [first])
    }
}
