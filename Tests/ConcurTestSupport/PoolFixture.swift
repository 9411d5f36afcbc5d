package import ConcurCore
package import ConcurProtocol

/// What the state machine tests share: specs, a pool with ready workers, and taking jobs as a
/// worker would. A pure fixture: its clock mapping is fixed, nothing reads the real clock.
package enum PoolFixture {
    /// One spec per kind, with the daemon's defaults.
    package static func specs(_ kinds: JobKind...) -> [JobSpec] { kinds.map { JobSpec($0) } }
    /// `count` specs of one kind.
    package static func specs(_ count: Int, _ kind: JobKind = .fail) -> [JobSpec] {
        Array(repeating: JobSpec(kind), count: count)
    }

    /// A pool of `workers` ready workers (ids 1...workers), with room for 8.
    package static func pool(
        workers: Int = 0, model: ConcurrencyModel = .threads, maxQueue: Int = 100, maxAttempts: Int = 3, allowExec: Bool = false
    ) throws -> PoolStateMachine {
        var pool = PoolStateMachine(
            model: model,
            configuration: .init(
                maxQueue: maxQueue, maxWorkers: 8, retainFinished: 1000, maxAttempts: maxAttempts, allowExec: allowExec),
            clock: MonotonicClock(wallMinusMonotonic: 0))
        if workers > 0 {
            _ = try pool.resize(to: workers, now: 0)
            for id in pool.workers.keys { pool.workerReady(id, osID: id, now: 0) }
        }
        return pool
    }

    /// The jobs `worker` is handed (none if it must wait or retire).
    package static func take(_ pool: inout PoolStateMachine, _ worker: WorkerID, limit: Int = 1, now: UInt64 = 1) -> [Job] {
        if case .run(let jobs) = pool.nextAssignment(for: worker, limit: limit, now: now) { return jobs }
        return []
    }

    /// A successful outcome.
    package static let ok = JobOutcome.done(.checksum(0))
}
