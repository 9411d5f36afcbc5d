public import ConcurProtocol
import Synchronization

/// A way of running workers: OS threads, child processes or tasks.
///
/// A started worker asks the pool for jobs until it is told to retire, then reports that it
/// exited. Every model shares the pool's queue, so switching models loses no job.
public protocol WorkerModel: Sendable {
    /// The model this implements.
    var model: ConcurrencyModel { get }
    /// Starts the worker of `handle` after `delay` seconds (a backoff after deaths).
    func startWorker(_ handle: WorkerHandle, pool: Pool, delay: Double) throws
}

/// What the pool asks of a worker besides running jobs.
public struct WorkerRequests: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt8
    /// Creates requests from raw bits.
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Jobs arrived, or the worker must retire: ask the pool what to do.
    public static let wake = WorkerRequests(rawValue: 1)
    /// Stop the running job (its cancellation flag is raised too).
    public static let interrupt = WorkerRequests(rawValue: 2)
    /// Give back the jobs held but not started.
    public static let release = WorkerRequests(rawValue: 4)
}

/// A worker's line to the pool: its cancellation flag, the condition a thread worker waits on,
/// and for workers that wait elsewhere (a child process's proxy in poll), a doorbell.
public final class WorkerHandle: Sendable {
    /// The worker's id.
    public let id: WorkerID
    /// Its model.
    public let model: ConcurrencyModel
    /// Raised when its running job must stop.
    public let cancellation = CancellationFlag()
    let condition: Condition
    private let pending = Atomic<UInt8>(0)
    private let doorbell = Mutex<(@Sendable () -> Void)?>(nil)
    private let progressPage = Mutex<WorkerProgress?>(nil)

    init(id: WorkerID, model: ConcurrencyModel, condition: Condition) {
        self.id = id
        self.model = model
        self.condition = condition
    }

    /// Installs the way to get the worker's attention when it does not wait on its condition.
    public func installDoorbell(_ ring: @escaping @Sendable () -> Void) {
        doorbell.withLock { $0 = ring }
    }

    /// Attaches the progress page a child worker keeps, so the pool sees exactly what it runs.
    public func attach(_ progress: WorkerProgress) {
        progressPage.withLock { $0 = progress }
    }

    /// What the worker's progress page says, if it has one.
    var progress: ProgressReport? {
        progressPage.withLock { $0?.report }
    }

    /// Posts requests and gets the worker's attention.
    func post(_ requests: WorkerRequests) {
        pending.bitwiseOr(requests.rawValue, ordering: .releasing)
        if requests.contains(.interrupt) { cancellation.raise() }
        condition.signal()
        let ring = doorbell.withLock { $0 }
        ring?()
    }

    /// Takes the requests posted since the last call.
    public func takeRequests() -> WorkerRequests {
        WorkerRequests(rawValue: pending.exchange(0, ordering: .acquiring))
    }
}

/// The outcome of one job as a worker reports it.
public struct JobReport: Sendable, Equatable {
    /// The job.
    public var id: JobID
    /// How it ended.
    public var outcome: JobOutcome
    /// When it started and finished (monotonic nanoseconds), if the worker measured it.
    public var startedAt: UInt64?
    /// When it finished.
    public var finishedAt: UInt64

    /// A report with the given fields.
    public init(id: JobID, outcome: JobOutcome, startedAt: UInt64?, finishedAt: UInt64) {
        self.id = id
        self.outcome = outcome
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }
}

/// The pool: a ``PoolStateMachine`` behind a lock, and the effects its transitions ask for.
///
/// Thread workers block in ``nextJob(for:completing:)``; a child process's proxy uses the
/// non-blocking calls (``assign(worker:limit:)``, ``finish(worker:reports:)``) and waits on its
/// doorbell. Control calls come from the control plane's threads.
///
/// `@unchecked Sendable`: every stored `var` is read and written only while holding `lock`
/// (a pthread mutex, needed for the conditions that idle thread workers wait on).
public final class Pool: @unchecked Sendable {
    private let lock = ConditionLock()
    private let drainedCondition: Condition
    private let startedCondition: Condition
    private var state: PoolStateMachine
    private var handles: [WorkerID: WorkerHandle] = [:]
    private var sinks: [Int: JobWatchSink] = [:]
    private let models: [ConcurrencyModel: any WorkerModel]
    private let onEvent: @Sendable (String) -> Void

    /// A pool that runs workers with `models` (one per ``ConcurrencyModel`` it supports).
    ///
    /// - Parameter onEvent: told about workers that could not be started, died, or were replaced.
    public init(state: PoolStateMachine, models: [any WorkerModel], onEvent: @escaping @Sendable (String) -> Void = { _ in }) {
        self.state = state
        self.models = Dictionary(uniqueKeysWithValues: models.map { ($0.model, $0) })
        self.drainedCondition = lock.makeCondition()
        self.startedCondition = lock.makeCondition()
        self.onEvent = onEvent
    }

    /// Reads the state under the lock.
    public func read<T, E: Error>(_ body: (PoolStateMachine) throws(E) -> T) throws(E) -> T {
        try lock.withLock { () throws(E) in try body(state) }
    }

    // MARK: Control

    /// Accepts a batch of jobs, all or none. With a `sink`, their completions stream to it.
    public func submit(_ specs: [JobSpec], watch sink: JobWatchSink? = nil) throws(SubmitError) -> (
        ids: Range<JobID>, watch: Int?
    ) {
        try lock.withLock { () throws(SubmitError) in
            let (ids, watch, actions) = try state.submit(specs, now: MonotonicClock.now(), watch: sink != nil)
            if let watch, let sink { sinks[watch] = sink }
            _ = performLocked(actions)
            return (ids, watch)
        }
    }

    /// Sets the number of workers; returns the previous target.
    public func resize(to count: Int) throws(ResizeError) -> Int {
        let (previous, launches) = try lock.withLock { () throws(ResizeError) in
            let (previous, actions) = try state.resize(to: count)
            return (previous, performLocked(actions))
        }
        launch(launches)
        return previous
    }

    /// Streams `ids` (or every job, when empty) to `sink` as they finish; jobs already finished
    /// are pushed at once. Returns the watch's id, for ``removeWatch(_:)``.
    public func watch(ids: [JobID], sink: JobWatchSink) throws(NoSuchJobError) -> Int {
        try lock.withLock { () throws(NoSuchJobError) in
            let (id, finished, complete) = try state.addWatch(ids: ids)
            for (index, job) in finished.enumerated() {
                sink.push(job, last: complete && index == finished.count - 1)
            }
            if !complete { sinks[id] = sink }
            return id
        }
    }

    /// Stops a watch whose client went away.
    public func removeWatch(_ id: Int) {
        lock.withLock {
            state.removeWatch(id)
            sinks[id] = nil
        }
    }

    /// Begins a graceful shutdown: no more submits, queued jobs cancelled, workers retire
    /// after their running job.
    public func beginDrain(reason: String = PoolStateMachine.notStartedReason) {
        perform { state, now in state.beginDrain(now: now, reason: reason) }
    }

    /// Interrupts every running job (they end `cancelled` with `reason`) and retires all workers.
    public func cancelRunning(reason: String, queuedReason: String = PoolStateMachine.notStartedReason) {
        perform { state, now in state.cancelRunning(reason: reason, queuedReason: queuedReason, now: now) }
    }

    /// Waits until shutdown began and every worker has exited, or the monotonic deadline passed.
    /// Returns whether the pool is drained.
    public func waitUntilDrained(deadline: UInt64) -> Bool {
        lock.withLock {
            while !state.isDrained {
                if !lock.wait(drainedCondition, untilMonotonic: deadline) { return state.isDrained }
            }
            return true
        }
    }

    /// Waits until every live worker serves, or the monotonic deadline passed; returns whether
    /// they all do.
    public func waitUntilWorkersStarted(deadline: UInt64) -> Bool {
        lock.withLock {
            while state.workers.values.contains(where: { !$0.ready }) {
                if !lock.wait(startedCondition, untilMonotonic: deadline) { return false }
            }
            return true
        }
    }

    /// Time limits and releases (about every 100 ms).
    public func tick() {
        perform { state, now in
            var known: [WorkerID: ProgressReport] = [:]
            for (id, handle) in handles {
                if let report = handle.progress { known[id] = report }
            }
            return state.tick(now: now, running: known)
        }
    }

    /// Samples the finished total for the throughput windows.
    public func sampleThroughput() {
        lock.withLock { state.sampleThroughput(now: MonotonicClock.now()) }
    }

    // MARK: Workers

    /// Notes that a worker started and serves, with its OS id (thread id or pid).
    public func workerReady(_ id: WorkerID, osID: Int?) {
        lock.withLock {
            state.workerReady(id, osID: osID)
            startedCondition.broadcast()
        }
    }

    /// For thread workers: records `previous` (if any) and blocks until the worker has a job to
    /// run; nil means retire, after which the worker calls ``workerExited(_:exit:)``.
    public func nextJob(for id: WorkerID, completing previous: JobReport?) -> Job? {
        lock.withLock {
            // Finishing one job and taking the next cost one lock acquisition.
            if let previous {
                _ = performLocked(
                    state.finish(
                        worker: id, job: previous.id, outcome: previous.outcome, startedAt: previous.startedAt,
                        now: previous.finishedAt))
            }
            while true {
                switch state.nextAssignment(for: id, limit: 1, now: MonotonicClock.now()) {
                case .run(let jobs):
                    handles[id]?.cancellation.reset()
                    if let job = jobs.first { return job }
                case .retire:
                    return nil
                case .wait:
                    guard let condition = handles[id]?.condition else { return nil }
                    lock.wait(condition)
                }
            }
        }
    }

    /// For proxies: up to `limit` more jobs for `worker`, without blocking (`.wait` registers
    /// the worker for a wake-up through its doorbell).
    public func assign(worker id: WorkerID, limit: Int) -> Assignment {
        lock.withLock { state.nextAssignment(for: id, limit: limit, now: MonotonicClock.now()) }
    }

    /// For proxies: records the outcomes of several jobs in one step.
    public func finish(worker id: WorkerID, reports: [JobReport]) {
        lock.withLock {
            for report in reports {
                _ = performLocked(
                    state.finish(
                        worker: id, job: report.id, outcome: report.outcome, startedAt: report.startedAt, now: report.finishedAt))
            }
        }
    }

    /// For proxies: jobs the worker gave back without starting them.
    public func returnJobs(worker id: WorkerID, ids: [JobID]) {
        perform { state, now in state.returnJobs(worker: id, ids: ids, now: now) }
    }

    /// Forgets a worker that has exited; its unfinished jobs go back to the queue (or fail
    /// after too many attempts), and a dead worker is replaced.
    public func workerExited(_ id: WorkerID, exit: WorkerExit) {
        switch exit {
        case .died(let reason, _), .stopped(let reason, _): onEvent(reason)
        case .retired: break
        }
        perform { state, now in
            handles[id] = nil
            return state.workerExited(id, exit: exit, now: now)
        }
    }

    /// The handle of a live worker.
    public func handle(for id: WorkerID) -> WorkerHandle? {
        lock.withLock { handles[id] }
    }

    // MARK: Actions

    private typealias Launch = (handle: WorkerHandle, delay: Double)

    /// Runs a transition under the lock, performs its actions, then starts workers outside it.
    private func perform(_ transition: (inout PoolStateMachine, UInt64) -> [PoolAction]) {
        let launches = lock.withLock { () -> [Launch] in
            let launches = performLocked(transition(&state, MonotonicClock.now()))
            if state.isDrained { drainedCondition.broadcast() }
            return launches
        }
        launch(launches)
    }

    /// Performs the actions that must happen under the lock (wake-ups, interrupts, watch
    /// notifications, in order) and returns the worker starts, to do after unlocking.
    private func performLocked(_ actions: [PoolAction]) -> [Launch] {
        var launches: [Launch] = []
        for action in actions {
            switch action {
            case .startWorker(let id, let model, let delay):
                let handle = WorkerHandle(id: id, model: model, condition: lock.makeCondition())
                handles[id] = handle
                launches.append((handle, delay))
            case .wake(let id):
                handles[id]?.post(.wake)
            case .interrupt(let id):
                handles[id]?.post(.interrupt)
            case .release(let id):
                handles[id]?.post(.release)
            case .notify(let watch, let job, let last):
                sinks[watch]?.push(job, last: last)
                if last { sinks[watch] = nil }
            }
        }
        return launches
    }

    private func launch(_ launches: [Launch]) {
        for (handle, delay) in launches {
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
