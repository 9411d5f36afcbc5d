package import ConcurCore
package import ConcurProtocol
import ConcurRuntime
import Glibc
package import Logging
import NIOPosix
package import StoreAccess
import Synchronization

/// This concurd as a node of a shared queue: its registration and lease (a thread that
/// heartbeats, rescues the jobs of nodes whose lease lapsed and queues jobs whose start time
/// came), a lane per pool (``PoolLane``), a listener (a thread on a connection of its own
/// that LISTENs on the queue's channel and wakes the lane of each pool that queued jobs), and
/// the control plane's submits.
///
/// Every thread owns its own connections (a lane two: writes and claims), so none waits
/// behind another; the store's operations
/// run on one thread of its own (``ThreadTaskExecutor``), never on the global pool. A node
/// whose heartbeat finds its name taken or its lease given up (another node found it silent)
/// stops claiming at once and says so; its late writes are fenced anyway.
///
/// `@unchecked Sendable`: `lanes`, `stopping`, `incarnation`, `control`, `controlWork`, `reporter`,
/// `cancelHandler`, `listenSession` and `listenerDone` are guarded by `lock`.
package final class StoreNode: @unchecked Sendable {
    /// What a node needs to reach the store and name itself there.
    package typealias Settings = StoreNodeSettings

    /// The queue's statements, as this node runs them.
    package let queue: SharedQueue
    let settings: Settings
    let executor: ThreadTaskExecutor
    let call: BlockingStoreCall
    let clock: MonotonicClock
    private let logger: Logger
    private let lostLease = Atomic<Bool>(false)
    private let listening = Atomic<Bool>(false)

    private let lock = ConditionLock()
    private var lanes: [PoolLane] = []
    private var incarnation: Int64 = 0
    private var stopping = false
    private var leaseThreadDone = false
    private var control: StoreSession?
    private typealias ControlWork = (run: @Sendable () -> Void, failing: @Sendable (StoreFailure) -> Void)
    private var controlWork: [ControlWork] = []
    private var controlThreadStarted = false
    private var reporter: (@Sendable () -> NodeReport)?
    private var cancelHandler: (@Sendable ([(id: Int64, reason: String)]) -> [Int64])?
    private var listenSession: StoreSession?
    private var listenerDone = false

    /// Connects, prepares the schema and registers the node; the lease thread starts.
    ///
    /// - Throws: ``StoreFailure``: what to do about the address, the password, the schema or
    ///   the node's name.
    package init(_ settings: Settings, clock: MonotonicClock, logger: Logger) throws(StoreFailure) {
        self.settings = settings
        self.clock = clock
        self.logger = logger
        queue = SharedQueue(schema: settings.address.schema, node: settings.node, logger: logger)
        do {
            executor = try ThreadTaskExecutor(threads: 1, name: "concur-store")
        } catch {
            throw StoreFailure(kind: .permanent, message: "cannot start the job store's thread: \(error)")
        }
        call = BlockingStoreCall(executor: executor)
        let session = try connect(role: "control")
        let (address, queue) = (settings.address, queue)
        let lease = NodeLease(queue: queue, seconds: settings.leaseSeconds)
        let (host, pid, version) = (settings.host, settings.pid, settings.version)
        incarnation = try call.run { () async throws(StoreFailure) in
            _ = try await StoreSchema.prepare(on: session, address: address, logger: logger)
            return try await lease.register(
                host: host, pid: pid, version: version, isDead: { kill($0, 0) != 0 && errno == ESRCH }, on: session)
        }
        control = session
        logger.notice("job store \(address): node \(settings.node), incarnation \(incarnation), lease \(settings.leaseSeconds) s")
        do {
            try OSThread.start(name: "concur-lease") { [self] in runLease() }
        } catch {
            throw StoreFailure(kind: .permanent, message: "cannot start the job store's lease thread: \(error)")
        }
        do {
            try OSThread.start(name: "concur-listen") { [self] in runListener() }
        } catch {
            // The lanes then look at the queue on every tick, as while the listener reconnects.
            logger.warning("cannot start the job store's listener thread (\(error)): pools poll the queue every 40 ms")
            lock.withLock { listenerDone = true }
        }
    }

    /// Whether the node hears the queue's notices now; while it does not, its lanes look at
    /// the queue on every tick instead of when told.
    package var isListening: Bool { listening.load(ordering: .relaxed) }

    /// Whether the node no longer holds its lease (it must be restarted).
    package var hasLostLease: Bool { lostLease.load(ordering: .relaxed) }

    /// The node no longer holds its lease (`how`: what showed it): from now on it claims
    /// nothing and its pools start nothing; said once.
    package func leaseLost(_ how: String) {
        guard !lostLease.exchange(true, ordering: .relaxed) else { return }
        logger.critical(
            "node \(settings.node) lost its lease (\(how): another node found it silent for \(settings.leaseSeconds) s, or another start took its name): it claims and starts no more jobs and its results are not recorded; restart concurd"
        )
    }

    /// The lane of `pool`, the pool's ``JobStore``.
    package func lane(for pool: PoolName, allowExec: Bool) -> PoolLane {
        let lane = PoolLane(pool: pool, allowExec: allowExec, node: self, clock: clock, logger: logger)
        lock.withLock { lanes.append(lane) }
        return lane
    }

    /// Queues `jobs` (checked already) into the shared queue; any node serving their pool may
    /// run them. Blocks the calling thread for one transaction.
    ///
    /// - Throws: ``StoreFailure`` while the store cannot be reached.
    package func enqueue(_ jobs: [SharedQueue.NewJob], maxAttempts: Int) throws(StoreFailure) -> ClosedRange<Int64> {
        let queue = queue
        return try controlCall { session throws(StoreFailure) in
            try await queue.enqueue(jobs, maxAttempts: maxAttempts, on: session)
        }
    }

    /// Queues `jobs` from the node's control thread, so the caller (an event loop) never waits
    /// for the store; `completion` runs there with their ids, or why they could not be queued.
    package func enqueue(
        _ jobs: [SharedQueue.NewJob], maxAttempts: Int,
        completion: @escaping @Sendable (Result<ClosedRange<Int64>, StoreFailure>) -> Void
    ) {
        onControlThread(
            { [self] in completion(Result { () throws(StoreFailure) in try enqueue(jobs, maxAttempts: maxAttempts) }) },
            failing: { completion(.failure($0)) })
    }

    /// Reads the nodes and the queue's jobs from the node's control thread; `completion` runs
    /// there. This node's own entry shows its pools as of the call, not of its last heartbeat.
    package func clusterStatus(completion: @escaping @Sendable (Result<ClusterStatus, StoreFailure>) -> Void) {
        let work: @Sendable () -> Void = { [self] in
            let queue = queue
            var result = Result { () throws(StoreFailure) in
                try controlCall { session throws(StoreFailure) in try await queue.clusterStatus(on: session) }
            }
            if case .success(var status) = result, let report = lock.withLock({ reporter })?(),
                let mine = status.nodes.firstIndex(where: { $0.name == settings.node })
            {
                status.nodes[mine].pools = report.pools
                status.nodes[mine].done = report.done
                status.nodes[mine].failed = report.failed
                status.nodes[mine].cancelled = report.cancelled
                status.nodes[mine].problem = nil
                result = .success(status)
            }
            completion(result)
        }
        onControlThread(work, failing: { completion(.failure($0)) })
    }

    /// Cancels `ids` in the shared queue (``SharedQueue/cancel(_:reason:on:)``), or with `ids`
    /// nil every job of `queuedIn` waiting there, from the node's control thread; `completion`
    /// runs there.
    package func cancel(
        _ ids: [Int64]?, queuedIn pool: String, reason: String,
        completion: @escaping @Sendable (Result<SharedQueue.CancelVerdict, StoreFailure>) -> Void
    ) {
        let queue = queue
        onControlSession(completion: completion) { session throws(StoreFailure) in
            guard let ids else {
                return .cancelled(cancelled: try await queue.cancelQueued(in: pool, reason: reason, on: session), stopping: [])
            }
            return try await queue.cancel(ids, reason: reason, on: session)
        }
    }

    /// Reads the jobs of `ids` the queue holds (``SharedQueue/jobs(_:on:)``) from the node's
    /// control thread; `completion` runs there.
    package func jobs(_ ids: [Int64], completion: @escaping @Sendable (Result<[JobInfo], StoreFailure>) -> Void) {
        let queue = queue
        onControlSession(completion: completion) { session throws(StoreFailure) in try await queue.jobs(ids, on: session) }
    }

    /// Reads the jobs of `ids` that have ended (``SharedQueue/endedJobs(_:on:)``) from the node's
    /// control thread; `completion` runs there.
    package func endedJobs(_ ids: [Int64], completion: @escaping @Sendable (Result<[JobInfo], StoreFailure>) -> Void) {
        let queue = queue
        onControlSession(completion: completion) { session throws(StoreFailure) in
            try await queue.endedJobs(ids, on: session)
        }
    }

    /// Reads the ids of jobs that have not ended (``SharedQueue/unfinishedIDs(pool:limit:on:)``)
    /// from the node's control thread; `completion` runs there.
    package func unfinishedIDs(
        pool: String?, limit: Int, completion: @escaping @Sendable (Result<[Int64], StoreFailure>) -> Void
    ) {
        let queue = queue
        onControlSession(completion: completion) { session throws(StoreFailure) in
            try await queue.unfinishedIDs(pool: pool, limit: limit, on: session)
        }
    }

    /// Reads up to `limit` recent jobs of the queue (``SharedQueue/recentJobs(pool:state:limit:on:)``)
    /// from the node's control thread; `completion` runs there.
    package func recentJobs(
        pool: String?, state: JobState?, limit: Int, completion: @escaping @Sendable (Result<[JobInfo], StoreFailure>) -> Void
    ) {
        let queue = queue
        onControlSession(completion: completion) { session throws(StoreFailure) in
            try await queue.recentJobs(pool: pool, state: state, limit: limit, on: session)
        }
    }

    /// Runs `operation` on the control session from the node's control thread, and
    /// `completion` there with what it returned or why it could not run.
    private func onControlSession<Value: Sendable>(
        completion: @escaping @Sendable (Result<Value, StoreFailure>) -> Void,
        _ operation: @escaping @Sendable (StoreSession) async throws(StoreFailure) -> Value
    ) {
        onControlThread(
            { [self] in completion(Result { () throws(StoreFailure) in try controlCall(operation) }) },
            failing: { completion(.failure($0)) })
    }

    /// Makes `handler` what the node calls, from its lease thread, with the jobs it holds that a
    /// cancel (on any node) asked to stop, within about a second of the request; it returns the
    /// ids it acted on, and the others are handed to it again a second later.
    package func onCancelRequests(_ handler: @escaping @Sendable ([(id: Int64, reason: String)]) -> [Int64]) {
        lock.withLock { cancelHandler = handler }
    }

    /// Makes `reporter` what the node writes of itself with each heartbeat (``NodeReport``).
    /// It is called on the lease thread and must not block.
    package func report(with reporter: @escaping @Sendable () -> NodeReport) {
        lock.withLock { self.reporter = reporter }
    }

    /// Runs `operation` on the control session (opened again if the last one closed).
    private func controlCall<Value: Sendable>(
        _ operation: @escaping @Sendable (StoreSession) async throws(StoreFailure) -> Value
    ) throws(StoreFailure) -> Value {
        let session: StoreSession
        if let open = lock.withLock({ control }), !open.isClosed {
            session = open
        } else {
            // Connected outside the lock: the lease thread and the event loops take it meanwhile.
            let opened = try connect(role: "control")
            let (kept, spare) = lock.withLock { () -> (StoreSession, StoreSession?) in
                if let control, !control.isClosed { return (control, opened) }
                control = opened
                return (opened, nil)
            }
            if let spare {
                _ = try? call.run { () async throws(StoreFailure) -> Bool in
                    await spare.close()
                    return true
                }
            }
            session = kept
        }
        do {
            return try call.run { () async throws(StoreFailure) in try await operation(session) }
        } catch {
            lock.withLock { if control === session && session.isClosed { control = nil } }
            throw error
        }
    }

    /// Runs `work` on the node's control thread, after what was given to it before (started
    /// with the first); `failing` hears why when the thread cannot start.
    private func onControlThread(
        _ work: @escaping @Sendable () -> Void, failing: @escaping @Sendable (StoreFailure) -> Void
    ) {
        let start = lock.withLock { () -> Bool in
            controlWork.append((work, failing))
            lock.broadcast()
            defer { controlThreadStarted = true }
            return !controlThreadStarted
        }
        guard start else { return }
        do {
            try OSThread.start(name: "concur-control") { [self] in runControlWork() }
        } catch {
            let failure = StoreFailure(kind: .permanent, message: "cannot start the job store's control thread: \(error)")
            let pending = lock.withLock { () -> [ControlWork] in
                // The next call tries to start it again.
                controlThreadStarted = false
                defer { controlWork = [] }
                return controlWork
            }
            for work in pending { work.failing(failure) }
        }
    }

    private func runControlWork() {
        while true {
            let next = lock.withLock { () -> [ControlWork] in
                while controlWork.isEmpty { lock.wait() }
                defer { controlWork = [] }
                return controlWork
            }
            for work in next { work.run() }
        }
    }

    /// Stops the lease and the listener (after the pools drained and their lanes closed): what
    /// the node still holds is put back and the node is marked stopped.
    package func close() {
        for lane in lock.withLock({ lanes }) { lane.close() }
        let listen = lock.withLock { () -> StoreSession? in
            stopping = true
            lock.broadcast()
            while !leaseThreadDone { lock.wait() }
            return listenSession
        }
        if let listen { _ = try? call.run { () async throws(StoreFailure) in await listen.close() } }
        lock.withLock { while !listenerDone { lock.wait() } }
        let incarnation = lock.withLock { self.incarnation }
        let (queue, seconds) = (queue, settings.leaseSeconds)
        do throws(StoreFailure) {
            let session = try connect(role: "stop")
            try call.run { () async throws(StoreFailure) in
                try await NodeLease(queue: queue, seconds: seconds).stop(incarnation: incarnation, on: session)
                await session.close()
            }
        } catch {
            logger.error("node \(settings.node) could not mark itself stopped in the job store: \(error)")
        }
        if let control = lock.withLock({ control }) {
            _ = try? call.run { () async throws(StoreFailure) -> Bool in
                await control.close()
                return true
            }
        }
    }

    /// A new session to the store for `role` (shown in `pg_stat_activity`).
    func connect(role: String) throws(StoreFailure) -> StoreSession {
        let (settings, logger, executor) = (settings, logger, executor)
        return try call.run { () async throws(StoreFailure) in
            let connection = try await StoreConnection.connect(
                to: settings.address, password: settings.password, passwordFile: settings.passwordFile, role: role,
                on: MultiThreadedEventLoopGroup.singleton.any(), logger: logger)
            return StoreSession(connection, address: settings.address, executor: executor)
        }
    }

    // MARK: The listener thread

    /// LISTENs on the queue's channel until the node stops, reconnecting with backoff (0.1 s,
    /// doubling to 5 s). Each (re)connection wakes every lane once: notices sent while the
    /// node was not listening are lost.
    private func runListener() {
        var backoff = 0.1
        var quiet = false
        while !lock.withLock({ stopping }) {
            var failure: StoreFailure?
            do throws(StoreFailure) {
                let session = try connect(role: "listen")
                let kept = lock.withLock { () -> Bool in
                    guard !stopping else { return false }
                    listenSession = session
                    return true
                }
                guard kept else {
                    _ = try? call.run { () async throws(StoreFailure) in await session.close() }
                    break
                }
                let (channel, wasQuiet) = (queue.channel, quiet)
                // The session ends it when the connection closes; a year is "for as long as it lives".
                try call.run { () async throws(StoreFailure) in
                    try await session.run(limit: .seconds(366 * 86_400)) { [self] connection in
                        try await connection.listen(on: channel) { notices in
                            heard(nil)
                            if wasQuiet { logger.notice("node \(settings.node): hears the queue's notices again") }
                            for try await notice in notices { heard(notice.payload) }
                        }
                    }
                }
            } catch {
                failure = error
            }
            if listening.exchange(false, ordering: .relaxed) {
                // It listened for a while: the next try starts from the shortest wait.
                quiet = false
                backoff = 0.1
            }
            let stop = lock.withLock { () -> Bool in
                listenSession = nil
                if !stopping { _ = lock.wait(untilMonotonic: MonotonicClock.now() + UInt64(backoff * 1e9)) }
                return stopping
            }
            if stop { break }
            if !quiet {
                logger.warning(
                    "node \(settings.node): does not hear the queue's notices (\(failure.map { "\($0)" } ?? "the listening session ended")); its pools look at the queue every 40 ms until it does"
                )
                quiet = true
            }
            backoff = min(backoff * 2, 5)
        }
        lock.withLock {
            listenerDone = true
            lock.broadcast()
        }
    }

    /// Sends a statement on the listening connection, with every heartbeat, without waiting for
    /// it: a connection that stays silent past half the lease (a network partition no packet
    /// announces, a frozen backend) is closed by its session's limit, and the listener
    /// reconnects. A listening connection otherwise sends nothing and would wait forever.
    private func probeListener() {
        guard let listen = lock.withLock({ listenSession }), !listen.isClosed else { return }
        let (limit, logger) = (Duration.seconds(settings.leaseSeconds / 2), logger)
        Task(executorPreference: executor) {
            // A failure closes the session: the listener, not this, reports it and reconnects.
            try? await listen.run(limit: limit) { connection in
                for try await _ in try await connection.query("SELECT 1", logger: logger).decode(Int32.self) {}
            }
        }
    }

    /// A notice that `pool` queued jobs, or (nil) that the node listens from now on and may
    /// have missed some: the lanes concerned look at the queue.
    private func heard(_ pool: String?) {
        if pool == nil { listening.store(true, ordering: .relaxed) }
        for lane in lock.withLock({ lanes }) where pool == nil || lane.pool.rawValue == pool { lane.wake() }
    }

    // MARK: The lease thread

    private func runLease() {
        let lease = NodeLease(queue: queue, seconds: settings.leaseSeconds)
        let beat = UInt64(settings.leaseSeconds / 6 * 1e9)
        let rescueEvery = UInt64(settings.leaseSeconds / 2 * 1e9)
        var session: StoreSession?
        var nextRescue = MonotonicClock.now() + rescueEvery
        var nextBeat: UInt64 = 0
        var handledCancels: Set<Int64> = []
        while true {
            let stop = lock.withLock { () -> Bool in
                if !stopping { _ = lock.wait(untilMonotonic: MonotonicClock.now() + 1_000_000_000) }
                return stopping
            }
            if stop { break }
            do throws(StoreFailure) {
                let current: StoreSession
                if let session, !session.isClosed {
                    current = session
                } else {
                    current = try connect(role: "lease")
                    session = current
                }
                let now = MonotonicClock.now()
                let incarnation = lock.withLock { self.incarnation }
                if now >= nextBeat && !hasLostLease {
                    nextBeat = now + beat
                    let report = lock.withLock { reporter }?()
                    let held = try call.run { () async throws(StoreFailure) in
                        try await lease.heartbeat(incarnation: incarnation, report: report, on: current)
                    }
                    if !held { leaseLost("its heartbeat found the lease given up") }
                    probeListener()
                }
                let queue = queue
                _ = try call.run { () async throws(StoreFailure) in try await queue.promoteDue(on: current) }
                if let handler = lock.withLock({ cancelHandler }) {
                    let requests = try call.run { () async throws(StoreFailure) in try await queue.cancelRequests(on: current) }
                    let new = requests.filter { !handledCancels.contains($0.id) }
                    // Those no longer held have ended: forgotten, so the set stays as small as the
                    // requests. Those the handler could not act on yet (no pool holds the job
                    // yet) are asked again next time.
                    handledCancels.formIntersection(requests.map(\.id))
                    if !new.isEmpty { handledCancels.formUnion(handler(new)) }
                }
                if now >= nextRescue {
                    nextRescue = now + rescueEvery
                    _ = try call.run { () async throws(StoreFailure) in try await lease.rescueLapsed(on: current) }
                    // After the rescue: the jobs it failed may have dependents.
                    _ = try call.run { () async throws(StoreFailure) in try await queue.settleStranded(on: current) }
                }
            } catch {
                logger.warning("node \(settings.node): the job store's lease thread: \(error)")
                if session?.isClosed ?? true { session = nil }
            }
        }
        if let session { _ = try? call.run { () async throws(StoreFailure) in await session.close() } }
        lock.withLock {
            leaseThreadDone = true
            lock.broadcast()
        }
    }
}
