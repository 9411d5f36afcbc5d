public import ConcurProtocol

/// What the caller of a ``PoolStateMachine`` transition must do next, outside the state.
public enum PoolAction: Sendable, Equatable {
    /// Start a worker of `model` with this id (a thread, a child process, a task).
    case startWorker(WorkerID, ConcurrencyModel)
    /// Jobs arrived: wake up to `count` idle workers.
    case wakeWorkers(count: Int)
    /// Some idle workers must re-check their assignment (they are retiring): wake them all.
    case wakeIdleWorkers
    /// Interrupt the job the worker is running (raise its cancellation flag).
    case interrupt(WorkerID)
    /// Hand a job that reached its final state to a watch; `last` ends the watch.
    case notify(watch: Int, job: JobInfo, last: Bool)
}

/// What a worker asking for work is told.
public enum Assignment: Sendable, Equatable {
    /// Run this job, then report its outcome.
    case run(Job)
    /// Nothing to do yet: wait to be woken.
    case wait
    /// Leave: the pool is smaller now, or shutting down.
    case retire
}

/// Why a submit was refused.
public enum SubmitError: Error, Sendable, Equatable {
    /// The daemon is shutting down.
    case shuttingDown
    /// The queue cannot take the batch.
    case queueFull(limit: Int, queued: Int)
}

/// Why a resize was refused.
public enum ResizeError: Error, Sendable, Equatable {
    /// The daemon is shutting down.
    case shuttingDown
    /// The count is outside `min...max`.
    case invalidWorkers(min: Int, max: Int)
}

/// The pool as a plain value: the queue, the job records, the workers and their states.
///
/// Every transition is a mutating method that decides and returns ``PoolAction``s; the caller
/// (``Pool``) holds the lock and performs the actions, so each rule here is testable without
/// threads, processes or clocks. Invariants it keeps:
/// - every accepted job reaches exactly one final state (done, failed or cancelled);
/// - workers that are not retiring number exactly `target` while serving;
/// - a running job is never taken from its worker to shrink the pool.
public struct PoolStateMachine: Sendable {
    /// Limits that do not change while the pool runs.
    public struct Configuration: Sendable, Equatable {
        /// The queue's limit.
        public var maxQueue: Int
        /// The most workers a resize may ask for.
        public var maxWorkers: Int
        /// Finished job records kept for `ListJobs`/`WatchJobs`.
        public var retainFinished: Int

        /// Limits with the given values.
        public init(maxQueue: Int = 100_000, maxWorkers: Int = 256, retainFinished: Int = 10_000) {
            self.maxQueue = maxQueue
            self.maxWorkers = maxWorkers
            self.retainFinished = retainFinished
        }
    }

    /// One worker as the pool sees it.
    public struct Worker: Sendable, Equatable {
        /// The worker's id.
        public let id: WorkerID
        /// Its model.
        public let model: ConcurrencyModel
        /// Starting, idle or busy (retiring is the separate flag below).
        public var phase: Phase
        /// It will leave after its current job (at once when idle).
        public var retiring = false
        /// Jobs it finished.
        public var jobsDone = 0
        /// Nanoseconds it spent on finished jobs.
        public var busyNanoseconds: UInt64 = 0
        /// When it was created.
        public let createdAt: UInt64
        /// Its kernel thread id or process id, once known.
        public var osID: Int?

        /// What a worker is doing.
        public enum Phase: Sendable, Equatable {
            /// Created, not yet asking for work.
            case starting
            /// Waiting for a job.
            case idle
            /// Running `job` since `since`.
            case busy(job: JobID, since: UInt64)
        }

        /// The job it runs, if busy.
        public var job: JobID? {
            if case .busy(let job, _) = phase { return job }
            return nil
        }
    }

    /// A client waiting for jobs to finish.
    struct Watch: Sendable {
        var ids: Set<JobID>
        var range: ClosedRange<JobID>?
        /// Final states still to report; nil for a watch of every job (it never ends).
        var remaining: Int?

        func covers(_ id: JobID) -> Bool {
            remaining == nil || ids.contains(id) || range?.contains(id) == true
        }
    }

    /// Limits.
    public private(set) var configuration: Configuration
    /// The model new workers get.
    public private(set) var model: ConcurrencyModel
    /// The number of workers asked for.
    public private(set) var target = 0
    /// Whether submits are accepted (false once shutdown began).
    public private(set) var intakeOpen = true
    /// Whether running jobs are being cancelled (after the drain gave up).
    public private(set) var stopping = false
    /// The workers alive, by id.
    public private(set) var workers: [WorkerID: Worker] = [:]
    /// Totals by outcome.
    public private(set) var totals = JobTotals()
    /// Resizes applied.
    public private(set) var resizes = 0
    /// Latency distributions.
    public private(set) var latency = LatencyRecorder()
    /// Completion rates.
    public private(set) var throughput = ThroughputMeter()
    var queue: JobQueue
    var table: JobTable
    var watches: [Int: Watch] = [:]
    private var nextWatchID = 1
    private var nextWorkerID: WorkerID = 1
    private(set) var nextJobID: JobID = 1
    private var interruptReasons: [WorkerID: String] = [:]
    private var idleCount = 0
    let clock: MonotonicClock

    /// A pool with no workers yet; ``resize(to:)`` starts them.
    public init(model: ConcurrencyModel, configuration: Configuration, clock: MonotonicClock = MonotonicClock()) {
        self.model = model
        self.configuration = configuration
        self.queue = JobQueue(limit: configuration.maxQueue)
        self.table = JobTable(retainFinished: configuration.retainFinished)
        self.clock = clock
    }

    // MARK: Intake

    /// Accepts a batch of jobs, all or none; returns their ids and who to wake.
    ///
    /// With `watch`, a watch of exactly these jobs starts in the same step, so not even a job
    /// that finishes at once can be missed; its id is returned.
    public mutating func submit(_ kinds: [JobKind], now: UInt64, watch: Bool = false) throws(SubmitError)
        -> (ids: Range<JobID>, watch: Int?, actions: [PoolAction])
    {
        guard intakeOpen else { throw .shuttingDown }
        guard queue.canAccept(kinds.count) else { throw .queueFull(limit: queue.limit, queued: queue.count) }
        let first = nextJobID
        let jobs = kinds.enumerated().map { offset, kind in Job(id: first + JobID(offset), kind: kind, submittedAt: now) }
        nextJobID += JobID(kinds.count)
        for job in jobs { table.insert(job) }
        queue.append(contentsOf: jobs)
        totals.submitted += kinds.count
        var watchID: Int?
        if watch && !kinds.isEmpty {
            watchID = nextWatchID
            nextWatchID += 1
            watches[watchID!] = Watch(ids: [], range: first...(nextJobID - 1), remaining: kinds.count)
        }
        let wake = min(kinds.count, idleCount)
        return (first..<nextJobID, watchID, wake > 0 ? [.wakeWorkers(count: wake)] : [])
    }

    // MARK: Workers

    /// Sets the number of workers. Growing keeps retiring workers of the current model first,
    /// then starts new ones; shrinking retires idle workers first, then busy ones after their job.
    public mutating func resize(to count: Int) throws(ResizeError) -> (previous: Int, actions: [PoolAction]) {
        guard intakeOpen else { throw .shuttingDown }
        guard (1...configuration.maxWorkers).contains(count) else {
            throw .invalidWorkers(min: 1, max: configuration.maxWorkers)
        }
        let previous = target
        target = count
        if previous != 0 && previous != count { resizes += 1 }
        return (previous, reconcile())
    }

    private mutating func reconcile() -> [PoolAction] {
        var actions: [PoolAction] = []
        var active = workers.values.filter { !$0.retiring }.count
        if active < target {
            for id in workers.keys.sorted() where active < target {
                guard let worker = workers[id], worker.retiring, worker.model == model else { continue }
                workers[id]?.retiring = false
                active += 1
            }
            while active < target {
                let id = nextWorkerID
                nextWorkerID += 1
                workers[id] = Worker(id: id, model: model, phase: .starting, createdAt: MonotonicClock.now())
                actions.append(.startWorker(id, model))
                active += 1
            }
        } else if active > target {
            var excess = active - target
            let candidates = workers.values.filter { !$0.retiring }.sorted { lhs, rhs in
                // Idle (and starting) workers before busy ones; the newest first.
                (lhs.job == nil ? 0 : 1, -lhs.id) < (rhs.job == nil ? 0 : 1, -rhs.id)
            }
            var wokeIdle = false
            for worker in candidates where excess > 0 {
                workers[worker.id]?.retiring = true
                if worker.job == nil { wokeIdle = true }
                excess -= 1
            }
            if wokeIdle { actions.append(.wakeIdleWorkers) }
        }
        return actions
    }

    /// Notes a started worker's thread or process id.
    public mutating func workerStarted(_ id: WorkerID, osID: Int?) {
        workers[id]?.osID = osID
    }

    /// The next thing `worker` should do. A worker told `.retire` must call ``workerExited(_:)``.
    public mutating func nextAssignment(for id: WorkerID, now: UInt64) -> Assignment {
        guard var worker = workers[id] else { return .retire }
        if case .idle = worker.phase { idleCount -= 1 }
        if worker.retiring {
            worker.phase = .starting
            workers[id] = worker
            return .retire
        }
        guard var job = queue.popFirst() else {
            worker.phase = .idle
            workers[id] = worker
            idleCount += 1
            return .wait
        }
        job.attempts += 1
        if job.attempts > 1 { totals.retried += 1 }
        worker.phase = .busy(job: job.id, since: now)
        workers[id] = worker
        table.markRunning(job.id, attempts: job.attempts, worker: id, model: worker.model, at: now)
        return .run(job)
    }

    /// Records the outcome of the job `worker` ran; returns notifications for watches.
    public mutating func finish(worker id: WorkerID, job: Job, outcome: JobOutcome, now: UInt64) -> [PoolAction] {
        var outcome = outcome
        if case .cancelled = outcome, let reason = interruptReasons.removeValue(forKey: id) {
            outcome = .cancelled(reason)
        }
        interruptReasons[id] = nil
        var startedAt = now
        if var worker = workers[id], case .busy(_, let since) = worker.phase {
            startedAt = since
            worker.phase = .idle
            idleCount += 1
            worker.jobsDone += 1
            worker.busyNanoseconds += now &- since
            workers[id] = worker
        }
        return complete(job.id, outcome: outcome, startedAt: startedAt, now: now)
    }

    /// Moves a job to its final state, counts it and tells the watches that cover it.
    private mutating func complete(_ id: JobID, outcome: JobOutcome, startedAt: UInt64?, now: UInt64) -> [PoolAction] {
        guard let record = table.markFinished(id, outcome: outcome, at: now) else { return [] }
        switch outcome {
        case .done: totals.done += 1
        case .failed: totals.failed += 1
        case .cancelled: totals.cancelled += 1
        }
        // Latencies describe jobs that ran to an end; an interrupted job would skew them.
        if let startedAt, record.state != .cancelled {
            latency.record(submitted: record.submittedAt, started: startedAt, finished: now)
        }
        guard !watches.isEmpty else { return [] }
        var actions: [PoolAction] = []
        let info = record.info(clock: clock)
        for (watchID, watch) in watches where watch.covers(id) {
            var last = false
            if let remaining = watch.remaining {
                watches[watchID]?.remaining = remaining - 1
                last = remaining == 1
                if last { watches[watchID] = nil }
            }
            actions.append(.notify(watch: watchID, job: info, last: last))
        }
        return actions
    }

    /// Forgets a worker that left. Its job, if it still had one, is put back at the head of the
    /// queue (its attempt counted), so it is never lost.
    public mutating func workerExited(_ id: WorkerID) -> [PoolAction] {
        guard let worker = workers.removeValue(forKey: id) else { return [] }
        interruptReasons[id] = nil
        if case .idle = worker.phase { idleCount -= 1 }
        var actions: [PoolAction] = []
        if case .busy(let jobID, _) = worker.phase, let record = table[jobID] {
            table.markRequeued(jobID)
            queue.pushFront(Job(id: jobID, kind: record.kind, attempts: record.attempts, submittedAt: record.submittedAt))
            if idleCount > 0 { actions.append(.wakeWorkers(count: 1)) }
        }
        if intakeOpen { actions += reconcile() }
        return actions
    }

    /// Forgets a worker that never started (its thread or process could not be created) and
    /// lowers the target by one, so the failure is not retried in a loop; the next resize or
    /// model change tries again.
    public mutating func abandonWorker(_ id: WorkerID) {
        guard let worker = workers.removeValue(forKey: id) else { return }
        if !worker.retiring && target > 0 { target -= 1 }
    }

    // MARK: Shutdown

    /// The reason recorded for queued jobs cancelled by a shutdown.
    public static let notStartedReason = "not started before the daemon shut down"

    /// Begins a graceful shutdown: intake closes, queued jobs are cancelled with `reason` (they
    /// never started), and every worker retires after its current job.
    public mutating func beginDrain(now: UInt64, reason: String = notStartedReason) -> [PoolAction] {
        guard intakeOpen else { return [] }
        intakeOpen = false
        target = 0
        var actions: [PoolAction] = []
        for job in queue.removeAll() {
            actions += complete(job.id, outcome: .cancelled(reason), startedAt: nil, now: now)
        }
        for id in workers.keys { workers[id]?.retiring = true }
        actions.append(.wakeIdleWorkers)
        return actions
    }

    /// Interrupts every running job; each ends `cancelled` with `reason` (queued ones, if the
    /// drain had not begun, with `queuedReason`).
    public mutating func cancelRunning(reason: String, queuedReason: String = notStartedReason, now: UInt64) -> [PoolAction] {
        var actions = beginDrain(now: now, reason: queuedReason)
        stopping = true
        for worker in workers.values where worker.job != nil {
            interruptReasons[worker.id] = reason
            actions.append(.interrupt(worker.id))
        }
        return actions
    }

    /// Whether shutdown began and every worker has left.
    public var isDrained: Bool { !intakeOpen && workers.isEmpty }

    // MARK: Watches

    /// Starts watching `ids`, or every job when `ids` is empty.
    ///
    /// Returns the watch's id and the jobs that already finished (to send at once); the watch
    /// is already over when those are all that was asked for (`complete`).
    public mutating func addWatch(ids: [JobID]) throws(NoSuchJobError) -> (id: Int, finished: [JobInfo], complete: Bool) {
        let id = nextWatchID
        nextWatchID += 1
        guard !ids.isEmpty else {
            watches[id] = Watch(ids: [], range: nil, remaining: nil)
            return (id, [], false)
        }
        var pending = Set<JobID>()
        var finished: [JobInfo] = []
        for jobID in Set(ids).sorted() {
            guard let record = table[jobID] else { throw NoSuchJobError(id: jobID) }
            if record.state.isFinal {
                finished.append(record.info(clock: clock))
            } else {
                pending.insert(jobID)
            }
        }
        guard !pending.isEmpty else { return (id, finished, true) }
        watches[id] = Watch(ids: pending, range: nil, remaining: pending.count)
        return (id, finished, false)
    }

    /// Stops a watch (its client went away).
    public mutating func removeWatch(_ id: Int) {
        watches[id] = nil
    }

    // MARK: Clock-driven

    /// Samples the finished total for the throughput windows (about once a second).
    public mutating func sampleThroughput(now: UInt64) {
        throughput.sample(at: now, total: totals.finished)
    }
}

/// A job id that the pool does not know (never accepted, or finished and pruned).
public struct NoSuchJobError: Error, Sendable, Equatable {
    /// The unknown id.
    public let id: JobID

    /// The error for `id`.
    public init(id: JobID) { self.id = id }
}
