package import ConcurCore
package import ConcurProtocol
import ConcurRuntime
import Glibc
import Logging

/// One pool's place in the shared queue, as that pool's ``JobStore``: a thread of its own that
/// writes what the pool's jobs did (fenced by their claims) and claims more jobs for the pool
/// when its buffer runs low.
///
/// Claims are durable before the pool sees them (the row names this node), so a worker's
/// hand-over needs no write: it is durable as soon as the thread has taken it. Starts and ends
/// are written in batches: every 40 ms, or at once when the pool waits on one. The thread also
/// polls the queue on that tick (there is no LISTEN yet). While the store cannot be reached,
/// the pool is told so (``JobChangeSource/setJournalFailure(_:)``), what it waits on fails,
/// and the thread reconnects with backoff (0.1 s, doubling to 5 s); changes taken and not
/// written are kept and written on return.
///
/// `@unchecked Sendable`: the fields under "guarded by lock" are read and written with `lock`
/// held; the rest belong to the lane's thread.
package final class PoolLane: JobStore, @unchecked Sendable {
    /// The pool it serves.
    package let pool: PoolName
    private let queue: SharedQueue
    private let allowExec: Bool
    private let node: StoreNode
    private let clock: MonotonicClock
    private let logger: Logger
    private let tick: UInt64 = 40_000_000

    // Guarded by lock.
    private let lock = ConditionLock()
    private var source: Pool?
    private var durable: UInt64 = 0
    private var wanted: UInt64 = 0
    private var callbacks: [(count: UInt64, completion: @Sendable (JournalFailure?) -> Void)] = []
    private var failed: JournalFailure?
    private var stopping = false
    private var stopped = false

    // The lane's thread's.
    private var session: StoreSession?
    private var claims: [JobID: Int64] = [:]
    private var unwritten: [JournalChange] = []
    private var unwrittenThrough: UInt64 = 0
    /// A connection was lost: claims it committed may never have been seen.
    private var claimsInDoubt = false
    private var depth = ClaimDepth(workers: 1)

    /// A lane for `pool` of `node` (`allowExec`: whether it claims `exec` jobs).
    init(pool: PoolName, allowExec: Bool, node: StoreNode, clock: MonotonicClock, logger: Logger) {
        self.pool = pool
        self.queue = node.queue
        self.allowExec = allowExec
        self.node = node
        self.clock = clock
        self.logger = logger
    }

    /// True: the pool collects its changes for the lane.
    package var recordsChanges: Bool { true }

    /// Nothing: a shared queue's jobs come by claims, not at start.
    package func takeRestored() -> (records: [JobRecord], nextJobID: JobID)? { nil }

    /// Starts the lane's thread on `source`, which must be a ``Pool``.
    package func follow(_ source: any JobChangeSource) throws(JobStoreStartError) {
        guard let pool = source as? Pool else { throw JobStoreStartError(reason: "a shared queue's lane follows a pool") }
        lock.withLock { self.source = pool }
        do {
            try OSThread.start(name: "concur-lane") { [self] in run() }
        } catch {
            throw JobStoreStartError(reason: "cannot start the job store's thread of pool \(self.pool): \(error)")
        }
    }

    /// Blocks until the first `count` changes are durable; throws at once while the store is
    /// unreachable.
    package func waitUntilDurable(_ count: UInt64) throws(JournalFailure) {
        let failure = lock.withLock { () -> JournalFailure? in
            while durable < count && failed == nil && !stopped {
                if count > wanted {
                    wanted = count
                    lock.signal()
                }
                lock.wait()
            }
            return durable >= count ? nil : failed ?? JournalFailure(reason: "the job store's lane of pool \(pool) stopped")
        }
        if let failure { throw failure }
    }

    /// Calls `completion` once the first `count` changes are durable, or at once with why not.
    package func whenDurable(_ count: UInt64, _ completion: @escaping @Sendable (JournalFailure?) -> Void) {
        let now = lock.withLock { () -> JournalFailure?? in
            if durable >= count { return .some(nil) }
            if let failed { return .some(failed) }
            callbacks.append((count, completion))
            if count > wanted {
                wanted = count
                lock.signal()
            }
            return nil
        }
        if let now { completion(now) }
    }

    /// Why the store cannot record now, if it cannot.
    package var failure: JournalFailure? { lock.withLock { failed } }

    /// Finished jobs stay in the shared queue (no pruning yet).
    package func setRetention(_ retention: JobRetention) {}

    /// Writes what is left and stops the thread (after the pool's drain).
    package func close() {
        lock.withLock {
            stopping = true
            lock.broadcast()
            while source != nil && !stopped { lock.wait() }
        }
    }

    // MARK: The lane's thread

    private func run() {
        var backoff = 0.1
        while true {
            let stop = lock.withLock { () -> Bool in
                if !stopping && wanted <= durable {
                    _ = lock.wait(untilMonotonic: MonotonicClock.now() + tick)
                }
                return stopping
            }
            do throws(StoreFailure) {
                let session = try currentSession()
                try write(on: session)
                if stop { break }
                if !node.hasLostLease { try claim(on: session) }
                if lock.withLock({ failed }) != nil {
                    logger.notice("pool \(pool): the job store is back; \(claims.count) jobs held, writes resumed")
                    report(nil)
                }
                backoff = 0.1
            } catch {
                if stop && backoff >= 1 {
                    logger.error("pool \(pool): \(unwritten.count) changes not written to the job store at the stop: \(error)")
                    break
                }
                if let lost = session, lost.isClosed {
                    claimsInDoubt = true
                    session = nil
                }
                if lock.withLock({ failed }) == nil {
                    logger.warning("pool \(pool): the job store cannot be reached (\(error)); retrying with backoff up to 5 s")
                }
                report(JournalFailure(reason: "the job store cannot be reached (\(error)); retrying"))
                usleep(useconds_t(backoff * 1e6))
                backoff = min(backoff * 2, 5)
            }
        }
        let waiting = lock.withLock { () -> [@Sendable (JournalFailure?) -> Void] in
            stopped = true
            lock.broadcast()
            defer { callbacks = [] }
            return callbacks.map(\.completion)
        }
        let stoppedFailure = JournalFailure(reason: "the job store's lane of pool \(pool) stopped")
        for completion in waiting { completion(stoppedFailure) }
        if let session { _ = try? node.call.run { () async throws(StoreFailure) in await session.close() } }
    }

    private func currentSession() throws(StoreFailure) -> StoreSession {
        if let session, !session.isClosed { return session }
        let lost = session != nil
        if lost {
            // Closed while idle (a server restart): claims in flight are in doubt too.
            claimsInDoubt = true
            session = nil
        }
        let opened = try node.connect(role: "pool \(pool)")
        session = opened
        if lost { logger.notice("pool \(pool): the connection to the job store was lost; reconnected") }
        return opened
    }

    /// Writes the pool's changes since the last write; marks them durable.
    private func write(on session: StoreSession) throws(StoreFailure) {
        guard let source = lock.withLock({ self.source }) else { return }
        let (changes, through) = source.takeJournalChanges()
        unwritten += changes
        unwrittenThrough = max(unwrittenThrough, through)
        let batch = WriteBatch(unwritten, clock: clock) { claims[$0] }
        if !batch.isEmpty {
            let queue = queue
            let written = try node.call.run { () async throws(StoreFailure) in try await queue.write(batch, on: session) }
            for id in written.fenced {
                logger.warning(
                    "pool \(pool): job \(id) was given to another node while this one held it (its lease lapsed): what it did here is not recorded"
                )
                claims[JobID(id)] = nil
            }
            for row in batch.rows where row.state.rawValue >= JobEncoding.State.done.rawValue { claims[JobID(row.id)] = nil }
        }
        for id in batch.unclaimed { logger.error("pool \(pool): job \(id) changed without a claim of this node's; not written") }
        unwritten = []
        markDurable(unwrittenThrough)
    }

    /// Claims jobs when the pool's buffer is down to half its depth (``ClaimDepth``: about
    /// 0.2 s of work at the workers' pace, at least twice the workers).
    private func claim(on session: StoreSession) throws(StoreFailure) {
        guard let source = lock.withLock({ self.source }) else { return }
        if claimsInDoubt {
            let (queue, pool, known) = (queue, pool, claims.keys.map { Int64($0) })
            let released = try node.call.run { () async throws(StoreFailure) in
                try await queue.releaseUnknown(pool: pool, known: known, on: session)
            }
            if released > 0 { logger.notice("pool \(pool): \(released) jobs claimed as the connection was lost put back") }
            claimsInDoubt = false
        }
        let (buffered, target, open) = source.read { ($0.bufferedCount, $0.target, $0.intakeOpen && !$0.paused) }
        guard open && target > 0 else { return }
        let limit = depth.wanted(buffered: buffered, workers: target, at: Double(MonotonicClock.now()) / 1e9)
        guard limit > 0 else { return }
        let (queue, pool, allowExec, clock) = (queue, pool, allowExec, clock)
        let claimed = try node.call.run { () async throws(StoreFailure) in
            try await queue.claim(pool: pool, limit: limit, allowExec: allowExec, clock: clock, on: session)
        }
        depth.claimed(claimed.count)
        guard !claimed.isEmpty else { return }
        for job in claimed { claims[job.record.id] = job.claim }
        for id in source.admitClaimed(claimed.map(\.record)) {
            logger.error("pool \(pool): job \(id) was claimed while the pool already held it; it runs once")
        }
    }

    private func markDurable(_ count: UInt64) {
        let due = lock.withLock { () -> [@Sendable (JournalFailure?) -> Void] in
            guard count > durable else { return [] }
            durable = count
            lock.broadcast()
            let due = callbacks.filter { $0.count <= count }.map(\.completion)
            callbacks.removeAll { $0.count <= count }
            return due
        }
        for completion in due { completion(nil) }
    }

    /// Tells the pool (and whoever waits) that the store cannot record, or can again (nil).
    private func report(_ failure: JournalFailure?) {
        let (source, failing) = lock.withLock { () -> (Pool?, [@Sendable (JournalFailure?) -> Void]) in
            failed = failure
            lock.broadcast()
            guard failure != nil else { return (self.source, []) }
            defer { callbacks = [] }
            return (self.source, callbacks.map(\.completion))
        }
        source?.setJournalFailure(failure)
        if let failure { for completion in failing { completion(failure) } }
    }
}
