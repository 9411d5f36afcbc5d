package import ConcurCore
package import ConcurProtocol
import ConcurRuntime
import Glibc
import Logging

/// One pool's place in the shared queue, as that pool's ``JobStore``: a thread of its own that
/// writes what the pool's jobs did (fenced by their claims) and claims more jobs for the pool
/// when its buffer runs low.
///
/// Claims are durable before the pool sees them (the row names this node); a worker's
/// hand-over waits for its write only with an at-most-once job among it
/// (``mustRecordBeforeRunning(_:)``). Starts and ends are written in batches every 40 ms, at
/// once when a worker waits on one, and while the next claim runs: the thread has two
/// sessions, one for writes and one for claims, and sends both statements at once. It claims
/// when the pool's buffer runs low or a worker found it empty; once a claim finds the queue
/// empty it looks again when the node hears that the pool has queued jobs (``wake()``, from
/// LISTEN), and at least once a second; while the node hears nothing (its listening
/// connection is down) it looks on every tick. While the store cannot be reached,
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
    /// Notices heard that the pool has queued jobs.
    private var notices: UInt64 = 0
    /// A worker found the pool's buffer empty since the thread last looked.
    private var hungry = false
    /// Finished jobs kept in the queue (nil: all).
    private var retention: JobRetention?
    /// Jobs whose start is written before they run (``mustRecordBeforeRunning(_:)``).
    private var startFirst: Set<JobID> = []
    /// The notices heard before the last claim, when it found the queue empty (nil: it did
    /// not). Only then is a notice worth a look at once; otherwise it waits for the tick, so
    /// that a stream of submits does not cut the batches short.
    private var emptyAtNotice: UInt64?

    // The lane's thread's.
    private var session: StoreSession?
    private var claimSession: StoreSession?
    private var claims: [JobID: Int64] = [:]
    private var unwritten: [JournalChange] = []
    private var unwrittenThrough: UInt64 = 0
    /// A claim was sent whose reply was not taken in (its connection was lost, or its step
    /// failed): jobs it committed may be claimed by this node unknown to it.
    private var claimsInDoubt = false
    private var depth = ClaimDepth(workers: 1)
    /// The notices heard up to the last wait.
    private var noticesSeen: UInt64 = 0
    /// When a claim last looked at the queue.
    private var lastLook: UInt64 = 0
    /// How often a lane whose last claim found the queue empty looks again without a notice.
    private let quietLook: UInt64 = 1_000_000_000
    /// How often the thread deletes finished jobs beyond the retention.
    private let pruneEvery: UInt64 = 10_000_000_000
    /// When it next does.
    private var nextPrune: UInt64 = 0
    /// The claim session could not be opened at the last try.
    private var claimsUnreachable = false
    /// Since when the buffer has held more than ``hoardFactor`` times its depth (nil: it does not).
    private var hoardingSince: UInt64?
    /// A buffer this many times deeper than its depth, for ``hoardWindow``, is cut back to
    /// twice the depth: the jobs got longer, and other nodes could run the rest.
    private let hoardFactor = 4
    /// How long a buffer must stay too deep before it is cut back.
    private let hoardWindow: UInt64 = 1_000_000_000

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
                    lock.broadcast()
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
                lock.broadcast()
            }
            return nil
        }
        if let now { completion(now) }
    }

    /// The pool has queued jobs (a notice the node heard, or it may have missed some): the
    /// lane looks at the queue at once.
    package func wake() {
        lock.withLock {
            notices &+= 1
            lock.broadcast()
        }
    }

    /// A worker waits for jobs: the thread looks at once instead of at its next tick (the claim
    /// itself still follows ``ClaimDepth`` and the notices). Takes only the lane's lock.
    package func workerFoundNothing() {
        lock.withLock {
            guard !hungry else { return }
            hungry = true
            lock.broadcast()
        }
    }

    /// Why the store cannot record now, if it cannot.
    package var failure: JournalFailure? { lock.withLock { failed } }

    /// A hand-over waits for its write only when it holds an at-most-once job (its row must say
    /// "started" before it may run, since a rescue runs a job again unless its row does) or a
    /// job claimed before that did not finish (put back after a crash, which it may have
    /// caused: from then on every crash it causes counts against `max_attempts`). Other jobs
    /// run at once and their starts go with the next step, or not at all when they end first:
    /// a write and a round trip per job saved. A node that crashes before that write gets
    /// those jobs run again (at least once), once uncounted. Takes the lane's lock.
    package func mustRecordBeforeRunning(_ jobs: [Job]) -> Bool {
        if jobs.contains(where: { $0.spec.delivery == .atMostOnce }) { return true }
        return lock.withLock { !startFirst.isEmpty && jobs.contains { startFirst.contains($0.id) } }
    }

    /// The shared queue, as the status line names it when it cannot be reached.
    package var recorderName: String { "the job store" }

    /// This node's name in the shared queue.
    package var sharedNode: String? { node.settings.node }

    /// How long the pool's finished jobs stay in the shared queue: the thread deletes those
    /// beyond it every ``pruneEvery`` (each node's lane of a pool prunes by its own setting,
    /// so the strictest of them holds).
    package func setRetention(_ retention: JobRetention) {
        lock.withLock { self.retention = retention }
    }

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
                if !stopping && wanted <= durable && (notices == noticesSeen || emptyAtNotice == nil) && !hungry {
                    _ = lock.wait(untilMonotonic: MonotonicClock.now() + tick)
                }
                if emptyAtNotice != nil { noticesSeen = notices }
                hungry = false
                return stopping
            }
            do throws(StoreFailure) {
                let writer = try current(&session, role: "pool \(pool)")
                if stop {
                    try step(writer: writer, claimer: nil)
                    break
                }
                if node.hasLostLease {
                    // Nothing starts any more: a hand-over might be of a job another node runs.
                    if lock.withLock({ failed }) == nil {
                        report(JournalFailure(reason: "node \(node.settings.node) lost its lease: restart concurd"))
                    }
                    try step(writer: writer, claimer: nil)
                    usleep(useconds_t(tick / 1000))
                    continue
                }
                try step(writer: writer, claimer: claimSessionIfOpen())
                pruneIfDue(on: writer)
                giveBackIfHoarding(on: writer)
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
                for lost in [session, claimSession] where lost?.isClosed == true { claimsInDoubt = true }
                if session?.isClosed == true { session = nil }
                if claimSession?.isClosed == true { claimSession = nil }
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
        for open in [session, claimSession].compactMap({ $0 }) {
            _ = try? node.call.run { () async throws(StoreFailure) in await open.close() }
        }
    }

    /// The claim session, opened again if it closed; nil (said once) while it cannot be: the
    /// pool's writes go on without claims.
    private func claimSessionIfOpen() -> StoreSession? {
        do throws(StoreFailure) {
            let session = try current(&claimSession, role: "pool \(pool) claims")
            claimsUnreachable = false
            return session
        } catch {
            if !claimsUnreachable {
                logger.warning("pool \(pool): no session for claims (\(error)); writes go on, claims wait for one")
                claimsUnreachable = true
            }
            return nil
        }
    }

    /// `kept` if it is open, else a new session for `role` kept there.
    private func current(_ kept: inout StoreSession?, role: String) throws(StoreFailure) -> StoreSession {
        if let kept, !kept.isClosed { return kept }
        let lost = kept != nil
        if lost {
            // Closed while idle (a server restart): claims in flight are in doubt too.
            claimsInDoubt = true
            kept = nil
        }
        let opened = try node.connect(role: role)
        kept = opened
        if lost { logger.notice("\(role): the connection to the job store was lost; reconnected") }
        return opened
    }

    /// One step of the lane: the pool's changes since the last step are written on `writer`
    /// while jobs are claimed on `claimer` (when given and the buffer runs low), two
    /// statements at once on two sessions, so that neither waits for the other. The changes
    /// are durable once the write returns, whatever became of the claim. A claim whose reply
    /// is not taken in (it failed, the connection went) leaves its jobs claimed by this node
    /// unknown to it: the next step puts them back
    /// (``SharedQueue/releaseUnknown(pool:known:on:)``). A write that finds a job given to
    /// another node means that this node's lease lapsed: nothing is marked durable, and the
    /// node stops (``StoreNode/leaseLost(_:)``), so that no hand-over waiting on that write
    /// runs (an at-most-once job would run twice).
    private func step(writer: StoreSession, claimer: StoreSession?) throws(StoreFailure) {
        guard let source = lock.withLock({ self.source }) else { return }
        let (changes, through) = source.takeJournalChanges()
        unwritten += changes
        unwrittenThrough = max(unwrittenThrough, through)
        let batch = WriteBatch(unwritten, clock: clock) { claims[$0] }
        let limit = try claimer.flatMap { session throws(StoreFailure) in try claimLimit(source, on: session) }
        let heard = lock.withLock { notices }
        if limit != nil { claimsInDoubt = true }
        let (queue, pool, allowExec, clock) = (queue, pool, allowExec, clock)
        let (writeOutcome, claimOutcome) = try node.call.run { () async throws(StoreFailure) in
            async let written = Self.outcome { () async throws(StoreFailure) in
                batch.isEmpty ? SharedQueue.Written() : try await queue.write(batch, on: writer)
            }
            async let claimed = Self.outcome { () async throws(StoreFailure) -> [SharedQueue.Claimed] in
                guard let limit, let claimer else { return [] }
                return try await queue.claim(pool: pool, limit: limit, allowExec: allowExec, clock: clock, on: claimer)
            }
            return await (written, claimed)
        }
        let written = try writeOutcome.get()
        for id in written.fenced {
            logger.warning(
                "pool \(pool): job \(id) was given to another node while this one held it (its lease lapsed): what it did here is not recorded"
            )
            claims[JobID(id)] = nil
        }
        for row in batch.rows where row.state.rawValue >= JobEncoding.State.done.rawValue {
            claims[JobID(row.id)] = nil
            lock.withLock { _ = startFirst.remove(JobID(row.id)) }
        }
        for id in batch.unclaimed { logger.error("pool \(pool): job \(id) changed without a claim of this node's; not written") }
        unwritten = []
        if !written.fenced.isEmpty {
            node.leaseLost("a write of pool \(pool) found \(written.fenced.count) of its jobs given to another node")
        }
        // Once the lease is lost nothing more counts as durable: a worker woken by the failure
        // must not find its hand-over durable after all.
        guard !node.hasLostLease else { return }
        markDurable(unwrittenThrough)
        if !written.awaited.isEmpty {
            let awaited = written.awaited
            _ = try node.call.run { () async throws(StoreFailure) in await queue.settleDependents(of: awaited, on: writer) }
        }
        guard let limit else { return }
        let claimed = try claimOutcome.get()
        claimsInDoubt = false
        lock.withLock { emptyAtNotice = claimed.count < limit ? heard : nil }
        depth.claimed(claimed.count)
        guard !claimed.isEmpty else { return }
        for job in claimed { claims[job.record.id] = job.claim }
        // Claimed before and not finished: put back after a crash, perhaps its own.
        let again = claimed.filter { $0.claim > 1 }.map(\.record.id)
        if !again.isEmpty { lock.withLock { startFirst.formUnion(again) } }
        for id in source.admitClaimed(claimed.map(\.record)) {
            logger.error("pool \(pool): job \(id) was claimed while the pool already held it; it runs once")
        }
    }

    /// Deletes the pool's finished jobs beyond the retention, when ``pruneEvery`` has passed
    /// since the last time (a batch at a time: a backlog goes over several turns). A prune that
    /// fails is logged and tried again next time: it never stops the pool's writes (a lost
    /// connection is the next step's to find).
    private func pruneIfDue(on session: StoreSession) {
        let now = MonotonicClock.now()
        guard now >= nextPrune, let retention = lock.withLock({ self.retention }) else { return }
        nextPrune = now + pruneEvery
        let (queue, pool) = (queue, pool)
        do throws(StoreFailure) {
            let pruned = try node.call.run { () async throws(StoreFailure) in
                try await queue.prune(pool: pool, keeping: retention, on: session)
            }
            if pruned > 0 {
                logger.debug("pool \(pool): \(pruned) finished jobs beyond the retention deleted from the job store")
            }
        } catch {
            logger.warning("pool \(pool): finished jobs beyond the retention could not be deleted from the job store: \(error)")
        }
    }

    /// Gives the queue back the buffered jobs beyond twice the depth once the buffer has held
    /// more than ``hoardFactor`` times its depth for ``hoardWindow``: after short jobs gave way
    /// to long ones, the last deep claim would otherwise keep thousands of them from the other
    /// nodes. A give-back whose reply is lost leaves them claimed by this node unknown to it,
    /// as a lost claim does: the next claim puts them back.
    private func giveBackIfHoarding(on session: StoreSession) {
        guard let source = lock.withLock({ self.source }) else { return }
        let (buffered, keep, now) = (source.read { $0.bufferedCount }, depth.depth, MonotonicClock.now())
        guard buffered > hoardFactor * keep else {
            hoardingSince = nil
            return
        }
        guard let since = hoardingSince else {
            hoardingSince = now
            return
        }
        guard now - since >= hoardWindow else { return }
        hoardingSince = nil
        let given = source.giveBackBuffered(keeping: 2 * keep)
        guard !given.isEmpty else { return }
        for id in given { claims[id] = nil }
        depth.gaveBack(given.count)
        lock.withLock { startFirst.subtract(given) }
        let (queue, pool, ids) = (queue, pool, given.map { Int64($0) })
        do throws(StoreFailure) {
            let back = try node.call.run { () async throws(StoreFailure) in
                try await queue.giveBack(ids, pool: pool, on: session)
            }
            logger.info("pool \(pool): \(back) buffered jobs given back to the queue (\(buffered) held, \(keep) needed)")
        } catch {
            claimsInDoubt = true
            logger.warning(
                "pool \(pool): \(given.count) buffered jobs could not be given back (\(error)); put back at the next claim")
        }
    }

    /// What `operation` returned or threw, as a value (for two operations awaited together).
    private static func outcome<Value: Sendable>(
        _ operation: @Sendable () async throws(StoreFailure) -> Value
    ) async -> Result<Value, StoreFailure> {
        do throws(StoreFailure) {
            return .success(try await operation())
        } catch {
            return .failure(error)
        }
    }

    /// How many jobs to claim now, or nil for none: the pool's buffer is down to half its
    /// depth (``ClaimDepth``: about 0.2 s of work at the workers' pace, at least twice the
    /// workers), and the queue may have some (a look found it empty since the last notice
    /// less than a second ago: no). Claims in doubt are put back first, on `session`.
    private func claimLimit(_ source: Pool, on session: StoreSession) throws(StoreFailure) -> Int? {
        if claimsInDoubt {
            let (queue, pool, known) = (queue, pool, claims.keys.map { Int64($0) })
            let released = try node.call.run { () async throws(StoreFailure) in
                try await queue.releaseUnknown(pool: pool, known: known, on: session)
            }
            if released > 0 { logger.notice("pool \(pool): \(released) jobs claimed as the connection was lost put back") }
            claimsInDoubt = false
        }
        let (buffered, target, open) = source.read { ($0.bufferedCount, $0.target, $0.intakeOpen && !$0.paused) }
        guard open && target > 0 else { return nil }
        let now = MonotonicClock.now()
        let limit = depth.wanted(buffered: buffered, workers: target, at: Double(now) / 1e9)
        guard limit > 0 else { return nil }
        // Nothing was queued since a look found the queue empty: the node would have heard.
        let quiet = lock.withLock { emptyAtNotice == notices }
        if quiet && node.isListening && now - lastLook < quietLook { return nil }
        lastLook = now
        return limit
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
