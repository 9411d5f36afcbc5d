import ConcurCore
import ConcurProtocol
import PostgresNIO
import Varlink

// Dependencies in the shared queue, under the rules a pool keeps for its own (`JobDependencies`):
// a job waits (state 7) until every job it runs after ended done, and ends cancelled when one of
// them failed or was cancelled, which may cancel the jobs waiting for it in turn.
//
// A row of `job_after` says that `job` still waits for `after`; `waiting_for` counts those rows
// per job. Whoever ends a job settles its dependents: the links are deleted (each by one
// statement only, so a resend or a second node settling too counts none twice) and the
// counters are lowered under the waiting jobs' row locks, so two jobs ending at once on two
// nodes release their common dependent exactly once. A node that dies between ending a job and
// settling its dependents leaves links to a job that has ended; every node's lease thread looks
// for those (``settleStranded(on:)``).
extension SharedQueue {
    /// What a submit's jobs wait for, worked out from the states of the jobs they run after.
    struct DependencyPlan {
        /// By job index: how many jobs it still waits for (only those that wait).
        var waits: [Int: Int] = [:]
        /// By job index: why it ends cancelled at once (one it runs after failed or was cancelled).
        var cancelled: [Int: String] = [:]
        /// (job index, job waited for) for every wait.
        var links: [(index: Int, after: Int64)] = []

        /// The jobs waited for, each once, to be marked as having dependents.
        var awaited: [Int64] { Array(Set(links.map(\.after))).sorted() }

        /// ``links`` as the JSON the link insert reads.
        var linksJSON: String {
            JSON.array(links.map { .object(["n": .int(Int64($0.index)), "after": .int($0.after)]) }).serialized
        }
    }

    /// The plan for `jobs`, given `states` (by id) of the jobs they run after that the queue
    /// holds; `nextID` is the first id not yet given, which tells a job never submitted from one
    /// pruned.
    ///
    /// - Throws: ``StoreFailure`` with ``StoreFailure/dependency`` when a job runs after one
    ///   `states` lacks.
    static func dependencyPlan(_ jobs: [NewJob], states: [Int64: Int16], nextID: Int64) throws(StoreFailure)
        -> DependencyPlan
    {
        var plan = DependencyPlan()
        for (index, job) in jobs.enumerated() where !job.spec.after.isEmpty {
            var pending = Set<Int64>()
            for other in job.spec.after.map({ Int64(clamping: $0) }) {
                guard let state = states[other] else {
                    throw StoreFailure(unknownDependency: other, index: index, forgotten: other < nextID)
                }
                switch finalState(state) {
                case nil: pending.insert(other)
                case .done?: break
                case let ended?:
                    if plan.cancelled[index] == nil { plan.cancelled[index] = reason(other, ended: ended) }
                }
            }
            guard plan.cancelled[index] == nil, !pending.isEmpty else { continue }
            plan.waits[index] = pending.count
            plan.links += pending.sorted().map { (index, $0) }
        }
        return plan
    }

    /// Why a job is cancelled when `other`, which it runs after, ended in `ended` (the words a
    /// pool of one node uses).
    static func reason(_ other: Int64, ended: JobState) -> String {
        "job \(other), which it runs after, \(ended == .failed ? "failed" : "was cancelled")"
    }

    /// Settles the jobs waiting for `ended` (jobs that ended, in any final state): those whose
    /// last wait this was are queued (or scheduled, if their start time has not come), those
    /// waiting for one that did not end done are cancelled, and the jobs waiting for those in
    /// turn, a level per statement, each statement seeing what committed before it. Tells the
    /// listening nodes of the pools it queued jobs in. Returns how many waits it settled.
    ///
    /// Failures are logged, not thrown: the job that ended is written already, and
    /// ``settleStranded(on:)`` finds the links left behind.
    @discardableResult
    package func settleDependents(of ended: [Int64], on session: StoreSession) async -> Int {
        var level = ended
        var settled = 0
        var ready: Set<String> = []
        let (schema, logger) = (schema, logger)
        let finished = [JobEncoding.State.done, .failed, .cancelled].map { "\($0.rawValue)" }.joined(separator: ", ")
        let done = JobEncoding.State.done.rawValue
        let sql = """
            WITH gone AS (
              DELETE FROM \(schema).job_after a USING \(schema).jobs p
              WHERE a.after = ANY($1) AND p.id = a.after AND p.state IN (\(finished))
              RETURNING a.job, a.after, p.state),
            doomed AS (
              UPDATE \(schema).jobs d SET state = 5, finished_at = now(), error = f.why, cancel_reason = f.why
              FROM (SELECT DISTINCT ON (job) job,
                      'job ' || after || ', which it runs after, ' || CASE WHEN state = 4 THEN 'failed' ELSE 'was cancelled' END
                        AS why
                    FROM gone WHERE state <> \(done) ORDER BY job, after) f
              WHERE d.id = f.job AND d.state = 7
              RETURNING d.id, d.dependents, d.pool),
            released AS (
              UPDATE \(schema).jobs d SET waiting_for = d.waiting_for - n.c,
                state = CASE WHEN d.waiting_for > n.c THEN 7 WHEN d.run_at > now() THEN 6 ELSE 0 END
              FROM (SELECT job, count(*) AS c FROM gone WHERE state = \(done)
                      AND job NOT IN (SELECT job FROM gone WHERE state <> \(done)) GROUP BY job) n
              WHERE d.id = n.job AND d.state = 7
              RETURNING d.id, d.state, d.pool)
            SELECT 0::smallint, count(*), '' FROM gone
            UNION ALL SELECT 1::smallint, id, pool FROM doomed WHERE dependents
            UNION ALL SELECT 2::smallint, id, pool FROM released WHERE state = 0
            """
        do throws(StoreFailure) {
            while !level.isEmpty {
                let binds = PostgresBindings.of(level)
                let rows = try await session.run(limit: limit) { connection in
                    var rows: [(Int16, Int64, String)] = []
                    let result = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
                    for try await row in result.decode((Int16, Int64, String).self) { rows.append(row) }
                    return rows
                }
                level = []
                for (what, value, pool) in rows {
                    switch what {
                    case 0: settled += Int(value)
                    case 1: level.append(value)
                    default: ready.insert(pool)
                    }
                }
            }
        } catch {
            logger.warning(
                "the jobs waiting for jobs \(ended.prefix(5)) were not settled: \(error); a node's lease thread does it later")
        }
        await notifyReady(ready, on: session)
        return settled
    }

    /// Settles the waits left on jobs that ended without their dependents being settled (their
    /// node died in between, or an older concurd ended them), at most `batch` jobs a call.
    /// Returns how many waits it settled.
    ///
    /// - Throws: ``StoreFailure`` when the links cannot be read.
    @discardableResult
    package func settleStranded(batch: Int = 1_000, on session: StoreSession) async throws(StoreFailure) -> Int {
        let finished = [JobEncoding.State.done, .failed, .cancelled].map { "\($0.rawValue)" }.joined(separator: ", ")
        let ended = try await execute(
            """
            SELECT DISTINCT a.after FROM \(schema).job_after a JOIN \(schema).jobs p ON p.id = a.after
            WHERE p.state IN (\(finished)) LIMIT $1
            """, .of(Int64(batch)), on: session)
        guard !ended.isEmpty else { return 0 }
        let settled = await settleDependents(of: ended, on: session)
        if settled > 0 { logger.notice("settled \(settled) waits on \(ended.count) jobs that had ended without settling them") }
        return settled
    }
}
