package import ConcurCore
package import ConcurProtocol
import Glibc
import Synchronization

/// The daemon's pool with everything around it: its identity, the models it can run, a loop
/// of its own, and the drain that ends it.
///
/// The control plane calls it from its own threads; nothing here runs on a worker.
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

    /// The pool.
    package let pool: Pool
    /// The version reported by `Status`.
    package let version: String
    private let startedAt = MonotonicClock.now()
    private let processID = Int(getpid())
    private let loopRunning = Atomic<Bool>(false)
    private let loopWakeup = ConditionLock()
    /// Submits that scheduled a job, counted (see the loop's wait).
    private let schedules = ScheduleCount()
    private let loopHung = Atomic<Bool>(false)
    private let cpu = Mutex(CPUMeter())

    /// A supervisor whose pool can run workers with `models`; `onEvent` hears about workers
    /// that died or could not start.
    ///
    /// The pool keeps its jobs in `store` (see ``JobStore``): what the store held is put back
    /// first (its records and the next job id), and every change is recorded there before it
    /// matters outside the pool.
    package init(
        configuration: Configuration, models: [any WorkerModel], version: String, store: any JobStore = MemoryJobStore(),
        onEvent: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.version = version
        var state = PoolStateMachine(model: configuration.model, configuration: configuration.limits, clock: MonotonicClock())
        if let restored = store.takeRestored() {
            state.restore(restored.records, nextJobID: restored.nextJobID, now: MonotonicClock.now())
        }
        pool = Pool(state: state, models: models, store: store, onEvent: onEvent) { [loopWakeup, schedules] in
            // Under the pool's lock: the loop takes this one and then the pool's, never the reverse
            // while it holds this one. The count tells a loop that read the due time before this
            // submit and has not started waiting yet.
            loopWakeup.withLock {
                schedules.value.add(1, ordering: .releasing)
                loopWakeup.broadcast()
            }
        }
    }

    /// Starts the first workers and waits (up to `timeout` seconds) until each one is running.
    package func start(workers: Int, timeout: Double = 10) throws(ResizeError) {
        _ = try pool.resize(to: workers)
        _ = pool.waitUntilWorkersStarted(deadline: MonotonicClock.now() + UInt64(timeout * 1e9))
    }

    /// The daemon at a glance.
    package func status() -> PoolStatus {
        pool.read { state in makeStatus(state, now: MonotonicClock.now()) }
    }

    /// Everything measured. Percentiles are computed outside the pool's lock.
    package func stats() -> PoolStats {
        let now = MonotonicClock.now()
        var (status, latency, throughput, rows, resizes, events, lastSwitch, recent) = pool.read { state in
            (
                makeStatus(state, now: now), state.latency, state.throughput.throughput(at: now, total: state.totals.finished),
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
        return PoolStats(
            status: status, throughput: throughput, latency: latency.summary, recentLatency: latency.window.summary(now: now),
            workers: rows, process: process, resizes: resizes, workerDeaths: events.deaths, workerRestarts: events.restarts,
            lastSwitch: lastSwitch, events: recent)
    }

    /// Samples the CPU used by the daemon and its child workers (about once a second).
    package func sampleCPU() {
        let pids = pool.read { state in state.workers.values.compactMap { $0.model == .processes ? $0.osID : nil } }
        var children: [Int: Double] = [:]
        for pid in pids {
            if let seconds = ProcessUsage.cpuSeconds(of: pid) { children[pid] = seconds }
        }
        let usage = ProcessUsage.current()
        let now = MonotonicClock.now()
        cpu.withLock { $0.sample(now: now, own: usage.cpuUserSeconds + usage.cpuSystemSeconds, children: children) }
    }

    private func makeStatus(_ state: PoolStateMachine, now: UInt64) -> PoolStatus {
        PoolStatus(
            version: version, pid: processID, uptimeSeconds: Double(now - startedAt) / 1e9, model: state.model,
            phase: state.phase, workers: state.workerCounts, queued: state.queuedCount, running: state.runningCount,
            maxQueue: state.configuration.maxQueue, totals: state.totals,
            warnings: (state.journalFailure.map { [$0] } ?? [])
                + state.events.fatal.sorted { $0.key.rawValue < $1.key.rawValue }.map { model, reason in
                    "\(model.rawValue) workers kept dying at start and are no longer restarted (last: \(reason)); resize to try again"
                }, switches: state.switches, handingOver: state.workers.values.count { $0.model != state.model },
            paused: state.paused, scheduled: state.scheduledCount, waiting: state.waitingCount)
    }

    /// The one-line summary for systemd's `STATUS=` and logs.
    package static func statusLine(_ status: PoolStatus) -> String {
        let phase =
            switch status.phase {
            case .serving: status.paused ? "paused: " : ""
            case .degraded: "degraded, the job journal cannot record (new jobs refused, none started): "
            case .draining, .stopping: "\(status.phase.rawValue): "
            }
        let handover = status.handingOver > 0 ? ", \(status.handingOver) of the old model finishing" : ""
        let switches = status.switches > 0 ? ", \(status.switches) switch\(status.switches == 1 ? "" : "es")" : ""
        return "\(phase)\(status.model.rawValue), \(status.workers.live) workers (\(status.workers.busy) busy\(handover)), "
            + "\(status.queued) queued, " + (status.scheduled > 0 ? "\(status.scheduled) scheduled, " : "")
            + (status.waiting > 0 ? "\(status.waiting) waiting, " : "")
            + "\(status.running) running, \(status.totals.done) done, \(status.totals.failed) failed"
            + switches
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
            var due = pool.releaseDue()
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
                        due = pool.releaseDue()
                    }
                    continue
                }
                next += step
                seen = schedules.value.load(ordering: .acquiring)
                due = pool.releaseDue()
                pool.tick()
                count += 1
                if let beatEvery, count % beatEvery == 0 { heartbeat() }
                if count % every == 0 {
                    pool.sampleThroughput()
                    sampleCPU()
                    onTick(self)
                }
            }
        }
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

    /// Drains the pool: intake closes, running jobs finish, queued jobs are cancelled (with a
    /// journal they stay queued in it for the next start).
    ///
    /// After `timeout` seconds running jobs are interrupted, and after a further `grace`
    /// seconds the supervisor gives up waiting. `progress` is called about once a second with
    /// the number of jobs still running (for EXTEND_TIMEOUT_USEC while a long drain advances).
    package func drain(timeout: Double, grace: Double = 5, progress: (Int) -> Void = { _ in }) -> ShutdownOutcome {
        pool.beginDrain()
        let deadline = MonotonicClock.now() + UInt64(max(0, timeout) * 1e9)
        while !pool.waitUntilDrained(deadline: min(deadline, MonotonicClock.now() + 1_000_000_000)) {
            if MonotonicClock.now() >= deadline {
                pool.cancelRunning(reason: "interrupted: the drain timeout of \(formatDecimal(timeout)) s passed")
                break
            }
            progress(pool.read { $0.runningCount })
        }
        if !pool.waitUntilDrained(deadline: MonotonicClock.now() + UInt64(grace * 1e9)) {
            return .abandoned(workers: pool.read { $0.workers.count })
        }
        return pool.read { $0.stopping } ? .cancelled : .drained
    }
}

/// The count of submits that scheduled a job, shared by the pool's callback and the supervisor
/// loop (a class: the callback captures it before the supervisor exists).
private final class ScheduleCount: Sendable {
    let value = Atomic<Int>(0)
}
