public import ConcurProtocol

/// A way of running workers: OS threads, child processes or tasks.
///
/// A started worker asks the pool for jobs until it is told to retire, then reports that it
/// exited. Every model shares the pool's queue, so switching models loses no job.
public protocol WorkerModel: Sendable {
    /// The model this implements.
    var model: ConcurrencyModel { get }
    /// Starts worker `id`; `cancellation` is raised when its running job must stop.
    func startWorker(_ id: WorkerID, cancellation: CancellationFlag, pool: Pool) throws
}

/// The pool: a ``PoolStateMachine`` behind a lock, and the effects its transitions ask for.
///
/// Worker threads block in ``nextJob(for:completing:)``; control calls come from the control
/// plane's threads. Finishing a job and taking the next happen under one lock acquisition.
///
/// `@unchecked Sendable`: every stored `var` is read and written only while holding `lock`
/// (a pthread mutex, needed for the condition variables that idle workers wait on).
public final class Pool: @unchecked Sendable {
    private let lock = ConditionLock()
    private let drainedCondition: Condition
    private let startedCondition: Condition
    private var state: PoolStateMachine
    private var flags: [WorkerID: CancellationFlag] = [:]
    private var sinks: [Int: JobWatchSink] = [:]
    private let models: [ConcurrencyModel: any WorkerModel]
    private let onError: @Sendable (String) -> Void

    /// A pool that runs workers with `models` (one per ``ConcurrencyModel`` it supports).
    ///
    /// - Parameter onError: told about workers that could not be started.
    public init(state: PoolStateMachine, models: [any WorkerModel], onError: @escaping @Sendable (String) -> Void = { _ in }) {
        self.state = state
        self.models = Dictionary(uniqueKeysWithValues: models.map { ($0.model, $0) })
        self.drainedCondition = lock.makeCondition()
        self.startedCondition = lock.makeCondition()
        self.onError = onError
    }

    /// Reads the state under the lock.
    public func read<T, E: Error>(_ body: (PoolStateMachine) throws(E) -> T) throws(E) -> T {
        try lock.withLock { () throws(E) in try body(state) }
    }

    // MARK: Control

    /// Accepts a batch of jobs, all or none. With a `sink`, their completions stream to it.
    public func submit(_ kinds: [JobKind], watch sink: JobWatchSink? = nil) throws(SubmitError) -> (
        ids: Range<JobID>, watch: Int?
    ) {
        try lock.withLock { () throws(SubmitError) in
            let (ids, watch, actions) = try state.submit(kinds, now: MonotonicClock.now(), watch: sink != nil)
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
    /// after their current job.
    public func beginDrain(reason: String = PoolStateMachine.notStartedReason) {
        lock.withLock { _ = performLocked(state.beginDrain(now: MonotonicClock.now(), reason: reason)) }
    }

    /// Interrupts every running job (they end `cancelled` with `reason`) and retires all workers.
    public func cancelRunning(reason: String, queuedReason: String = PoolStateMachine.notStartedReason) {
        lock.withLock {
            _ = performLocked(state.cancelRunning(reason: reason, queuedReason: queuedReason, now: MonotonicClock.now()))
        }
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

    /// Samples the finished total for the throughput windows.
    public func sampleThroughput() {
        lock.withLock { state.sampleThroughput(now: MonotonicClock.now()) }
    }

    // MARK: Workers

    /// Notes the OS id of a worker that started.
    public func workerStarted(_ id: WorkerID, osID: Int?) {
        lock.withLock {
            state.workerStarted(id, osID: osID)
            startedCondition.broadcast()
        }
    }

    /// Waits until every live worker has started, or the monotonic deadline passed; returns
    /// whether they all did.
    public func waitUntilWorkersStarted(deadline: UInt64) -> Bool {
        lock.withLock {
            while state.workers.values.contains(where: { $0.osID == nil }) {
                if !lock.wait(startedCondition, untilMonotonic: deadline) { return false }
            }
            return true
        }
    }

    /// Records `previous` (if any) and blocks until the worker has a job to run; nil means
    /// retire, after which the worker calls ``workerExited(_:)``.
    public func nextJob(for id: WorkerID, completing previous: (job: Job, outcome: JobOutcome)?) -> Job? {
        lock.withLock {
            if let previous {
                _ = performLocked(
                    state.finish(worker: id, job: previous.job, outcome: previous.outcome, now: MonotonicClock.now()))
            }
            while true {
                switch state.nextAssignment(for: id, now: MonotonicClock.now()) {
                case .run(let job):
                    flags[id]?.reset()
                    return job
                case .retire:
                    return nil
                case .wait:
                    lock.wait()
                }
            }
        }
    }

    /// Forgets a worker that has exited; its unfinished job, if any, goes back to the queue.
    public func workerExited(_ id: WorkerID) {
        let launches = lock.withLock {
            flags[id] = nil
            let launches = performLocked(state.workerExited(id))
            if state.isDrained { drainedCondition.broadcast() }
            return launches
        }
        launch(launches)
    }

    // MARK: Actions

    /// Performs the actions that must happen under the lock (wake-ups, interrupts, watch
    /// notifications, in order) and returns the worker starts, to do after unlocking.
    private func performLocked(_ actions: [PoolAction]) -> [(WorkerID, ConcurrencyModel, CancellationFlag)] {
        var launches: [(WorkerID, ConcurrencyModel, CancellationFlag)] = []
        for action in actions {
            switch action {
            case .startWorker(let id, let model):
                let flag = CancellationFlag()
                flags[id] = flag
                launches.append((id, model, flag))
            case .wakeWorkers(let count):
                for _ in 0..<count { lock.signal() }
            case .wakeIdleWorkers:
                lock.broadcast()
            case .interrupt(let id):
                flags[id]?.raise()
            case .notify(let watch, let job, let last):
                sinks[watch]?.push(job, last: last)
                if last { sinks[watch] = nil }
            }
        }
        return launches
    }

    private func launch(_ launches: [(WorkerID, ConcurrencyModel, CancellationFlag)]) {
        for (id, model, flag) in launches {
            do {
                guard let runner = models[model] else { throw UnsupportedModel(model: model) }
                try runner.startWorker(id, cancellation: flag, pool: self)
            } catch {
                onError("worker \(id) (\(model.rawValue)) could not start: \(error)")
                lock.withLock {
                    flags[id] = nil
                    state.abandonWorker(id)
                    if state.isDrained { drainedCondition.broadcast() }
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
