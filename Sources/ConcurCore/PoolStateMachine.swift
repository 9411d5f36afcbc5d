public import ConcurProtocol
import DequeModule

/// What the caller of a ``PoolStateMachine`` transition must do next, outside the state.
public enum PoolAction: Sendable, Equatable {
    /// Start a worker of `model` with this id after `delay` seconds (0: at once; more after a
    /// worker of that model died, as backoff).
    case startWorker(WorkerID, ConcurrencyModel, delay: Double)
    /// Wake this worker: there are jobs for it, or it must retire.
    case wake(WorkerID)
    /// Interrupt the job the worker is running: `job`, or with nil whatever job it runs (the
    /// worker is retiring and starts no other). The worker's flag is raised; a child process is
    /// told, and stopped if it does not stop the job in time.
    case interrupt(WorkerID, job: JobID?)
    /// Ask the worker to give back the jobs it holds but has not started (its running job
    /// takes long while other workers are idle).
    case release(WorkerID)
    /// Hand a job that reached its final state to a watch; `last` ends the watch.
    case notify(watch: Int, job: JobInfo, last: Bool)
}

/// What a worker asking for work is told.
public enum Assignment: Sendable, Equatable {
    /// Run these jobs, in order (one for threads; a batch for a child process), then report each.
    case run([Job])
    /// Nothing to do yet: wait to be woken.
    case wait
    /// Leave: the pool is smaller now, or shutting down. A worker still holding jobs gives back
    /// those it has not started, finishes its running one, then exits.
    case retire
}

/// Why a submit was refused.
public enum SubmitError: Error, Sendable, Equatable {
    /// The daemon is shutting down.
    case shuttingDown
    /// The queue cannot take the batch.
    case queueFull(limit: Int, queued: Int)
    /// The batch holds an `exec` job and the configuration does not allow them.
    case execDisabled
    /// The batch holds an unforced `crash` job and the model would not survive it.
    case crashRefused(model: ConcurrencyModel)
    /// The journal could not record the jobs; the reason says why and what happened to them.
    case notDurable(reason: String)
}

/// Why a resize was refused.
public enum ResizeError: Error, Sendable, Equatable {
    /// The daemon is shutting down.
    case shuttingDown
    /// The count is outside `min...max`.
    case invalidWorkers(min: Int, max: Int)
}

/// Why a model switch was refused.
public enum SwitchError: Error, Sendable, Equatable {
    /// The daemon is shutting down.
    case shuttingDown
    /// This build or this machine cannot run the model; `reason` says why.
    case unavailable(model: ConcurrencyModel, reason: String)
}

/// Where the last model switch stands.
public enum SwitchProgress: Sendable, Equatable {
    /// Workers of the new model are starting.
    case starting
    /// A worker of the new model serves.
    case serving
    /// No worker of the new model could be started; `reason` says why.
    case failed(reason: String)
    /// The daemon began shutting down first.
    case shuttingDown
}

/// How a worker left.
public enum WorkerExit: Sendable, Equatable {
    /// It retired when asked (a thread returning, a child exiting with status 0).
    case retired
    /// It died unexpectedly; `reason` says how (`worker 4 (pid 1234) killed by SIGKILL`).
    /// `progress` says which job it was running, when the worker could tell (a child's progress
    /// page); without it the pool assumes the first job it handed over.
    case died(reason: String, progress: ProgressReport? = nil)
    /// The pool had it stopped (its running job was interrupted); `reason` says how.
    case stopped(reason: String, progress: ProgressReport? = nil)
}

/// A running job's pending interruption.
///
/// A named job's interruption ends with that job's report, whatever its outcome (it may have
/// finished just before it noticed). An unnamed one is for a retiring worker, which starts
/// no other job: it ends with the first job the worker reports `cancelled` (only a job that
/// noticed its flag is), or with the worker. Reports come in batches, so "the job running" as
/// the pool last heard of it may have finished long ago: nothing else could tell them apart.
struct Interrupt: Sendable, Equatable {
    /// The job meant, or nil for whatever the worker runs.
    var job: JobID?
    /// Why.
    var cause: InterruptCause

    /// Whether it is meant for `job`.
    func applies(to job: JobID) -> Bool { self.job == nil || self.job == job }

    /// Whether a report of `job` ending with `outcome` is the interrupted one.
    func matches(_ job: JobID, outcome: JobOutcome) -> Bool {
        if let named = self.job { return named == job }
        if case .cancelled = outcome { return true }
        return false
    }
}

/// Why a running job is being interrupted.
enum InterruptCause: Sendable, Equatable {
    /// Its time limit passed: it fails.
    case timeLimit(seconds: Double)
    /// The daemon is stopping: it is cancelled.
    case shutdown(reason: String)
    /// A model switch with preemption: it goes back to the head of the queue, to run again.
    case preempt

    /// The job's final state after the interruption, or nil when it goes back to the queue.
    func outcome(output: JobOutput?) -> JobOutcome? {
        switch self {
        case .timeLimit(let seconds): .failed("exceeded its time limit of \(formatDecimal(seconds)) s", output: output)
        case .shutdown(let reason): .cancelled(reason)
        case .preempt: nil
        }
    }
}

/// The timing of the last model switch, for `stats` and the benchmark.
public struct SwitchRecord: Sendable, Equatable {
    /// The model switched from.
    public let from: ConcurrencyModel
    /// The model switched to.
    public let to: ConcurrencyModel
    /// Whether running jobs were preempted.
    public let preempt: Bool
    /// When the switch was asked for (monotonic nanoseconds).
    public let requestedAt: UInt64
    /// When the first worker of the new model served (was ready).
    public var firstServingAt: UInt64?
    /// When a worker of the new model started its first job.
    public var firstJobAt: UInt64?
    /// When the last worker of another model left.
    public var oldRetiredAt: UInt64?
}

/// The pool as a plain value: the queue, the job records, the workers and their states.
///
/// Every transition is a mutating method that decides and returns ``PoolAction``s; the caller
/// (``Pool``) holds the lock and performs the actions, so each rule here is testable without
/// threads, processes or clocks. Invariants it keeps:
/// - every accepted job reaches exactly one final state (done, failed or cancelled);
/// - workers that are not retiring number exactly `target` while serving (but for workers that
///   could not be started);
/// - a running job is never taken from its worker to shrink the pool;
/// - a worker's jobs run in the order they were handed to it, the first being the running one.
public struct PoolStateMachine: Sendable {
    /// Limits and policies; a reload replaces them (``updateConfiguration(_:)``).
    public struct Configuration: Sendable, Equatable {
        /// The queue's limit.
        public var maxQueue: Int
        /// The most workers a resize may ask for.
        public var maxWorkers: Int
        /// Finished job records kept for `ListJobs`/`WatchJobs`.
        public var retainFinished: Int
        /// Attempts a job gets when the worker running it dies; then it fails.
        public var maxAttempts: Int
        /// The time limit of jobs that do not set one, in seconds (nil: none).
        public var defaultTimeout: Double?
        /// Whether `exec` jobs are accepted.
        public var allowExec: Bool
        /// Consecutive failed starts (a worker dying before it served, or within a second) after
        /// which a model stops being restarted.
        public var startFailureLimit: Int
        /// The first restart delay after a death, in seconds; it doubles up to `maxBackoff`.
        public var initialBackoff: Double
        /// The longest restart delay, in seconds.
        public var maxBackoff: Double

        /// Limits with the given values.
        public init(
            maxQueue: Int = 100_000, maxWorkers: Int = 256, retainFinished: Int = 10_000, maxAttempts: Int = 3,
            defaultTimeout: Double? = nil, allowExec: Bool = false, startFailureLimit: Int = 5, initialBackoff: Double = 0.1,
            maxBackoff: Double = 5
        ) {
            self.maxQueue = maxQueue
            self.maxWorkers = maxWorkers
            self.retainFinished = retainFinished
            self.maxAttempts = maxAttempts
            self.defaultTimeout = defaultTimeout
            self.allowExec = allowExec
            self.startFailureLimit = startFailureLimit
            self.initialBackoff = initialBackoff
            self.maxBackoff = maxBackoff
        }
    }

    /// One worker as the pool sees it.
    public struct Worker: Sendable, Equatable {
        /// The worker's id.
        public let id: WorkerID
        /// Its model.
        public let model: ConcurrencyModel
        /// When it was created.
        public let createdAt: UInt64
        /// Whether it has started and asked for work (a thread running, a child that said hello).
        public var ready = false
        /// When it became ready.
        public var readyAt: UInt64?
        /// The jobs handed to it, in order; the first is running.
        var outstanding: Deque<Job> = []
        /// When the running job started (as far as the pool knows).
        public var runningSince: UInt64?
        /// It will leave after its running job (at once when idle).
        public var retiring = false
        /// It asked for work and found none: a wake-up is owed when jobs arrive.
        public var waiting = false
        /// Jobs it finished.
        public var jobsDone = 0
        /// Nanoseconds it spent on finished jobs.
        public var busyNanoseconds: UInt64 = 0
        /// Its kernel thread id or process id, once known.
        public var osID: Int?
        /// Why its running job is being interrupted, if it is.
        var interrupt: Interrupt?
        /// A release of its unstarted jobs was asked for and not yet answered.
        var releaseRequested = false

        init(id: WorkerID, model: ConcurrencyModel, createdAt: UInt64) {
            self.id = id
            self.model = model
            self.createdAt = createdAt
        }

        /// The job it runs, if busy.
        public var job: JobID? { outstanding.first?.id }
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

    /// Counts of workers that left without being asked.
    public struct WorkerEvents: Sendable, Equatable {
        /// Workers that died unexpectedly.
        public var deaths = 0
        /// Workers started to replace dead ones.
        public var restarts = 0
        /// Deaths before serving (or within a second of starting), in a row, per model.
        public var consecutiveStartFailures: [ConcurrencyModel: Int] = [:]
        /// Models that kept dying at start and are no longer restarted, with the last reason.
        public var fatal: [ConcurrencyModel: String] = [:]
    }

    /// Limits and policies.
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
    /// Unexpected worker deaths and what was done about them.
    public private(set) var events = WorkerEvents()
    /// Model switches asked for since start.
    public private(set) var switches = 0
    /// The timing of the last model switch.
    public private(set) var lastSwitch: SwitchRecord?
    /// Latency distributions.
    public private(set) var latency = LatencyRecorder()
    /// Completion rates.
    public private(set) var throughput = ThroughputMeter()
    /// Whether workers are paused: they take no new jobs, the queue keeps accepting.
    public private(set) var paused = false
    /// Why the journal cannot record, while it cannot: workers take no new jobs (intake is
    /// refused before it reaches the pool).
    public private(set) var journalFailure: String?
    /// What a transition that returns no actions itself decided (``nextAssignment(for:limit:now:)``
    /// failing a job it may not hand over): the caller performs them.
    private var deferredActions: [PoolAction] = []
    /// The most recent events, oldest first (at most ``eventMemory``).
    public var lastEvents: [PoolEvent] { Array(recentEvents) }
    private var recentEvents: Deque<PoolEvent> = []
    /// Events recorded since start; the newest has this number.
    public private(set) var eventCount = 0
    /// How many events ``recentEvents`` keeps.
    public static let eventMemory = 64
    var queue: JobQueue
    var table: JobTable
    var watches: [Int: Watch] = [:]
    private var nextWatchID = 1
    private var nextWorkerID: WorkerID = 1
    private(set) var nextJobID: JobID = 1
    /// Workers owed a wake-up, in the order they started waiting.
    private var waiting: Deque<WorkerID> = []
    let clock: MonotonicClock

    /// Seconds a worker must live to count as started (a death before is a failed start).
    static let startGraceNanoseconds: UInt64 = 1_000_000_000
    /// How long a running job may hold unstarted jobs while other workers are idle.
    static let releaseAfterNanoseconds: UInt64 = 5_000_000

    /// Nanoseconds from `start` to `now`, or 0 if `now` is earlier (times come from several
    /// threads and processes; a stale `now` must not wrap around).
    static func elapsed(since start: UInt64, _ now: UInt64) -> UInt64 {
        now > start ? now - start : 0
    }

    /// A pool with no workers yet; ``resize(to:now:)`` starts them.
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
    public mutating func submit(_ specs: [JobSpec], now: UInt64, watch: Bool = false) throws(SubmitError)
        -> (ids: Range<JobID>, watch: Int?, actions: [PoolAction])
    {
        guard intakeOpen else { throw .shuttingDown }
        for spec in specs {
            switch spec.kind {
            case .exec where !configuration.allowExec: throw .execDisabled
            case .crash(forced: false) where model != .processes: throw .crashRefused(model: model)
            default: continue
            }
        }
        guard queue.canAccept(specs.count) else { throw .queueFull(limit: queue.limit, queued: queue.count) }
        let first = nextJobID
        let defaultTimeout = configuration.defaultTimeout
        table.reserve(specs.count)
        for (offset, spec) in specs.enumerated() {
            var spec = spec
            if spec.timeout == nil { spec.timeout = defaultTimeout }
            table.insert(id: first + JobID(offset), spec: spec, submittedAt: now)
        }
        nextJobID += JobID(specs.count)
        queue.append(contentsOf: first..<nextJobID)
        totals.submitted += specs.count
        var watchID: Int?
        if watch && !specs.isEmpty {
            watchID = nextWatchID
            nextWatchID += 1
            watches[watchID!] = Watch(ids: [], range: first...(nextJobID - 1), remaining: specs.count)
        }
        return (first..<nextJobID, watchID, wakeWaiting(upTo: specs.count))
    }

    /// Wake-ups for up to `count` waiting workers.
    private mutating func wakeWaiting(upTo count: Int) -> [PoolAction] {
        var actions: [PoolAction] = []
        while actions.count < count, let id = waiting.popFirst() {
            guard workers[id]?.waiting == true else { continue }
            workers[id]?.waiting = false
            actions.append(.wake(id))
        }
        return actions
    }

    // MARK: Workers

    /// Sets the number of workers. Growing keeps retiring workers of the current model first,
    /// then starts new ones; shrinking retires idle workers first, then busy ones after their job.
    /// A model that had stopped being restarted (it kept dying at start) gets a new chance.
    public mutating func resize(to count: Int, now: UInt64 = MonotonicClock.now()) throws(ResizeError)
        -> (previous: Int, actions: [PoolAction])
    {
        guard intakeOpen else { throw .shuttingDown }
        guard (1...configuration.maxWorkers).contains(count) else {
            throw .invalidWorkers(min: 1, max: configuration.maxWorkers)
        }
        let previous = target
        target = count
        if previous != 0 && previous != count {
            resizes += 1
            record(.resized, "resized from \(previous) to \(count) workers", now: now)
        }
        events.fatal[model] = nil
        events.consecutiveStartFailures[model] = nil
        return (previous, reconcile(now: now))
    }

    /// Brings the workers in line with the model and the target: workers of another model retire
    /// (idle ones at once, busy ones after their job); extra workers retire, idle ones first; and
    /// missing ones start, but never more live workers than the target: during a handover a
    /// new-model worker starts in each place an old one leaves.
    private mutating func reconcile(now: UInt64, startDelay: Double = 0) -> [PoolAction] {
        var actions: [PoolAction] = []
        for id in workers.keys.sorted() where workers[id]!.model != model && !workers[id]!.retiring {
            retire(id, into: &actions)
        }
        var active = workers.values.filter { !$0.retiring }.count
        if active > target {
            let candidates = workers.values.filter { !$0.retiring }.sorted { lhs, rhs in
                // Idle (and starting) workers before busy ones; the newest first.
                (lhs.outstanding.isEmpty ? 0 : 1, -lhs.id) < (rhs.outstanding.isEmpty ? 0 : 1, -rhs.id)
            }
            for worker in candidates.prefix(active - target) { retire(worker.id, into: &actions) }
        } else if active < target {
            for id in workers.keys.sorted() where active < target {
                // A worker whose job is being interrupted keeps leaving: the job expects it.
                guard let worker = workers[id], worker.retiring, worker.model == model, worker.interrupt == nil else { continue }
                workers[id]?.retiring = false
                active += 1
            }
            guard events.fatal[model] == nil else { return actions }
            while active < target && workers.count < target {
                let id = nextWorkerID
                nextWorkerID += 1
                workers[id] = Worker(id: id, model: model, createdAt: now)
                actions.append(.startWorker(id, model, delay: startDelay))
                active += 1
            }
        }
        return actions
    }

    /// Marks a worker retiring: idle, it leaves at once; busy, after its running job, giving
    /// back the jobs it holds but has not started.
    private mutating func retire(_ id: WorkerID, into actions: inout [PoolAction]) {
        workers[id]?.retiring = true
        workers[id]?.waiting = false
        actions.append(.wake(id))
    }

    /// Switches the pool to `model` while it runs (a handover). The queue stays; workers of the
    /// old model stop taking jobs and retire after their running job (with `preempt`, that job
    /// is interrupted and goes back to the head of the queue); a worker of the new model starts
    /// in each place an old one leaves, so there are never more workers than the target. A
    /// switch asked for during another one just retargets it.
    public mutating func setModel(_ model: ConcurrencyModel, preempt: Bool, now: UInt64) throws(SwitchError)
        -> (previous: ConcurrencyModel, actions: [PoolAction])
    {
        guard intakeOpen else { throw .shuttingDown }
        let previous = self.model
        guard model != previous else { return (previous, []) }
        self.model = model
        switches += 1
        events.fatal[model] = nil
        events.consecutiveStartFailures[model] = nil
        lastSwitch = SwitchRecord(from: previous, to: model, preempt: preempt, requestedAt: now)
        record(
            .switchRequested, "switch \(previous.rawValue) -> \(model.rawValue)\(preempt ? " (preempting)" : "")",
            model: model, now: now)
        var actions: [PoolAction] = []
        if preempt {
            for (id, worker) in workers where worker.model != model && worker.job != nil && worker.interrupt == nil {
                workers[id]?.interrupt = Interrupt(job: nil, cause: .preempt)
                actions.append(.interrupt(id, job: nil))
            }
        }
        actions += reconcile(now: now)
        // Switching back during a handover: workers of the model that had not left yet serve.
        if workers.values.contains(where: { $0.model == model && $0.ready && !$0.retiring }) {
            lastSwitch?.firstServingAt = now
        }
        if !workers.values.contains(where: { $0.model != model }) { lastSwitch?.oldRetiredAt = now }
        return (previous, actions)
    }

    /// Where the last switch stands for its caller, who waits until the new model serves.
    public var switchProgress: SwitchProgress {
        guard let record = lastSwitch else { return .serving }
        if !intakeOpen { return .shuttingDown }
        if record.firstServingAt != nil { return .serving }
        if let reason = events.fatal[record.to] { return .failed(reason: reason) }
        // Workers of the new model start as those of the old one leave; none of either left
        // means none could be started.
        if workers.isEmpty { return .failed(reason: "no \(record.to.rawValue) worker could be started") }
        return .starting
    }

    /// Notes that a worker started and serves (its thread id or process id).
    public mutating func workerReady(_ id: WorkerID, osID: Int?, now: UInt64 = MonotonicClock.now()) {
        workers[id]?.osID = osID
        workers[id]?.ready = true
        workers[id]?.readyAt = now
        if let record = lastSwitch, workers[id]?.model == record.to, record.firstServingAt == nil {
            lastSwitch?.firstServingAt = now
            let seconds = Double(Self.elapsed(since: record.requestedAt, now)) / 1e9
            self.record(
                .switchServing, "\(record.to.rawValue) serving, \(formatDuration(seconds)) after the switch", worker: id,
                model: record.to, now: now)
        }
    }

    /// The next thing `worker` should do: up to `limit` jobs (no more than its fair share of
    /// the queue), waiting, or retiring. A worker may ask while it still holds jobs (a child
    /// prefetching); a worker told `.retire` finishes its running job, gives back the others,
    /// and calls ``workerExited(_:exit:now:)``.
    public mutating func nextAssignment(for id: WorkerID, limit: Int = 1, now: UInt64) -> Assignment {
        guard let index = workers.index(forKey: id) else { return .retire }
        let (retiring, wasIdle) = withWorker(at: index) { worker in
            worker.waiting = false
            return (worker.retiring, worker.outstanding.isEmpty)
        }
        if retiring { return .retire }
        // A batch never takes more than an even split of the queue among the workers; paused
        // workers take nothing, nor do workers while the journal cannot record their start:
        // they wait like workers of an empty queue.
        let sharers = max(1, target)
        let limit = paused || journalFailure != nil ? 0 : min(limit, max(1, (queue.count + sharers - 1) / sharers))
        var taken: [Job] = []
        taken.reserveCapacity(min(limit, queue.count))
        while taken.count < limit, let jobID = queue.first {
            guard let job = table.job(jobID) else {
                _ = queue.popFirst()
                continue
            }
            if case .exec = job.kind {
                // Whether a command may run is decided now, not only when it was accepted.
                guard configuration.allowExec else {
                    _ = queue.popFirst()
                    deferredActions += complete(
                        jobID, outcome: .failed(Self.execNotAllowedReason), startedAt: nil, now: now)
                    continue
                }
                // A command goes to an idle worker, alone: its start is recorded before it runs,
                // and its end is reported at once, never behind another job's.
                guard wasIdle && taken.isEmpty else { break }
                _ = queue.popFirst()
                taken.append(job)
                break
            }
            _ = queue.popFirst()
            taken.append(job)
        }
        guard !taken.isEmpty else {
            guard wasIdle else { return .run([]) }
            withWorker(at: index) { $0.waiting = true }
            waiting.append(id)
            return .wait
        }
        withWorker(at: index) { $0.outstanding.append(contentsOf: taken) }
        if table.isJournaled {
            for job in taken.dropFirst(wasIdle ? 1 : 0) { table.markHandedOver(job.id) }
        }
        if wasIdle {
            // The first job starts now and counts an attempt; the others count theirs when they
            // start (the pool's record is the authority, not the worker's copy).
            startRunning(at: index, now: now)
            taken[0].attempts += 1
        }
        return .run(taken)
    }

    /// The reason an `exec` job fails when it is to be handed to a worker while exec jobs are
    /// not allowed (it was queued while they were, before a restart or a reload).
    public static let execNotAllowedReason =
        "exec jobs are not allowed: concurd now runs without --allow-exec (allow_exec = false), and this one was queued while they were"

    /// Whether ``nextAssignment(for:limit:now:)`` decided actions for the caller to perform.
    public var hasDeferredActions: Bool { !deferredActions.isEmpty }

    /// The actions ``nextAssignment(for:limit:now:)`` decided, to perform now.
    public mutating func takeDeferredActions() -> [PoolAction] {
        defer { deferredActions.removeAll() }
        return deferredActions
    }

    /// Notes that the journal cannot record (`reason`) or can again (nil). While it cannot,
    /// workers take no new jobs; once it can, the waiting ones are woken.
    public mutating func setJournalFailure(_ reason: String?, now: UInt64) -> [PoolAction] {
        guard reason != journalFailure else { return [] }
        let was = journalFailure
        journalFailure = reason
        if let reason {
            if was == nil { record(.journal, "the job journal cannot record: workers start no new jobs (\(reason))", now: now) }
            return []
        }
        record(.journal, "the job journal records again (\(queue.count) queued)", now: now)
        return wakeWaiting(upTo: max(queue.count, 1))
    }

    /// Runs `body` on the worker at `index` in place. Reading `workers.values[index]` would copy
    /// the worker (and every job it holds); every `workers[id]` would hash the id again.
    @inline(__always)
    private mutating func withWorker<R>(at index: Dictionary<WorkerID, Worker>.Index, _ body: (inout Worker) -> R) -> R {
        body(&workers.values[index])
    }

    /// The first outstanding job of the worker at `index` starts now (as far as the pool can tell).
    private mutating func startRunning(at index: Dictionary<WorkerID, Worker>.Index, now: UInt64) {
        let started = withWorker(at: index) { worker -> (JobID, Int, ConcurrencyModel)? in
            guard !worker.outstanding.isEmpty else { return nil }
            worker.outstanding[0].attempts += 1
            worker.runningSince = now
            return (worker.outstanding[0].id, worker.outstanding[0].attempts, worker.model)
        }
        guard let (jobID, attempts, model) = started else { return }
        if attempts > 1 { totals.retried += 1 }
        if model == lastSwitch?.to, lastSwitch?.firstJobAt == nil { lastSwitch?.firstJobAt = now }
        table.markRunning(jobID, attempts: attempts, worker: workers.keys[index], model: model, at: now)
    }

    /// Records the outcomes of jobs `worker` ran, in the order they ran (one look-up of the
    /// worker for the batch).
    public mutating func finish(worker id: WorkerID, reports: [JobReport]) -> [PoolAction] {
        guard var index = workers.index(forKey: id) else { return [] }
        var actions: [PoolAction] = []
        for report in reports {
            let (more, stillValid) = finish(
                at: index, job: report.id, outcome: report.outcome, startedAt: report.startedAt, now: report.finishedAt)
            if !more.isEmpty { actions += more }
            if !stillValid {
                guard let again = workers.index(forKey: id) else { break }
                index = again
            }
        }
        return actions
    }

    /// Records the outcome of a job `worker` ran; `startedAt` is when it really started, when the
    /// worker knows better than the pool (a child reports its own times). Returns notifications.
    public mutating func finish(worker id: WorkerID, job jobID: JobID, outcome: JobOutcome, startedAt: UInt64? = nil, now: UInt64)
        -> [PoolAction]
    {
        guard let index = workers.index(forKey: id) else { return [] }
        return finish(at: index, job: jobID, outcome: outcome, startedAt: startedAt, now: now).actions
    }

    /// ``finish(worker:job:outcome:startedAt:now:)`` for the worker at `index`; also says whether
    /// `index` is still valid afterwards.
    private mutating func finish(
        at index: Dictionary<WorkerID, Worker>.Index, job jobID: JobID, outcome: JobOutcome, startedAt: UInt64?, now: UInt64
    ) -> (actions: [PoolAction], indexValid: Bool) {
        let found = withWorker(at: index) { worker -> (wasRunning: Bool, since: UInt64, cause: InterruptCause?, more: Bool)? in
            guard let position = worker.outstanding.firstIndex(where: { $0.id == jobID }) else { return nil }
            let wasRunning = position == 0
            let since = startedAt ?? (wasRunning ? worker.runningSince : nil) ?? now
            var cause: InterruptCause?
            if let interrupt = worker.interrupt, interrupt.matches(jobID, outcome: outcome) {
                cause = interrupt.cause
                worker.interrupt = nil
            }
            if wasRunning {
                worker.outstanding.removeFirst()
                worker.runningSince = nil
            } else {
                worker.outstanding.remove(at: position)
            }
            worker.jobsDone += 1
            worker.busyNanoseconds += now > since ? now - since : 0
            return (wasRunning, since, cause, !worker.outstanding.isEmpty)
        }
        guard let found else { return ([], true) }
        var outcome = outcome
        if let cause = found.cause {
            switch (cause, outcome) {
            case (.preempt, .cancelled):
                // Interrupted by a switch: back to the head of the queue, to run again.
                let id = workers.keys[index]
                table.markRequeued(jobID, preempted: true)
                let actions = putBack(table.job(jobID).map { [$0] } ?? [], now: now)
                if found.wasRunning && found.more, let index = workers.index(forKey: id) { startRunning(at: index, now: now) }
                return (actions, false)
            case (_, .cancelled): outcome = cause.outcome(output: nil) ?? outcome
            case (.timeLimit, .failed(_, let output)): outcome = cause.outcome(output: output) ?? outcome
            default: break
            }
        }
        // `complete` changes no worker, so `index` stays valid.
        let actions = complete(jobID, outcome: outcome, startedAt: found.since, now: now)
        if found.wasRunning && found.more { startRunning(at: index, now: now) }
        return (actions, true)
    }

    /// Puts jobs back at the head of the queue, in their order, and wakes waiting workers. Once
    /// a shutdown began no worker would take them: they are cancelled instead, or, with a
    /// journal, stay queued in it for the next start.
    private mutating func putBack(_ jobs: [Job], now: UInt64) -> [PoolAction] {
        guard intakeOpen else {
            if table.isJournaled {
                keptForRestart += jobs.count
                return []
            }
            return jobs.flatMap { complete($0.id, outcome: .cancelled(Self.unfinishedReason), startedAt: nil, now: now) }
        }
        for job in jobs.reversed() { queue.pushFront(job.id) }
        return wakeWaiting(upTo: jobs.count)
    }

    /// The reason recorded for jobs given back, or left by their worker, during a shutdown.
    public static let unfinishedReason = "not run to the end before the daemon shut down"

    /// Takes back jobs a worker held but had not started (after a release or a retire); they go
    /// to the head of the queue, in their order, and waiting workers are woken.
    public mutating func returnJobs(worker id: WorkerID, ids: [JobID], now: UInt64) -> [PoolAction] {
        // Rare (a release or a retire), so a copy of the worker is fine here.
        guard var worker = workers.removeValue(forKey: id) else { return [] }
        let returning = Set(ids)
        var returned: [Job] = []
        var kept: Deque<Job> = []
        for (index, job) in worker.outstanding.enumerated() {
            if returning.contains(job.id) {
                var job = job
                if index == 0 {
                    // The pool thought it running; it had not started.
                    job.attempts -= 1
                    if job.attempts >= 1 { totals.retried -= 1 }
                    worker.runningSince = nil
                }
                table.markRequeued(job.id, attempts: job.attempts)
                returned.append(job)
            } else {
                kept.append(job)
            }
        }
        let runningReturned = worker.outstanding.first.map { returning.contains($0.id) } ?? false
        worker.outstanding = kept
        worker.releaseRequested = false
        workers[id] = worker
        if runningReturned && !kept.isEmpty, let index = workers.index(forKey: id) { startRunning(at: index, now: now) }
        return putBack(returned, now: now)
    }

    /// Forgets a worker that left. The job it was running is retried (up to the attempt limit,
    /// then failed with the reason of the death) or, if interrupted, ends as its interruption
    /// says; jobs it had finished without reporting run again (at least once across crashes);
    /// jobs it had not started go back to the head of the queue. A dead worker is replaced, after
    /// a backoff; a model that keeps dying at start is not restarted any more.
    public mutating func workerExited(_ id: WorkerID, exit: WorkerExit, now: UInt64) -> [PoolAction] {
        guard let worker = workers.removeValue(forKey: id) else { return [] }
        var died: String?
        var progress: ProgressReport?
        switch exit {
        case .retired:
            // A worker that retired reported every job it ran: any it still held never started.
            progress = ProgressReport(running: nil, lastFinished: nil)
        case .died(let reason, let report):
            died = reason
            progress = report
        case .stopped(_, let report):
            progress = report
        }
        let outstanding = Array(worker.outstanding)
        // Which of its jobs ran: without a report, the pool's own guess (the first one runs).
        let runningIndex: Int?
        let startedThrough: Int
        if let progress {
            runningIndex = progress.running.flatMap { job in outstanding.firstIndex { $0.id == job } }
            let finishedIndex = progress.lastFinished.flatMap { job in outstanding.firstIndex { $0.id == job } } ?? -1
            startedThrough = max(runningIndex ?? -1, finishedIndex)
        } else {
            runningIndex = outstanding.isEmpty ? nil : 0
            startedThrough = runningIndex ?? -1
        }
        var actions: [PoolAction] = []
        var requeue: [Job] = []
        for (index, original) in outstanding.enumerated() {
            var job = original
            // The pool counted an attempt for the first job only; correct that from what ran.
            if index == 0 && startedThrough < 0 {
                job.attempts -= 1
                if job.attempts >= 1 { totals.retried -= 1 }
            } else if index > 0 && index <= startedThrough {
                job.attempts += 1
                if job.attempts > 1 { totals.retried += 1 }
            }
            if index == runningIndex {
                let since = index == 0 ? worker.runningSince : nil
                if let interrupt = worker.interrupt, interrupt.applies(to: job.id) {
                    if let outcome = interrupt.cause.outcome(output: nil) {
                        table.markRunning(job.id, attempts: job.attempts, worker: id, model: worker.model, at: since ?? now)
                        actions += complete(job.id, outcome: outcome, startedAt: since, now: now)
                        continue
                    }
                    // Preempted: it goes back to the queue like the rest, blaming nobody.
                    table.markRequeued(job.id, attempts: job.attempts, preempted: true)
                    requeue.append(job)
                    continue
                }
                if let died, job.countedAttempts >= configuration.maxAttempts {
                    table.markRunning(job.id, attempts: job.attempts, worker: id, model: worker.model, at: since ?? now)
                    actions += complete(
                        job.id, outcome: .failed("\(died) (attempt \(job.countedAttempts) of \(configuration.maxAttempts))"),
                        startedAt: since, now: now)
                    continue
                }
            }
            table.markRequeued(job.id, attempts: job.attempts)
            requeue.append(job)
        }
        actions += putBack(requeue, now: now)
        if let record = lastSwitch, record.oldRetiredAt == nil, !workers.values.contains(where: { $0.model != model }) {
            lastSwitch?.oldRetiredAt = now
        }
        var delay = 0.0
        if let died {
            events.deaths += 1
            // A worker its job killed did start; one that died before serving anything did not.
            let servedNothing = worker.jobsDone == 0 && startedThrough < 0
            let startFailure =
                !worker.ready || (servedNothing && Self.elapsed(since: worker.createdAt, now) < Self.startGraceNanoseconds)
            let failures = (events.consecutiveStartFailures[worker.model] ?? 0) + (startFailure ? 1 : 0)
            events.consecutiveStartFailures[worker.model] = startFailure ? failures : nil
            if failures >= configuration.startFailureLimit {
                events.fatal[worker.model] = died
            }
            delay = min(configuration.maxBackoff, configuration.initialBackoff * Double(1 << min(max(failures, 1) - 1, 16)))
        }
        var replacements: [WorkerID] = []
        if intakeOpen {
            let starts = reconcile(now: now, startDelay: delay)
            for case .startWorker(let newID, _, _) in starts { replacements.append(newID) }
            if died != nil { events.restarts += replacements.count }
            actions += starts
        }
        if let died {
            let next: String
            if let replacement = replacements.first {
                next = "worker \(replacement) replaces it" + (delay > 0 ? " in \(formatDecimal(delay)) s" : "")
            } else if events.fatal[worker.model] != nil {
                next = "\(worker.model.rawValue) workers keep dying at start and are no longer restarted"
            } else {
                next = "not replaced"
            }
            record(.workerDied, "\(died); \(next)", worker: id, model: worker.model, now: now)
        }
        return actions
    }

    /// Forgets a worker that never started (its thread or process could not be created) and
    /// lowers the target by one, so the failure is not retried in a loop; the next resize tries
    /// again.
    public mutating func abandonWorker(_ id: WorkerID, now: UInt64) -> [PoolAction] {
        guard let worker = workers[id] else { return [] }
        if !worker.retiring && target > 0 { target -= 1 }
        return workerExited(id, exit: .retired, now: now)
    }

    // MARK: The clock

    /// Interrupts jobs past their time limit, and asks a worker to release the jobs it holds
    /// behind a long-running one while others are idle. A worker that has served past the start
    /// grace proves its model starts (the count of failed starts is reset). Called about every
    /// 100 ms.
    public mutating func tick(now: UInt64, running known: [WorkerID: ProgressReport] = [:]) -> [PoolAction] {
        var actions: [PoolAction] = []
        let someoneIdle = queue.isEmpty && workers.values.contains { $0.waiting }
        for (id, worker) in workers {
            if worker.ready, Self.elapsed(since: worker.createdAt, now) >= Self.startGraceNanoseconds,
                events.consecutiveStartFailures[worker.model] != nil
            {
                events.consecutiveStartFailures[worker.model] = nil
            }
            // What runs: the worker's own word when it has one (a child's progress page), else
            // the pool's guess (the first job it handed over).
            let running: (job: Job, since: UInt64)?
            if let report = known[id] {
                running = report.running.flatMap { jobID in
                    worker.outstanding.first { $0.id == jobID }.map { ($0, report.since ?? worker.runningSince ?? now) }
                }
            } else if let job = worker.outstanding.first, let since = worker.runningSince {
                running = (job, since)
            } else {
                running = nil
            }
            guard let (job, since) = running else { continue }
            // An exec job's runner stops its own command at the limit; the worker is stopped only
            // if that failed, after the runner's grace.
            let grace: UInt64 = if case .exec = job.kind { 3_000_000_000 } else { 0 }
            if worker.interrupt == nil, let limit = job.spec.timeout, now >= since + UInt64(limit * 1e9) + grace {
                workers[id]?.interrupt = Interrupt(job: job.id, cause: .timeLimit(seconds: limit))
                actions.append(.interrupt(id, job: job.id))
            }
            if someoneIdle, worker.outstanding.count > 1, !worker.releaseRequested,
                Self.elapsed(since: since, now) >= Self.releaseAfterNanoseconds
            {
                workers[id]?.releaseRequested = true
                actions.append(.release(id))
            }
        }
        return actions
    }

    /// Samples the finished total for the throughput windows (about once a second).
    public mutating func sampleThroughput(now: UInt64) {
        throughput.sample(at: now, total: totals.finished)
    }

    // MARK: Reload

    /// Applies new limits while the pool runs: jobs already accepted stay even above a lower
    /// queue limit, the retention prunes on the next finished job, and new attempts and time
    /// limits apply to jobs that start from now on. A `maxWorkers` below the current target is
    /// refused (resize first).
    public mutating func updateConfiguration(_ new: Configuration) throws(ResizeError) {
        guard new.maxWorkers >= target else { throw .invalidWorkers(min: 1, max: new.maxWorkers) }
        configuration = new
        queue.limit = new.maxQueue
        table.retainFinished = new.retainFinished
    }

    // MARK: Pause

    /// Pauses (`true`) or resumes the workers; returns whether that changed anything and who to
    /// wake. Paused workers finish what they run (and what they already hold) and take nothing
    /// new; submits are still accepted.
    public mutating func setPaused(_ paused: Bool, now: UInt64) -> (changed: Bool, actions: [PoolAction]) {
        guard paused != self.paused else { return (false, []) }
        self.paused = paused
        if paused {
            record(.paused, "paused: workers take no new jobs (\(queue.count) queued)", now: now)
            return (true, [])
        }
        record(.resumed, "resumed (\(queue.count) queued)", now: now)
        return (true, wakeWaiting(upTo: queue.count))
    }

    /// Remembers an event for `Stats` and for the watches that follow events.
    mutating func record(
        _ kind: PoolEventKind, _ message: String, worker: WorkerID? = nil, model: ConcurrencyModel? = nil, now: UInt64
    ) {
        if recentEvents.count == Self.eventMemory { recentEvents.removeFirst() }
        recentEvents.append(
            PoolEvent(time: clock.unixTime(now), kind: kind, message: message, worker: worker, model: model))
        eventCount += 1
    }

    /// The events recorded after the first `count` (as many as are still remembered).
    public func events(after count: Int) -> ArraySlice<PoolEvent> {
        let new = min(eventCount - count, recentEvents.count)
        return lastEvents.suffix(max(0, new))
    }

    // MARK: Shutdown

    /// The reason recorded for queued jobs cancelled by a shutdown.
    public static let notStartedReason = "not started before the daemon shut down"

    /// Begins a graceful shutdown: intake closes, queued jobs are cancelled with `reason` (they
    /// never started) or, with a journal, stay queued in it for the next start, and every
    /// worker retires after its running job.
    public mutating func beginDrain(now: UInt64, reason: String = notStartedReason) -> [PoolAction] {
        guard intakeOpen else { return [] }
        intakeOpen = false
        target = 0
        record(.draining, "draining: intake closed, \(runningCount) running jobs finishing", now: now)
        var actions: [PoolAction] = []
        let queued = queue.removeAll()
        if table.isJournaled {
            keptForRestart += queued.count
        } else {
            for jobID in queued {
                actions += complete(jobID, outcome: .cancelled(reason), startedAt: nil, now: now)
            }
        }
        waiting.removeAll()
        for id in workers.keys.sorted() {
            workers[id]?.retiring = true
            workers[id]?.waiting = false
            actions.append(.wake(id))
        }
        return actions
    }

    /// Interrupts every running job; each ends `cancelled` with `reason` (queued ones, if the
    /// drain had not begun, with `queuedReason`).
    public mutating func cancelRunning(reason: String, queuedReason: String = notStartedReason, now: UInt64) -> [PoolAction] {
        var actions = beginDrain(now: now, reason: queuedReason)
        stopping = true
        for (id, worker) in workers where worker.job != nil {
            if case .shutdown = worker.interrupt?.cause { continue }
            // Whatever else was pending (a time limit, a preemption) is overtaken: every job
            // running now ends cancelled.
            workers[id]?.interrupt = Interrupt(job: nil, cause: .shutdown(reason: reason))
            actions.append(.interrupt(id, job: nil))
        }
        return actions
    }

    /// Jobs a shutdown left unfinished that stay queued in the journal for the next start.
    public private(set) var keptForRestart = 0

    /// Whether shutdown began and every worker has left.
    public var isDrained: Bool { !intakeOpen && workers.isEmpty }

    // MARK: The journal

    /// Starts collecting every change to the jobs' records for a durable journal (see
    /// ``takeJournalChanges()``); a shutdown then keeps unfinished jobs queued for the next start.
    public mutating func startJournal() {
        table.startJournal()
    }

    /// The changes collected since the last call, and how many were collected in all.
    public mutating func takeJournalChanges() -> (changes: [JournalChange], through: UInt64) {
        table.takeChanges()
    }

    /// How many changes have been collected in all (a worker or a `Submit` waits until the
    /// journal has made this many durable).
    public var journalChangeCount: UInt64 { table.changeCount }

    /// Puts back the jobs a journal held at start-up, before any job is submitted: unfinished
    /// ones are queued in id order, finished ones kept for `ListJobs`. New ids continue from
    /// `nextJobID`.
    public mutating func restore(_ records: [JobRecord], nextJobID: JobID) {
        for record in records.sorted(by: { $0.id < $1.id }) where record.id >= self.nextJobID {
            table.restore(record)
            self.nextJobID = record.id + 1
            if !record.state.isFinal { queue.append(contentsOf: record.id..<(record.id + 1)) }
        }
        self.nextJobID = max(self.nextJobID, nextJobID)
    }

    /// Forgets finished records older than the retention's age (monotonic nanoseconds).
    public mutating func pruneFinished(before cutoff: UInt64) {
        table.pruneFinished(before: cutoff)
    }

    // MARK: Records

    /// Moves a job to its final state, counts it and tells the watches that cover it. With a
    /// journal, a job a shutdown interrupted is not final: it goes back to `queued` in the
    /// journal (the interrupted attempt not counted) and runs again after the next start.
    private mutating func complete(_ id: JobID, outcome: JobOutcome, startedAt: UInt64?, now: UInt64) -> [PoolAction] {
        if case .cancelled = outcome, !intakeOpen, table.isJournaled {
            table.markRequeued(id, preempted: table[id]?.state == .running)
            keptForRestart += 1
            return []
        }
        guard let submittedAt = table.markFinished(id, outcome: outcome, startedAt: startedAt, at: now) else { return [] }
        switch outcome {
        case .done:
            totals.done += 1
            if let startedAt { latency.record(submitted: submittedAt, started: startedAt, finished: now) }
        case .failed:
            totals.failed += 1
            if let startedAt { latency.record(submitted: submittedAt, started: startedAt, finished: now) }
        case .cancelled:
            // Latencies describe jobs that ran to an end; an interrupted job would skew them.
            totals.cancelled += 1
        }
        return watches.isEmpty ? [] : notifyWatches(of: id)
    }

    /// The notifications for the watches that cover a job that just finished. Kept out of
    /// ``complete(_:outcome:startedAt:now:)``: most jobs have no watch, and a job's full record
    /// is large to build.
    @inline(never)
    private mutating func notifyWatches(of id: JobID) -> [PoolAction] {
        var actions: [PoolAction] = []
        var info: JobInfo?
        for (watchID, watch) in watches where watch.covers(id) {
            if info == nil { info = table[id]?.info(clock: clock) }
            guard let info else { break }
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
}

/// A job id that the pool does not know (never accepted, or finished and pruned).
public struct NoSuchJobError: Error, Sendable, Equatable {
    /// The unknown id.
    public let id: JobID

    /// The error for `id`.
    public init(id: JobID) { self.id = id }
}
