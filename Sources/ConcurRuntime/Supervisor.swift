package import ConcurCore
package import ConcurProtocol
import Glibc
import Synchronization

/// The daemon's pools with everything around them: its identity, the models they run, one id
/// space, a loop of its own, and the drain that ends them.
///
/// The control plane calls it from its own threads; nothing here runs on a worker. No code
/// path holds two pools' locks at once: what spans pools takes one after the other.
package final class Supervisor: Sendable {
    /// What the pool starts with and its limits.
    package struct Configuration: Sendable, Equatable {
        /// The starting model.
        package var model: ConcurrencyModel
        /// The starting number of workers.
        package var workers: Int
        /// Queue, worker and retention limits.
        package var limits: PoolStateMachine.Configuration

        /// A configuration with the given values.
        package init(model: ConcurrencyModel = .threads, workers: Int = 4, limits: PoolStateMachine.Configuration = .init()) {
            self.model = model
            self.workers = workers
            self.limits = limits
        }
    }

    /// How a shutdown ended.
    package enum ShutdownOutcome: Sendable, Equatable {
        /// Every running job finished.
        case drained
        /// Running jobs were interrupted (second signal, or the drain timeout).
        case cancelled
        /// Workers were still running when the last grace period ended.
        case abandoned(workers: Int)
    }

    /// The default pool: where calls that name no pool go; it always exists.
    package let pool: Pool
    /// The daemon's id space, shared by every pool.
    package let ids: JobIDAllocator
    /// The version reported by `Status`.
    package let version: String
    /// The models every pool runs its workers with (they hold no pool's state).
    private let models: [any WorkerModel]
    private let onEvent: @Sendable (String) -> Void
    /// Every pool, in ``PoolName`` order (the default first), and whether a reload removed it.
    private let directory = PoolDirectory()
    /// Carries the ends of jobs that other pools' jobs run after.
    private let relay: DependencyRelay
    private let startedAt = MonotonicClock.now()
    private let processID = Int(getpid())
    private let loopRunning = Atomic<Bool>(false)
    private let loopWakeup = ConditionLock()
    /// Submits that scheduled a job, counted (see the loop's wait).
    private let schedules = ScheduleCount()
    private let loopHung = Atomic<Bool>(false)
    private let cpu = Mutex(CPUMeter())

    /// One pool the supervisor starts with.
    package struct PoolSetup: Sendable {
        /// Its name.
        package var name: PoolName
        /// Its model, workers and limits.
        package var configuration: Configuration
        /// Where its jobs are kept (see ``JobStore``).
        package var store: any JobStore
        /// Whether it is not configured: its store's jobs are kept and shown, none runs (a
        /// journal left by a pool since removed).
        package var removed = false

        /// A pool with these parts.
        package init(name: PoolName, configuration: Configuration, store: any JobStore = MemoryJobStore(), removed: Bool = false)
        {
            self.name = name
            self.configuration = configuration
            self.store = store
            self.removed = removed
        }
    }

    /// A supervisor with one pool, `default`; `onEvent` hears about workers that died or could
    /// not start.
    ///
    /// The pool keeps its jobs in `store` (see ``JobStore``): what the store held is put back
    /// first (its records and the next job id), and every change is recorded there before it
    /// matters outside the pool.
    package convenience init(
        configuration: Configuration, models: [any WorkerModel], version: String, store: any JobStore = MemoryJobStore(),
        onEvent: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.init(
            pools: [PoolSetup(name: .default, configuration: configuration, store: store)], models: models, version: version,
            onEvent: onEvent)
    }

    /// A supervisor with these pools (`default` among them, or it is added with the default
    /// configuration and a store in memory), sharing one id space and `models`.
    ///
    /// Every store is read before any pool exists: ids continue above the highest any store
    /// held, and a job waiting for a job of another pool waits on (or goes on, or is cancelled,
    /// if that one ended) as if both had been in one pool.
    package init(
        pools: [PoolSetup], models: [any WorkerModel], version: String, onEvent: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.version = version
        self.models = models
        self.onEvent = onEvent
        let directory = directory
        relay = DependencyRelay { source, id, state in
            for pool in directory.pools where pool.name != source { pool.settleForeign(id, ended: state) }
        }
        var pools = pools
        if !pools.contains(where: { $0.name == .default }) {
            pools.append(PoolSetup(name: .default, configuration: Configuration()))
        }
        pools.sort { $0.name < $1.name }
        let restored = pools.map { $0.store.takeRestored() }
        let ids = JobIDAllocator(first: restored.compactMap { $0?.nextJobID }.max() ?? 1)
        self.ids = ids
        let parts = PoolParts(
            ids: ids, models: models, onEvent: onEvent, wakeup: loopWakeup, schedules: schedules, relay: relay)
        // Which pool holds each restored job, and in what state: for jobs that run after another
        // pool's (only when there are other pools).
        var owners: [JobID: (pool: PoolName, state: JobState)] = [:]
        if pools.count > 1 {
            for (setup, restored) in zip(pools, restored) {
                for record in restored?.records ?? [] { owners[record.id] = (setup.name, record.state) }
            }
        }
        var made: [Pool] = []
        for (setup, restored) in zip(pools, restored) {
            made.append(
                Self.makePool(setup.name, setup.configuration, store: setup.store, restored: restored, parts: parts) { id in
                    owners[id].flatMap { $0.pool == setup.name ? nil : $0.state }
                })
        }
        pool = made.first { $0.name == .default }!
        directory.entries.withLock { entries in
            entries = zip(made, pools).map { PoolEntry(pool: $0, removed: $1.removed) }
        }
        // Restored jobs that wait for another pool's: that pool announces the end, or it has
        // ended already (a job in no record ended long ago, done).
        for waiter in made {
            for id in waiter.read({ $0.foreignDependencies }) {
                let owner = owners[id].flatMap { owner in made.first { $0.name == owner.pool } }
                let state = owner?.awaitFromOutside(id) ?? .done
                if state.isFinal { waiter.settleForeign(id, ended: state) }
            }
        }
    }

    /// What every pool is made with.
    private struct PoolParts {
        let ids: JobIDAllocator
        let models: [any WorkerModel]
        let onEvent: @Sendable (String) -> Void
        let wakeup: ConditionLock
        let schedules: ScheduleCount
        let relay: DependencyRelay
    }

    private var parts: PoolParts {
        PoolParts(ids: ids, models: models, onEvent: onEvent, wakeup: loopWakeup, schedules: schedules, relay: relay)
    }

    private func makePool(
        _ name: PoolName, _ configuration: Configuration, store: any JobStore,
        restored: (records: [JobRecord], nextJobID: JobID)?
    ) -> Pool {
        Self.makePool(name, configuration, store: store, restored: restored, parts: parts)
    }

    private static func makePool(
        _ name: PoolName, _ configuration: Configuration, store: any JobStore,
        restored: (records: [JobRecord], nextJobID: JobID)?, parts: PoolParts, foreign: (JobID) -> JobState? = { _ in nil }
    ) -> Pool {
        let (ids, models) = (parts.ids, parts.models)
        var state = PoolStateMachine(model: configuration.model, configuration: configuration.limits, clock: MonotonicClock())
        if let restored {
            state.restore(
                restored.records, nextJobID: max(restored.nextJobID, ids.allocatedBelow), now: MonotonicClock.now(),
                foreign: foreign)
        }
        let prefix = name == .default ? "" : "pool \(name): "
        let (onEvent, wakeup, schedules, relay) = (parts.onEvent, parts.wakeup, parts.schedules, parts.relay)
        // Under the pool's lock: the loop takes this one and then the pool's, never the reverse
        // while it holds this one. The count tells a loop that read the due time before this
        // submit and has not started waiting yet.
        let scheduled: @Sendable () -> Void = {
            wakeup.withLock {
                schedules.value.add(1, ordering: .releasing)
                wakeup.broadcast()
            }
        }
        return Pool(
            name: name, state: state, models: models, store: store, ids: ids, onEvent: { message in onEvent(prefix + message) },
            onDependencyEnded: { source, id, ended in relay.announce(id, ended, from: source) }, onScheduled: scheduled)
    }

    // MARK: Pools

    /// Every pool, the default first, then by name; removed ones included.
    package var pools: [Pool] { directory.pools }

    /// The names of the pools that take work, in order.
    package var activeNames: [PoolName] { directory.entries.withLock { $0.filter { !$0.removed }.map(\.pool.name) } }

    /// Whether the pool named `name` was removed by a reload (or is not configured).
    package func isRemoved(_ name: PoolName) -> Bool {
        directory.entries.withLock { $0.first { $0.pool.name == name }?.removed ?? false }
    }

    /// The pool a call addresses: `name`'s (nil: the default), if it takes work; a removed or
    /// unknown name is an ``UnknownPoolError`` listing those that do.
    package func pool(named name: PoolName?) throws(UnknownPoolError) -> Pool {
        guard let name, name != .default else { return pool }
        let found = directory.entries.withLock { $0.first { $0.pool.name == name } }
        guard let found, !found.removed else {
            throw UnknownPoolError(name: name, removed: found != nil, pools: activeNames)
        }
        return found.pool
    }

    /// The pool `name` (nil: the default), removed or not: what reads and cancels address.
    package func anyPool(named name: PoolName?) throws(UnknownPoolError) -> Pool {
        guard let name, name != .default else { return pool }
        guard let found = directory.entries.withLock({ $0.first { $0.pool.name == name } }) else {
            throw UnknownPoolError(name: name, removed: false, pools: activeNames)
        }
        return found.pool
    }

    /// The pool that holds a record of job `id`, if any does.
    package func pool(holding id: JobID) -> Pool? {
        let pools = pools
        if pools.count == 1 { return pool.read { $0.holds(id) } ? pool : nil }
        return pools.first { pool in pool.read { $0.holds(id) } }
    }

    /// Adds a pool (for a reload), or takes a removed one back with its kept jobs: its limits
    /// and model become `configuration`'s, and its workers start (without waiting for them).
    /// `store` serves a new pool only; one taken back keeps its own.
    @discardableResult
    package func addPool(_ name: PoolName, configuration: Configuration, store: any JobStore) throws -> Pool {
        if let kept = directory.entries.withLock({ $0.first { $0.pool.name == name } }) {
            try kept.pool.updateConfiguration(configuration.limits)
            if kept.pool.read({ $0.model }) != configuration.model {
                _ = try kept.pool.setModel(configuration.model, preempt: false) { _ in }
            }
            _ = try kept.pool.resize(to: configuration.workers)
            directory.entries.withLock { entries in
                if let index = entries.firstIndex(where: { $0.pool.name == name }) { entries[index].removed = false }
            }
            return kept.pool
        }
        let made = makePool(name, configuration, store: store, restored: store.takeRestored())
        ids.raise(to: made.read { $0.nextJobID })
        directory.entries.withLock { entries in
            entries.append(PoolEntry(pool: made, removed: false))
            entries.sort { $0.pool.name < $1.pool.name }
        }
        _ = try made.resize(to: configuration.workers)
        return made
    }

    /// Accepts `specs` into `pool` (see ``Pool/submit(_:watch:foreign:whenDurable:)``); a job may
    /// run after jobs of any pool. For those another pool holds, `pool` first notes that it
    /// expects them, then each is registered with the pool that holds it (one lock at a time):
    /// so an end that comes before the submit is accepted is not missed.
    package func submit(
        _ specs: [JobSpec], to pool: Pool, watch sink: JobWatchSink? = nil,
        whenDurable: @escaping @Sendable (JournalFailure?) -> Void
    ) throws(SubmitError) -> (ids: Range<JobID>, watch: Int?) {
        try pool.submit(specs, watch: sink, foreign: foreignStates(for: specs, in: pool), whenDurable: whenDurable)
    }

    /// The states of the jobs other pools hold that `specs` run after, each registered with its
    /// pool (see ``submit(_:to:watch:whenDurable:)``).
    private func foreignStates(for specs: [JobSpec], in pool: Pool) -> [JobID: JobState] {
        let others = pools.filter { $0 !== pool }
        guard !others.isEmpty else { return [:] }
        var wanted = Set<JobID>()
        for spec in specs where !spec.after.isEmpty { wanted.formUnion(spec.after) }
        guard !wanted.isEmpty else { return [:] }
        let outside = pool.notHeld(wanted)
        guard !outside.isEmpty else { return [:] }
        pool.expectForeign(outside)
        var states: [JobID: JobState] = [:]
        var unknown: [JobID] = []
        for id in outside {
            if let state = others.lazy.compactMap({ $0.awaitFromOutside(id) }).first {
                states[id] = state
            } else {
                unknown.append(id)
            }
        }
        // Held by no pool: the submit refuses them, so nothing is expected of them.
        if !unknown.isEmpty { pool.forgetExpected(unknown) }
        return states
    }

    /// Removes a pool from service (for a reload): it takes no more jobs, its workers retire
    /// after their running job, and its queued, scheduled and waiting jobs are kept (in memory
    /// and in its journal) until it is added back. The default pool cannot be removed.
    package func removePool(_ name: PoolName) {
        guard name != .default else { return }
        let found = directory.entries.withLock { entries -> Pool? in
            guard let index = entries.firstIndex(where: { $0.pool.name == name && !$0.removed }) else { return nil }
            entries[index].removed = true
            return entries[index].pool
        }
        found?.retireAll()
    }

    /// Starts the first workers and waits (up to `timeout` seconds) until each one is running.
    package func start(workers: Int, timeout: Double = 10) throws(ResizeError) {
        _ = try pool.resize(to: workers)
        _ = pool.waitUntilWorkersStarted(deadline: MonotonicClock.now() + UInt64(timeout * 1e9))
    }

    /// Starts each pool's first workers and waits (up to `timeout` seconds in all) until each
    /// one is running.
    package func start(pools sizes: [(name: PoolName, workers: Int)], timeout: Double = 10) throws(ResizeError) {
        let deadline = MonotonicClock.now() + UInt64(timeout * 1e9)
        var started: [Pool] = []
        for size in sizes {
            guard let pool = try? pool(named: size.name) else { continue }
            _ = try pool.resize(to: size.workers)
            started.append(pool)
        }
        for pool in started { _ = pool.waitUntilWorkersStarted(deadline: deadline) }
    }

    /// The daemon at a glance, as `pool` (the default one unless given) sees it.
    package func status(of pool: Pool? = nil) -> PoolStatus {
        let pool = pool ?? self.pool
        let removed = isRemoved(pool.name)
        return pool.read { state in makeStatus(state, pool: pool, removed: removed, now: MonotonicClock.now()) }
    }

    /// Every pool at a glance, the default first; a removed pool only while it holds unfinished
    /// jobs (one that holds none still answers for its jobs by id). `withLatency` adds each
    /// one's recent run times (computed outside its lock).
    package func statuses(withLatency: Bool = false) -> [PoolStatus] {
        let entries = directory.entries.withLock { $0 }
        let now = MonotonicClock.now()
        return entries.compactMap { entry in
            let (status, window) = entry.pool.read { state in
                (
                    makeStatus(state, pool: entry.pool, removed: entry.removed, now: now),
                    withLatency ? state.latency.window : nil
                )
            }
            if status.removed && status.queued + status.scheduled + status.waiting + status.running == 0 { return nil }
            guard let window else { return status }
            var withRun = status
            withRun.recentRun = window.summary(now: now).run
            return withRun
        }
    }

    /// Everything measured of `pool` (the default one unless given), with every pool's status.
    /// Percentiles are computed outside the pool's lock.
    package func stats(of pool: Pool? = nil) -> PoolStats {
        let pool = pool ?? self.pool
        let removed = isRemoved(pool.name)
        let now = MonotonicClock.now()
        var (status, latency, throughput, rows, resizes, events, lastSwitch, recent) = pool.read { state in
            (
                makeStatus(state, pool: pool, removed: removed, now: now), state.latency,
                state.throughput.throughput(at: now, total: state.totals.finished),
                state.workerRows(now: now), state.resizes, state.events,
                state.lastSwitch.map { $0.modelSwitch(clock: state.clock) }, state.lastEvents
            )
        }
        // /proc is read, and percentiles computed, outside the pool's lock.
        for index in rows.indices {
            if let pid = rows[index].pid { rows[index].rssBytes = ProcessUsage.residentBytes(of: pid) }
        }
        var process = ProcessUsage.current()
        process.cpuPercent = cpu.withLock { $0.percent }
        var stats = PoolStats(
            status: status, throughput: throughput, latency: latency.summary, recentLatency: latency.window.summary(now: now),
            workers: rows, process: process, resizes: resizes, workerDeaths: events.deaths, workerRestarts: events.restarts,
            lastSwitch: lastSwitch, events: recent)
        stats.pools = statuses(withLatency: true)
        return stats
    }

    /// Samples the CPU used by the daemon and its child workers (about once a second).
    package func sampleCPU() {
        let pids = pools.flatMap { pool in
            pool.read { state in state.workers.values.compactMap { $0.model == .processes ? $0.osID : nil } }
        }
        var children: [Int: Double] = [:]
        for pid in pids {
            if let seconds = ProcessUsage.cpuSeconds(of: pid) { children[pid] = seconds }
        }
        let usage = ProcessUsage.current()
        let now = MonotonicClock.now()
        cpu.withLock { $0.sample(now: now, own: usage.cpuUserSeconds + usage.cpuSystemSeconds, children: children) }
    }

    private func makeStatus(_ state: PoolStateMachine, pool: Pool, removed: Bool, now: UInt64) -> PoolStatus {
        var status = PoolStatus(
            version: version, pid: processID, uptimeSeconds: Double(now - startedAt) / 1e9, model: state.model,
            phase: state.phase, workers: state.workerCounts, queued: state.queuedCount, running: state.runningCount,
            maxQueue: state.configuration.maxQueue, totals: state.totals,
            warnings: (state.journalFailure.map { [$0] } ?? [])
                + state.events.fatal.sorted { $0.key.rawValue < $1.key.rawValue }.map { model, reason in
                    "\(model.rawValue) workers kept dying at start and are no longer restarted (last: \(reason)); resize to try again"
                }, switches: state.switches, handingOver: state.workers.values.count { $0.model != state.model },
            paused: state.paused, scheduled: state.scheduledCount, waiting: state.waitingCount)
        status.pool = pool.name.rawValue
        status.removed = removed
        status.node = pool.store.sharedNode
        if state.workers.values.contains(where: { $0.model == .tasks }) {
            status.taskThreads = models.first { $0.model == .tasks }?.sharedThreads
        }
        return status
    }

    /// The one-line summary of every pool (as ``statusLine(_:recorder:)``), naming the store
    /// the way the default pool's store names itself (``JobStore/recorderName``).
    package func statusLine() -> String {
        Self.statusLine(statuses(), recorder: recorderName)
    }

    /// How the default pool's store names itself in the status line.
    package var recorderName: String { pool.store.recorderName }

    /// The one-line summary for systemd's `STATUS=` and logs, of one pool.
    package static func statusLine(_ status: PoolStatus, recorder: String = "the job journal") -> String {
        phasePrefix(status, recorder: recorder) + poolSummary(status)
            + ", \(status.running) running, \(status.totals.done) done, \(status.totals.failed) failed"
            + (status.switches > 0 ? ", \(status.switches) switch\(status.switches == 1 ? "" : "es")" : "")
    }

    /// The one-line summary of every pool: with one, as ``statusLine(_:)``; with more, the
    /// daemon's phase, then each pool's model, workers and queue (at most six, then how many
    /// more), then the totals of all.
    package static func statusLine(_ statuses: [PoolStatus], recorder: String = "the job journal") -> String {
        guard statuses.count > 1, let first = statuses.first else {
            return statuses.first.map { statusLine($0, recorder: recorder) } ?? ""
        }
        let shown = 6
        let parts = statuses.prefix(shown).map { status -> String in
            if status.removed {
                let kept = status.queued + status.scheduled + status.waiting
                return "\(status.pool) removed, \(kept) kept" + (status.running > 0 ? ", \(status.running) running" : "")
            }
            return "\(status.pool) " + (status.paused ? "paused " : "") + poolSummary(status)
        }
        let more = statuses.count > shown ? "; +\(statuses.count - shown) more" : ""
        let totals = statuses.reduce(JobTotals()) { $0 + $1.totals }
        let running = statuses.reduce(0) { $0 + $1.running }
        let pools =
            "\(statuses.count) pools: " + parts.joined(separator: "; ") + more
            + " - \(running) running, \(totals.done) done, \(totals.failed) failed"
        // A drain is the daemon's; a journal that cannot record is said for each pool it stops.
        let degraded = statuses.filter { $0.phase == .degraded }.map(\.pool)
        if first.phase == .draining || first.phase == .stopping || degraded.isEmpty {
            var leading = first
            leading.paused = false
            return phasePrefix(leading, recorder: recorder) + pools
        }
        return
            "degraded (\(degraded.joined(separator: ", "))), \(recorder) cannot record (new jobs refused there, none started): "
            + pools
    }

    private static func phasePrefix(_ status: PoolStatus, recorder: String) -> String {
        switch status.phase {
        case .serving: status.paused ? "paused: " : ""
        case .degraded: "degraded, \(recorder) cannot record (new jobs refused, none started): "
        case .draining, .stopping: "\(status.phase.rawValue): "
        }
    }

    /// A pool's model, workers and queue: `threads, 4 workers (1 busy), 3 queued`.
    private static func poolSummary(_ status: PoolStatus) -> String {
        let handover = status.handingOver > 0 ? ", \(status.handingOver) of the old model finishing" : ""
        return
            "\(status.model.rawValue), \(status.workers.live) worker\(status.workers.live == 1 ? "" : "s") (\(status.workers.busy) busy\(handover)), "
            + "\(status.queued) queued" + (status.scheduled > 0 ? ", \(status.scheduled) scheduled" : "")
            + (status.waiting > 0 ? ", \(status.waiting) waiting" : "")
    }

    // MARK: The supervisor loop

    /// Starts the supervisor's own loop on a dedicated thread. Every 100 ms it enforces time
    /// limits and rebalances prefetched jobs; between those steps it wakes when a scheduled or
    /// retrying job is due, so that one starts on time; every `interval` seconds it samples throughput and
    /// calls `onTick`. The watchdog ping belongs in `onTick`, so that it stops when this loop
    /// stops.
    ///
    /// `heartbeat` is called every `heartbeatEvery` seconds (rounded to the 100 ms step) from the
    /// loop itself, after the pool's tick: systemd's watchdog ping, which stops when the loop
    /// does.
    package func startLoop(
        interval: Double = 1, heartbeatEvery: Double? = nil, heartbeat: @escaping @Sendable () -> Void = {},
        onTick: @escaping @Sendable (Supervisor) -> Void
    ) throws {
        loopRunning.store(true, ordering: .releasing)
        try OSThread.start(name: "concur-supervisor") { [self] in
            let step: UInt64 = 100_000_000
            let every = max(1, Int((interval * 1e9 / Double(step)).rounded()))
            let beatEvery = heartbeatEvery.map { max(1, Int(($0 * 1e9 / Double(step)).rounded(.down))) }
            var next = MonotonicClock.now() + step
            // The count of scheduling submits the due time was read after.
            var seen = schedules.value.load(ordering: .acquiring)
            var due = releaseDue()
            var count = 0
            while loopRunning.load(ordering: .acquiring) {
                if loopHung.load(ordering: .acquiring) {
                    // A test hook: the loop stops here for good, as a stuck supervisor would.
                    let never = ConditionLock()
                    never.withLock { while true { never.wait() } }
                }
                // A submit that schedules a job wakes the wait; the due time is then read again.
                // One scheduled since the due time was read counts as a wake-up not waited for.
                let woken = loopWakeup.withLock { () -> Bool in
                    if schedules.value.load(ordering: .acquiring) != seen { return true }
                    let until = min(next, due ?? .max)
                    guard loopRunning.load(ordering: .acquiring) && MonotonicClock.now() < until else { return false }
                    _ = loopWakeup.wait(untilMonotonic: until)
                    return true
                }
                guard loopRunning.load(ordering: .acquiring) else { break }
                if MonotonicClock.now() < next {
                    if woken || due.map({ MonotonicClock.now() >= $0 }) == true {
                        seen = schedules.value.load(ordering: .acquiring)
                        due = releaseDue()
                    }
                    continue
                }
                next += step
                seen = schedules.value.load(ordering: .acquiring)
                due = releaseDue()
                let pools = pools
                for pool in pools { pool.tick() }
                count += 1
                if let beatEvery, count % beatEvery == 0 { heartbeat() }
                if count % every == 0 {
                    for pool in pools { pool.sampleThroughput() }
                    sampleCPU()
                    onTick(self)
                }
            }
        }
    }

    /// Queues every pool's jobs whose time came; the earliest next due time of any pool.
    private func releaseDue() -> UInt64? {
        pools.compactMap { $0.releaseDue() }.min()
    }

    /// Makes the loop stop for good at its next step, without ending: how tests simulate a
    /// hung supervisor for the watchdog (only when the daemon's test hooks are on).
    package func hangLoop() {
        loopHung.store(true, ordering: .releasing)
    }

    /// Stops the loop (it ends within one step).
    package func stopLoop() {
        loopWakeup.withLock {
            loopRunning.store(false, ordering: .releasing)
            loopWakeup.broadcast()
        }
    }

    // MARK: Shutdown

    /// Drains every pool: intake closes, running jobs finish, queued jobs are cancelled (with a
    /// journal they stay queued in it for the next start).
    ///
    /// After `timeout` seconds running jobs are interrupted, and after a further `grace`
    /// seconds the supervisor gives up waiting. `progress` is called about once a second with
    /// the number of jobs still running (for EXTEND_TIMEOUT_USEC while a long drain advances).
    package func drain(timeout: Double, grace: Double = 5, progress: (Int) -> Void = { _ in }) -> ShutdownOutcome {
        let pools = pools
        for pool in pools { pool.beginDrain() }
        let deadline = MonotonicClock.now() + UInt64(max(0, timeout) * 1e9)
        func drained(by deadline: UInt64) -> Bool {
            pools.allSatisfy { $0.waitUntilDrained(deadline: deadline) }
        }
        while !drained(by: min(deadline, MonotonicClock.now() + 1_000_000_000)) {
            if MonotonicClock.now() >= deadline {
                for pool in pools {
                    pool.cancelRunning(reason: "interrupted: the drain timeout of \(formatDecimal(timeout)) s passed")
                }
                break
            }
            progress(runningCount)
        }
        if !drained(by: MonotonicClock.now() + UInt64(grace * 1e9)) {
            return .abandoned(workers: pools.reduce(0) { count, pool in count + pool.read { $0.workers.count } })
        }
        return pools.contains { pool in pool.read { $0.stopping } } ? .cancelled : .drained
    }

    /// Jobs running now, in every pool.
    package var runningCount: Int {
        pools.reduce(0) { count, pool in count + pool.read { $0.runningCount } }
    }

    /// Unfinished jobs a drain left for the next start, in every pool.
    package var keptForRestart: Int {
        pools.reduce(0) { count, pool in count + pool.read { $0.keptForRestart } }
    }
}

/// A supervisor's pools, shared with the relay that carries ends between them (a class: the
/// relay's closure captures it before the supervisor exists).
private final class PoolDirectory: Sendable {
    let entries = Mutex<[PoolEntry]>([])

    /// Every pool, in order.
    var pools: [Pool] { entries.withLock { $0.map(\.pool) } }
}

/// One pool of a supervisor, and whether a reload removed it.
private struct PoolEntry {
    let pool: Pool
    var removed: Bool
}

/// The count of submits that scheduled a job, shared by the pool's callback and the supervisor
/// loop (a class: the callback captures it before the supervisor exists).
private final class ScheduleCount: Sendable {
    let value = Atomic<Int>(0)
}
