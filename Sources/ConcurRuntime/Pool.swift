package import ConcurCore
package import ConcurProtocol
import Glibc
import Synchronization

/// The pool: a ``PoolStateMachine`` behind a lock, and the effects its transitions ask for.
///
/// Thread workers block in ``nextBatch(for:completing:limit:)``; task workers use
/// ``exchange(for:completing:limit:)`` and wait on their doorbell; a child process's proxy uses the
/// non-blocking calls (``assign(worker:limit:)``, ``finish(worker:reports:)``) and waits on its
/// doorbell. Control calls come from the control plane's threads.
///
/// `@unchecked Sendable`: every stored `var` is read and written only while holding `lock`
/// (a pthread mutex, needed for the conditions that idle thread workers wait on). What workers
/// call is in Pool+Workers.swift.
package final class Pool: JobChangeSource, @unchecked Sendable {
    /// The pool's name in its daemon (`default` for a pool of its own).
    package let name: PoolName
    /// Where its job ids come from: the daemon's, shared with its other pools; nil: the
    /// state machine's own count.
    let ids: JobIDAllocator?
    let lock = ConditionLock()
    let drainedCondition: Condition
    let startedCondition: Condition
    var state: PoolStateMachine
    var handles: [WorkerID: WorkerHandle] = [:]
    var sinks: [Int: JobWatchSink] = [:]
    /// Watches that follow the pool's events, and how many events they have been given.
    var eventSinks: [Int: JobWatchSink] = [:]
    var eventsPublished = 0
    let models: [ConcurrencyModel: any WorkerModel]
    let onEvent: @Sendable (String) -> Void
    /// Told when a submit scheduled a job (its time may come before the loop's next step).
    let onScheduled: @Sendable () -> Void
    /// Told, under the lock, that a job other pools wait for ended (it must only queue it).
    let onDependencyEnded: @Sendable (PoolName, JobID, JobState) -> Void
    /// The completions of callers waiting for a switch, by the state machine's ticket.
    var switchCompletions: [Int: @Sendable (SwitchOutcome) -> Void] = [:]
    /// Where the jobs are kept: submits reply and workers get jobs only once it holds them.
    let store: any JobStore
    /// Whether the store records changes (false for memory: nothing is collected or awaited).
    let recordsChanges: Bool

    /// A pool that runs workers with `models` (one per ``ConcurrencyModel`` it supports).
    ///
    /// - Parameter onEvent: told about workers that could not be started, died, or were replaced.
    /// - Parameter onScheduled: told (with the pool's lock held: it must not take it) when a
    ///   submit scheduled a job, so that whoever calls ``releaseDue()`` wakes in time for it.
    /// - Parameter store: must hold each change before it matters outside the pool; if it
    ///   records changes, the pool collects them for it (``takeJournalChanges()``).
    /// - Parameter ids: the daemon's id space, if it runs other pools; nil: ids continue from
    ///   the state machine's own `nextJobID`.
    package init(
        name: PoolName = .default, state: PoolStateMachine, models: [any WorkerModel], store: any JobStore = MemoryJobStore(),
        ids: JobIDAllocator? = nil, onEvent: @escaping @Sendable (String) -> Void = { _ in },
        onDependencyEnded: @escaping @Sendable (PoolName, JobID, JobState) -> Void = { _, _, _ in },
        onScheduled: @escaping @Sendable () -> Void = {}
    ) {
        self.name = name
        self.onDependencyEnded = onDependencyEnded
        self.ids = ids
        var state = state
        recordsChanges = store.recordsChanges
        if recordsChanges { state.startJournal() }
        self.state = state
        self.store = store
        self.models = Dictionary(uniqueKeysWithValues: models.map { ($0.model, $0) })
        self.drainedCondition = lock.makeCondition()
        self.startedCondition = lock.makeCondition()
        self.onEvent = onEvent
        self.onScheduled = onScheduled
    }

    /// Reads the state under the lock.
    package func read<T, E: Error>(_ body: (PoolStateMachine) throws(E) -> T) throws(E) -> T {
        try lock.withLock { () throws(E) in try body(state) }
    }

    // MARK: Control

    /// Accepts a batch of jobs, all or none, and returns once the journal (if any) holds them.
    /// With a `sink`, their completions stream to it.
    package func submit(_ specs: [JobSpec], watch sink: JobWatchSink? = nil, foreign: [JobID: JobState] = [:])
        throws(SubmitError) -> (ids: Range<JobID>, watch: Int?)
    {
        let (ids, watch, count) = try accept(specs, watch: sink, foreign: foreign)
        do throws(JournalFailure) {
            if recordsChanges { try store.waitUntilDurable(count) }
        } catch {
            throw .notDurable(reason: Self.notJournaled(ids, error).reason)
        }
        return (ids, watch)
    }

    /// Accepts a batch of jobs, all or none, without waiting for the journal: `whenDurable` is
    /// called once it holds them (with nil; at once without a journal), or with what failed:
    /// the jobs were accepted then, and will run unless concurd stops first. This is how the
    /// control plane replies without blocking its event loop on a commit.
    ///
    /// `foreign` gives the states of other pools' jobs these run after, read once
    /// ``expectForeign(_:)`` was called (see ``Supervisor/submit(_:to:watch:whenDurable:)``).
    package func submit(
        _ specs: [JobSpec], watch sink: JobWatchSink? = nil, foreign: [JobID: JobState] = [:],
        whenDurable: @escaping @Sendable (JournalFailure?) -> Void
    ) throws(SubmitError) -> (ids: Range<JobID>, watch: Int?) {
        let (ids, watch, count) = try accept(specs, watch: sink, foreign: foreign)
        guard recordsChanges else {
            whenDurable(nil)
            return (ids, watch)
        }
        store.whenDurable(count) { failure in whenDurable(failure.map { Self.notJournaled(ids, $0) }) }
        return (ids, watch)
    }

    /// Queues the jobs; returns their ids, the watch, and the journal change that must be
    /// durable before anyone is told. A journal that already failed refuses them.
    func accept(_ specs: [JobSpec], watch sink: JobWatchSink?, foreign: [JobID: JobState]) throws(SubmitError) -> (
        ids: Range<JobID>, watch: Int?, durableThrough: UInt64
    ) {
        if recordsChanges, let failure = store.failure {
            if !foreign.isEmpty { lock.withLock { _ = state.takeExpected(foreign) } }
            throw .notDurable(reason: "\(failure.reason); no job was accepted")
        }
        return try lock.withLock { () throws(SubmitError) in
            let scheduled = state.scheduledCount
            let (ids, watch, actions) = try state.submit(
                specs, now: MonotonicClock.now(), watch: sink != nil, allocate: self.ids.map { shared in { shared.take($0) } },
                foreign: foreign)
            if state.scheduledCount > scheduled { onScheduled() }
            if let watch, let sink { sinks[watch] = sink }
            _ = performLocked(actions)
            return (ids, watch, state.journalChangeCount)
        }
    }

    /// What the journal failing to record accepted jobs means for them.
    private static func notJournaled(_ ids: Range<JobID>, _ failure: JournalFailure) -> JournalFailure {
        JournalFailure(
            reason: "\(failure.reason); jobs \(ids.lowerBound) to \(ids.upperBound - 1) were accepted but are not in the journal "
                + "yet: they wait in the queue and start once it records again, and are lost if concurd stops first")
    }

    /// The changes to the jobs' records the journal has not taken yet, and how many there
    /// were in all (for the journal's writer, before each commit).
    ///
    /// First it collects the finishes that thread and task workers keep in their handles
    /// until their batch ends: so a job that finished is in the next commit even while a long
    /// job runs behind it in the same batch. (A child process sends its own within
    /// ``ChildWorker/flushAfter``.)
    package func takeJournalChanges() -> (changes: [JournalChange], through: UInt64) {
        lock.withLock {
            for handle in handles.values where handle.isInProcess {
                // Finishes start no worker: there is nothing to launch.
                handle.drainFinished { reports in _ = performLocked(state.finish(worker: handle.id, reports: reports)) }
            }
            return state.takeJournalChanges()
        }
    }

    /// The journal cannot record (`failure`), or can again (nil): while it cannot, workers
    /// take no new jobs (nothing starts whose start the file could not show) and the status
    /// says why; once it can, waiting workers are woken.
    package func setJournalFailure(_ failure: JournalFailure?) {
        perform { state, now in state.setJournalFailure(failure?.reason, now: now) }
    }

    /// Waits until the journal holds the first `count` changes (a worker about to get jobs);
    /// false if it cannot record now: the worker gives the jobs back and waits for it.
    func awaitDurable(_ count: UInt64?) -> Bool {
        guard let count, recordsChanges else { return true }
        do {
            try store.waitUntilDurable(count)
            return true
        } catch {
            return false
        }
    }

    /// After a hand-over the journal could not record: the pool learns of the failure from the
    /// journal's writer a moment later; until it has, a worker asking again would only be given
    /// the jobs again, so it waits a little first.
    func pauseUntilJournalFailureKnown() {
        if lock.withLock({ state.journalFailure == nil }) { usleep(1_000) }
    }

    /// Sets the number of workers; returns the previous target.
    package func resize(to count: Int) throws(ResizeError) -> Int {
        let (previous, effects) = try lock.withLock { () throws(ResizeError) in
            let (previous, actions) = try state.resize(to: count, now: MonotonicClock.now())
            defer { publishEventsLocked() }
            return (previous, performLocked(actions))
        }
        carryOut(effects)
        return previous
    }

    /// Retires every worker after its running job and keeps the pool's unfinished jobs where
    /// they are (see ``PoolStateMachine/retireAll(now:)``): a pool a reload removed. A resize
    /// brings its workers back.
    package func retireAll() {
        let effects = lock.withLock {
            defer { publishEventsLocked() }
            return performLocked(state.retireAll(now: MonotonicClock.now()))
        }
        carryOut(effects)
    }

    /// See ``PoolStateMachine/awaitFromOutside(_:)``.
    package func awaitFromOutside(_ id: JobID) -> JobState? {
        lock.withLock { state.awaitFromOutside(id) }
    }

    /// See ``PoolStateMachine/expectForeign(_:)``.
    package func expectForeign(_ ids: [JobID]) {
        lock.withLock { state.expectForeign(ids) }
    }

    /// See ``PoolStateMachine/forgetExpected(_:)``.
    package func forgetExpected(_ ids: [JobID]) {
        lock.withLock { state.forgetExpected(ids) }
    }

    /// Another pool's job `id` ended: see ``PoolStateMachine/settleForeign(_:ended:now:)``.
    package func settleForeign(_ id: JobID, ended: JobState) {
        perform { state, now in state.settleForeign(id, ended: ended, now: now) }
    }

    /// Of `ids`, those the pool holds no record of.
    package func notHeld(_ ids: some Sequence<JobID>) -> [JobID] {
        lock.withLock { ids.filter { !state.holds($0) } }
    }

    /// The record of `id` with this pool's name, if the pool holds it.
    package func job(_ id: JobID) -> JobInfo? {
        read { $0.job(id) }.map(named)
    }

    /// `job` with this pool's name (the rules do not know it).
    func named(_ job: JobInfo) -> JobInfo {
        guard name != .default else { return job }
        var named = job
        named.pool = name.rawValue
        return named
    }

    /// Switches the pool to `model` while it runs (see ``PoolStateMachine/setModel(_:preempt:now:)``);
    /// returns the previous model. `whenServing` is called once, from whichever thread settles
    /// it: when a worker of the new model serves, at once if the pool already runs `model`, or
    /// when the switch is superseded by another, fails, or meets a shutdown.
    package func setModel(
        _ model: ConcurrencyModel, preempt: Bool, whenServing completion: @escaping @Sendable (SwitchOutcome) -> Void
    ) throws(SwitchError) -> ConcurrencyModel {
        guard models[model] != nil else {
            throw .unavailable(
                model: model, reason: "it could not be set up when concurd started (its log says why); nothing changed")
        }
        let (previous, effects) = try lock.withLock { () throws(SwitchError) -> (ConcurrencyModel, Effects) in
            let (previous, ticket, actions) = try state.requestSwitch(to: model, preempt: preempt, now: MonotonicClock.now())
            defer { publishEventsLocked() }
            switchCompletions[ticket] = completion
            return (previous, performLocked(actions))
        }
        carryOut(effects)
        return previous
    }

    /// Streams `ids` (or every job, when empty) to `sink` as they finish; jobs already finished
    /// are pushed at once. With `events`, the pool's events go to the sink too, from now on.
    /// Returns the watch's id, for ``removeWatch(_:)``.
    package func watch(ids: [JobID], events: Bool = false, sink: JobWatchSink) throws(NoSuchJobError) -> Int {
        try lock.withLock { () throws(NoSuchJobError) in
            let (id, finished, complete) = try state.addWatch(ids: ids)
            for (index, job) in finished.enumerated() {
                sink.push(named(job), last: complete && index == finished.count - 1)
            }
            if !complete {
                sinks[id] = sink
                if events { eventSinks[id] = sink }
            }
            return id
        }
    }

    /// Streams every job not finished now to `sink` as it ends, the last one ending the watch;
    /// nil when there is none (nothing will be pushed).
    package func watchUnfinished(sink: JobWatchSink) -> Int? {
        lock.withLock {
            let (id, complete) = state.addWatchOfUnfinished()
            guard !complete else { return nil }
            sinks[id] = sink
            return id
        }
    }

    /// Stops a watch whose client went away.
    package func removeWatch(_ id: Int) {
        lock.withLock { forgetWatchLocked(id) }
    }

    func forgetWatchLocked(_ id: Int) {
        state.removeWatch(id)
        sinks[id] = nil
        eventSinks[id] = nil
    }

    /// Pauses the workers (`true`: they take no new jobs) or resumes them; returns whether
    /// that changed anything.
    package func setPaused(_ paused: Bool) -> Bool {
        var changed = false
        perform { state, now in
            let (didChange, actions) = state.setPaused(paused, now: now)
            changed = didChange
            return actions
        }
        return changed
    }

    /// Cancels `ids`, all or none (see ``PoolStateMachine/cancel(_:reason:now:)``); running
    /// jobs are interrupted, and end once they stop. ``whenRecorded(_:)`` tells when the
    /// journal holds the cancels.
    package func cancel(_ ids: [JobID], reason: String) throws(CancelError) -> CancelOutcome {
        var outcome = CancelOutcome()
        var failure: CancelError?
        perform { state, now in
            do throws(CancelError) {
                let (result, actions) = try state.cancel(ids, reason: reason, now: now)
                outcome = result
                return actions
            } catch {
                failure = error
                return []
            }
        }
        if let failure { throw failure }
        return outcome
    }

    /// Cancels every job waiting to run; running ones go on.
    package func cancelQueued(reason: String) -> CancelOutcome {
        var outcome = CancelOutcome()
        perform { state, now in
            let (result, actions) = state.cancelQueued(reason: reason, now: now)
            outcome = result
            return actions
        }
        return outcome
    }

    /// Calls `body` once the store holds every change the pool made so far (with nil), or
    /// cannot record them now (with why): from the store's thread, or at once without a journal.
    package func whenRecorded(_ body: @escaping @Sendable (JournalFailure?) -> Void) {
        guard recordsChanges else { return body(nil) }
        store.whenDurable(lock.withLock { state.journalChangeCount }, body)
    }

    /// Hands the events recorded since the last call to the watches that follow events.
    func publishEventsLocked() {
        guard state.eventCount != eventsPublished else { return }
        let new = state.events(after: eventsPublished)
        eventsPublished = state.eventCount
        for (watch, sink) in eventSinks {
            for event in new where !sink.push(.event(event)) {
                forgetWatchLocked(watch)
                break
            }
        }
    }

    /// Begins a graceful shutdown: no more submits, queued jobs cancelled, workers retire
    /// after their running job.
    package func beginDrain(reason: String = PoolStateMachine.notStartedReason) {
        perform { state, now in state.beginDrain(now: now, reason: reason) }
    }

    /// Interrupts every running job (they end `cancelled` with `reason`) and retires all workers.
    package func cancelRunning(reason: String, queuedReason: String = PoolStateMachine.notStartedReason) {
        perform { state, now in state.cancelRunning(reason: reason, queuedReason: queuedReason, now: now) }
    }

    /// Waits until shutdown began and every worker has exited, or the monotonic deadline passed.
    /// Returns whether the pool is drained.
    package func waitUntilDrained(deadline: UInt64) -> Bool {
        lock.withLock {
            while !state.isDrained {
                if !lock.wait(drainedCondition, untilMonotonic: deadline) { return state.isDrained }
            }
            return true
        }
    }

    /// Waits until every live worker serves, or the monotonic deadline passed; returns whether
    /// they all do.
    package func waitUntilWorkersStarted(deadline: UInt64) -> Bool {
        lock.withLock {
            while state.workers.values.contains(where: { !$0.ready }) {
                if !lock.wait(startedCondition, untilMonotonic: deadline) { return false }
            }
            return true
        }
    }

    /// Queues the scheduled and retrying jobs whose time came; returns when the next one is
    /// due (a monotonic instant), if one waits.
    package func releaseDue() -> UInt64? {
        var next: UInt64?
        perform { state, now in
            let actions = state.releaseDue(now: now)
            next = state.nextDue()
            return actions
        }
        return next
    }

    /// Time limits and releases (about every 100 ms).
    package func tick() {
        perform { state, now in
            var known: [WorkerID: ProgressReport] = [:]
            for (id, handle) in handles {
                if let report = handle.progress { known[id] = report }
            }
            return state.tick(now: now, running: known)
        }
    }

    /// Replaces the pool's limits (see ``PoolStateMachine/updateConfiguration(_:)``).
    package func updateConfiguration(_ configuration: PoolStateMachine.Configuration) throws(ResizeError) {
        try lock.withLock { () throws(ResizeError) in try state.updateConfiguration(configuration) }
    }

    /// Forgets finished records that finished more than `seconds` ago (the retention's age).
    package func pruneFinished(olderThan seconds: Double) {
        let now = MonotonicClock.now()
        let age = UInt64(max(0, seconds) * 1e9)
        guard now > age else { return }
        lock.withLock { state.pruneFinished(before: now - age) }
    }

    /// Samples the finished total for the throughput windows.
    package func sampleThroughput() {
        lock.withLock { state.sampleThroughput(now: MonotonicClock.now()) }
    }

    // MARK: Actions

    /// What a transition asked for that must wait until the lock is released: workers to
    /// start, and switch callers to tell (they may reply to a client).
    struct Effects {
        var launches: [(handle: WorkerHandle, delay: Double)] = []
        var completions: [() -> Void] = []

        static func += (left: inout Effects, right: Effects) {
            left.launches += right.launches
            left.completions += right.completions
        }
    }

    /// Runs a transition under the lock, performs its actions, then starts workers outside it.
    func perform(_ transition: (inout PoolStateMachine, UInt64) -> [PoolAction]) {
        let effects = lock.withLock {
            let now = MonotonicClock.now()
            var effects = performLocked(transition(&state, now))
            publishEventsLocked()
            if state.isDrained { drainedCondition.broadcast() }
            effects += performLocked(state.settleSwitches(now: now))
            return effects
        }
        carryOut(effects)
    }

    /// Performs the actions that must happen under the lock (wake-ups, interrupts, watch
    /// notifications, in order) and returns those that must wait until it is released.
    func performLocked(_ actions: [PoolAction]) -> Effects {
        var effects = Effects()
        // The watches a finished job goes to share one copy of its record.
        var shared: WatchedJob?
        for action in actions {
            switch action {
            case .startWorker(let id, let model, let delay):
                let handle = WorkerHandle(id: id, model: model, condition: lock.makeCondition())
                handles[id] = handle
                effects.launches.append((handle, delay))
            case .wake(let id):
                handles[id]?.post(.wake)
            case .interrupt(let id, let job):
                handles[id]?.interrupt(job: job)
            case .release(let id):
                guard let handle = handles[id] else { continue }
                if handle.isInProcess {
                    effects += takeBackUnstarted(from: handle)
                } else {
                    handle.post(.release)
                }
            case .notify(let watch, let job, let last):
                if shared?.info.id != job.id { shared = WatchedJob(named(job)) }
                if let shared, sinks[watch]?.push(shared, last: last) == false {
                    // Its client was cut off for falling behind: the pool stops feeding it.
                    forgetWatchLocked(watch)
                    continue
                }
                if last {
                    sinks[watch] = nil
                    eventSinks[watch] = nil
                }
            case .settleSwitch(let ticket, let outcome):
                guard let completion = switchCompletions.removeValue(forKey: ticket) else { continue }
                effects.completions.append { completion(outcome) }
            case .dependencyEnded(let id, let ended):
                onDependencyEnded(name, id, ended)
            }
        }
        return effects
    }

    /// Takes the jobs an in-process worker holds but has not started back to the queue.
    func takeBackUnstarted(from handle: WorkerHandle) -> Effects {
        let unstarted = handle.takeUnstarted()
        guard !unstarted.isEmpty else { return Effects() }
        return performLocked(state.returnJobs(worker: handle.id, ids: unstarted, now: MonotonicClock.now()))
    }

    /// Tells switch callers, then starts workers; a worker that cannot start is abandoned
    /// (the state machine replaces it with backoff, or gives its model up).
    func carryOut(_ effects: Effects) {
        for completion in effects.completions { completion() }
        for (handle, delay) in effects.launches {
            do {
                guard let runner = models[handle.model] else { throw UnsupportedModel(model: handle.model) }
                try runner.startWorker(handle, pool: self, delay: delay)
            } catch {
                onEvent("worker \(handle.id) (\(handle.model.rawValue)) could not start: \(error)")
                perform { state, now in
                    handles[handle.id] = nil
                    return state.abandonWorker(handle.id, now: now)
                }
            }
        }
    }
}

/// The pool was asked for a model it has no runner for.
struct UnsupportedModel: Error, CustomStringConvertible {
    let model: ConcurrencyModel
    var description: String { "the \(model.rawValue) model is not available in this build" }
}

// MARK: Claims from a shared store

extension Pool {
    /// Queues jobs this node claimed from a shared store (see
    /// ``PoolStateMachine/admitClaimed(_:now:)``) and wakes workers for them; returns the ids
    /// refused because the pool already holds them.
    package func admitClaimed(_ records: [JobRecord]) -> [JobID] {
        var refused: [JobID] = []
        perform { state, now in
            let (actions, held) = state.admitClaimed(records, now: now)
            refused = held
            return actions
        }
        return refused
    }

    /// Lets go of the buffered jobs beyond `keeping` (see
    /// ``PoolStateMachine/giveBackBuffered(keeping:)``); returns their ids, for the store.
    package func giveBackBuffered(keeping: Int) -> [JobID] {
        var given: [JobID] = []
        perform { state, _ in
            let (jobs, actions) = state.giveBackBuffered(keeping: keeping)
            given = jobs
            return actions
        }
        return given
    }
}
