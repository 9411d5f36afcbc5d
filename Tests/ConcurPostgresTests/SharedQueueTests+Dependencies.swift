import ConcurCore
import ConcurPostgres
import ConcurProtocol
import Foundation
import Testing

// Jobs that run after others, in the queue several nodes share.
extension SharedQueueTests {
    /// Each job's state and, while it waits, what for: "3:waiting(1,2)", "4:cancelled".
    func states(_ database: String) throws -> String {
        try sql(
            """
            SELECT string_agg(id || ':' || CASE state WHEN 0 THEN 'queued' WHEN 1 THEN 'claimed' WHEN 2 THEN 'running'
              WHEN 3 THEN 'done' WHEN 4 THEN 'failed' WHEN 5 THEN 'cancelled' WHEN 6 THEN 'scheduled'
              ELSE 'waiting(' || (SELECT string_agg(after::text, ',' ORDER BY after) FROM concur.job_after WHERE job = id) || ')'
              END, ' ' ORDER BY id) FROM concur.jobs
            """, database)
    }

    @Test("a job runs once every job it runs after ended done; a refused submit queues nothing")
    func dependenciesRelease() async throws {
        let a = try await database("after_release")
        #expect(try await a.queue.enqueue([Self.job(), Self.job()], maxAttempts: 3, on: a.session) == 1...2)
        #expect(try await a.queue.enqueue([Self.job(after: [1, 2])], maxAttempts: 3, on: a.session) == 3...3)
        #expect(try await a.queue.enqueue([Self.job(after: [3])], maxAttempts: 3, on: a.session) == 4...4)
        #expect(try states("after_release") == "1:queued 2:queued 3:waiting(1,2) 4:waiting(3)")
        let listed = try await a.queue.jobs([3, 4], on: a.session)
        #expect(listed.map(\.state) == [.waiting, .waiting])
        #expect(listed.map(\.waitingFor) == [[1, 2], [3]])

        // A job never submitted: refused, naming the job of the batch; no id is used.
        let unknown = await refusal(a, after: 99)
        #expect(unknown == .init(index: 1, id: 99, forgotten: false))
        #expect(try sql("SELECT value FROM concur.meta WHERE key = 'next_job_id'", "after_release") == "5")

        let first = try await claim(a)
        #expect(first.map(\.record.id) == [1, 2])
        let one = try await a.queue.write(done(first[0]), on: a.session)
        #expect(one.awaited == [1])
        #expect(await a.queue.settleDependents(of: one.awaited, on: a.session) == 1)
        #expect(try states("after_release") == "1:done 2:claimed 3:waiting(2) 4:waiting(3)")
        let two = try await a.queue.write(done(first[1]), on: a.session)
        #expect(await a.queue.settleDependents(of: two.awaited, on: a.session) == 1)
        #expect(try states("after_release") == "1:done 2:done 3:queued 4:waiting(3)")
        // Settling again (a resend, another node) changes nothing.
        #expect(await a.queue.settleDependents(of: [1, 2], on: a.session) == 0)
        let third = try await claim(a)
        #expect(third.map(\.record.id) == [3])
        // A job that ended done before the submit is not waited for.
        #expect(try await a.queue.enqueue([Self.job(after: [1, 3])], maxAttempts: 3, on: a.session) == 5...5)
        #expect(try states("after_release").hasSuffix("5:waiting(3)"))
        let three = try await a.queue.write(done(third[0]), on: a.session)
        await a.queue.settleDependents(of: three.awaited, on: a.session)
        #expect(try states("after_release") == "1:done 2:done 3:done 4:queued 5:queued")
    }

    @Test("a job that fails cancels the jobs waiting for it, and theirs; one submitted after it is cancelled at once")
    func dependenciesCascade() async throws {
        let a = try await database("after_cascade")
        _ = try await a.queue.enqueue([Self.job(), Self.job()], maxAttempts: 3, on: a.session)
        _ = try await a.queue.enqueue([Self.job(after: [1]), Self.job(after: [1, 2])], maxAttempts: 3, on: a.session)
        _ = try await a.queue.enqueue([Self.job(after: [3])], maxAttempts: 3, on: a.session)
        let claimed = try await claim(a)
        let failed = try await a.queue.write(done(claimed[0], as: .failed), on: a.session)
        #expect(failed.awaited == [1])
        await a.queue.settleDependents(of: failed.awaited, on: a.session)
        #expect(try states("after_cascade") == "1:failed 2:claimed 3:cancelled 4:cancelled 5:cancelled")
        let reasons = try await a.queue.jobs([3, 4, 5], on: a.session).map(\.error)
        #expect(
            reasons == [
                "job 1, which it runs after, failed", "job 1, which it runs after, failed",
                "job 3, which it runs after, was cancelled",
            ])
        // Job 2 ending done later touches nothing (job 4 was cancelled).
        let two = try await a.queue.write(done(claimed[1]), on: a.session)
        await a.queue.settleDependents(of: two.awaited, on: a.session)
        #expect(try states("after_cascade") == "1:failed 2:done 3:cancelled 4:cancelled 5:cancelled")
        #expect(try sql("SELECT count(*) FROM concur.job_after", "after_cascade") == "0")

        _ = try await a.queue.enqueue([Self.job(after: [2, 4])], maxAttempts: 3, on: a.session)
        let late = try #require(try await a.queue.jobs([6], on: a.session).first)
        #expect(late.state == .cancelled)
        #expect(late.error == "job 4, which it runs after, was cancelled")

        // A cancel of a queued job cancels the jobs waiting for it.
        _ = try await a.queue.enqueue([Self.job()], maxAttempts: 3, on: a.session)
        _ = try await a.queue.enqueue([Self.job(after: [7])], maxAttempts: 3, on: a.session)
        _ = try await a.queue.cancel([7], reason: "cancelled by a test", on: a.session)
        #expect(try states("after_cascade").hasSuffix("7:cancelled 8:cancelled"))
        #expect(try await a.queue.jobs([8], on: a.session).first?.error == "job 7, which it runs after, was cancelled")
    }

    @Test("two jobs ending at once on two nodes release their common dependent exactly once")
    func dependenciesRace() async throws {
        let a = try await database("after_race")
        let b = try await node("b", in: "after_race")
        for round in 0..<20 {
            let base = UInt64(round * 3 + 1)
            _ = try await a.queue.enqueue([Self.job(), Self.job()], maxAttempts: 3, on: a.session)
            _ = try await a.queue.enqueue([Self.job(after: [base, base + 1])], maxAttempts: 3, on: a.session)
            let mine = try #require(try await claim(a, 1).first)
            let theirs = try #require(try await claim(b, 1).first)
            async let first: Void = {
                let written = try await a.queue.write(done(mine), on: a.session)
                await a.queue.settleDependents(of: written.awaited, on: a.session)
            }()
            async let second: Void = {
                let written = try await b.queue.write(done(theirs), on: b.session)
                await b.queue.settleDependents(of: written.awaited, on: b.session)
            }()
            _ = try await (first, second)
            let released = try await claim(a)
            #expect(released.map(\.record.id) == [base + 2], "round \(round)")
            _ = try await a.queue.write(done(released[0]), on: a.session)
        }
        #expect(try sql("SELECT count(*) FROM concur.jobs WHERE state = 3", "after_race") == "60")
        #expect(try sql("SELECT count(*) FROM concur.job_after", "after_race") == "0")
    }

    @Test("waits left by a node that ended a job and died before settling are settled by the sweep; prune keeps their job")
    func dependenciesStranded() async throws {
        let a = try await database("after_stranded")
        _ = try await a.queue.enqueue([Self.job()], maxAttempts: 3, on: a.session)
        _ = try await a.queue.enqueue([Self.job(after: [1])], maxAttempts: 3, on: a.session)
        let claimed = try await claim(a)
        _ = try await a.queue.write(done(claimed[0]), on: a.session)
        #expect(try states("after_stranded") == "1:done 2:waiting(1)")
        // The retention would delete job 1, but its dependent is not settled.
        #expect(try await a.queue.prune(pool: .default, keeping: JobRetention(count: 0, age: 0), on: a.session) == 0)
        #expect(try await a.queue.settleStranded(on: a.session) == 1)
        #expect(try states("after_stranded") == "1:done 2:queued")
        #expect(try await a.queue.settleStranded(on: a.session) == 0)
        #expect(try await a.queue.prune(pool: .default, keeping: JobRetention(count: 0, age: 0), on: a.session) == 1)
        // Pruned, how job 1 ended is no longer known: a job to run after it is refused.
        let forgotten = await refusal(a, after: 1)
        #expect(forgotten == .init(index: 1, id: 1, forgotten: true))
    }

    /// What refused a submit of a plain job and one to run after `after`.
    func refusal(_ node: Node, after: UInt64) async -> StoreFailure.UnknownDependency? {
        do {
            _ = try await node.queue.enqueue([Self.job(), Self.job(after: [after])], maxAttempts: 3, on: node.session)
            Issue.record("a submit after job \(after) was queued")
            return nil
        } catch {
            #expect(error.message.contains(error.dependency?.forgotten == true ? "no longer keeps it" : "was never submitted"))
            return error.dependency
        }
    }
}
