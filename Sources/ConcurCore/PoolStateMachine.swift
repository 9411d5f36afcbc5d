package import ConcurProtocol
import DequeModule

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
package struct PoolStateMachine: Sendable {
    /// Limits and policies; a reload replaces them (``updateConfiguration(_:)``).
    package struct Configuration: Sendable, Equatable {
        /// The queue's limit.
        package var maxQueue: Int
        /// The most workers a resize may ask for.
        package var maxWorkers: Int
        /// Finished job records kept for `ListJobs`/`WatchJobs`.
        package var retainFinished: Int
        /// Attempts a job gets when the worker running it dies; then it fails.
        package var maxAttempts: Int
        /// The time limit of jobs that do not set one, in seconds (nil: none).
        package var defaultTimeout: Double?
        /// Whether `exec` jobs are accepted.
        package var allowExec: Bool
        /// Consecutive failed starts (a worker dying before it served, or within a second) after
        /// which a model stops being restarted.
        package var startFailureLimit: Int
        /// The first restart delay after a death, in seconds; it doubles up to `maxBackoff`.
        package var initialBackoff: Double
        /// The longest restart delay, in seconds.
        package var maxBackoff: Double

        /// Limits with the given values.
        package init(
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
    package struct Worker: Sendable, Equatable {
        /// The worker's id.
        package let id: WorkerID
        /// Its model.
        package let model: ConcurrencyModel
        /// When it was created.
        package let createdAt: UInt64
        /// Its place among the pool's workers, 1 up to the target: the lowest free when it was
        /// created, so a replacement takes the place of the one it replaces and a place's
        /// statistics stay one series however often its worker changes.
        package let slot: Int
        /// Whether it has started and asked for work (a thread running, a child that said hello).
        package var ready = false
        /// When it became ready.
        package var readyAt: UInt64?
        /// The jobs handed to it, in order; the first is running.
        var outstanding: Deque<Job> = []
        /// When the running job started (as far as the pool knows).
        package var runningSince: UInt64?
        /// It will leave after its running job (at once when idle).
        package var retiring = false
        /// It asked for work and found none: a wake-up is owed when jobs arrive.
        package var waiting = false
        /// Jobs it finished.
        package var jobsDone = 0
        /// Nanoseconds it spent on finished jobs.
        package var busyNanoseconds: UInt64 = 0
        /// The time it spent on jobs in the last seconds.
        package var recentBusy = RecentBusy()
        /// Its kernel thread id or process id, once known.
        package var osID: Int?
        /// Why its running job is being interrupted, if it is.
        var interrupt: Interrupt?
        /// A release of its unstarted jobs was asked for and not yet answered.
        var releaseRequested = false

        init(id: WorkerID, model: ConcurrencyModel, createdAt: UInt64, slot: Int) {
            self.id = id
            self.model = model
            self.createdAt = createdAt
            self.slot = slot
        }

        /// The job it runs, if busy.
        package var job: JobID? { outstanding.first?.id }
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
    package struct WorkerEvents: Sendable, Equatable {
        /// Workers that died unexpectedly.
        package var deaths = 0
        /// Workers started to replace dead ones.
        package var restarts = 0
        /// Deaths before serving (or within a second of starting), in a row, per model.
        package var consecutiveStartFailures: [ConcurrencyModel: Int] = [:]
        /// Models that kept dying at start and are no longer restarted, with the last reason.
        package var fatal: [ConcurrencyModel: String] = [:]
    }

    /// Limits and policies.
    package internal(set) var configuration: Configuration
    /// The model new workers get.
    package internal(set) var model: ConcurrencyModel
    /// The number of workers asked for.
    package internal(set) var target = 0
    /// Serving, paused, draining or stopping.
    package internal(set) var lifecycle = PoolLifecycle.serving
    /// Whether submits are accepted (false once shutdown began).
    package var intakeOpen: Bool { lifecycle.acceptsWork }
    /// Whether running jobs are being cancelled (after the drain gave up).
    package var stopping: Bool { lifecycle == .stopping }
    /// The workers alive, by id.
    package internal(set) var workers: [WorkerID: Worker] = [:]
    /// Totals by outcome.
    package internal(set) var totals = JobTotals()
    /// Resizes applied.
    package internal(set) var resizes = 0
    /// Unexpected worker deaths and what was done about them.
    package internal(set) var events = WorkerEvents()
    /// Model switches asked for since start.
    package internal(set) var switches = 0
    /// The timing of the last model switch.
    package internal(set) var lastSwitch: SwitchRecord?
    /// Latency distributions.
    package internal(set) var latency = LatencyRecorder()
    /// Completion rates.
    package internal(set) var throughput = ThroughputMeter()
    /// Whether workers are paused: they take no new jobs, the queue keeps accepting.
    package var paused: Bool { lifecycle == .paused }
    /// Why the journal cannot record, while it cannot: workers take no new jobs (intake is
    /// refused before it reaches the pool).
    package internal(set) var journalFailure: String?
    /// What a transition that returns no actions itself decided (``nextAssignment(for:limit:now:)``
    /// failing a job it may not hand over): the caller performs them.
    var deferredActions: [PoolAction] = []
    /// The most recent events, oldest first (at most ``eventMemory``).
    package var lastEvents: [PoolEvent] { Array(recentEvents) }
    var recentEvents: Deque<PoolEvent> = []
    /// Events recorded since start; the newest has this number.
    package internal(set) var eventCount = 0
    /// How many events ``recentEvents`` keeps.
    package static let eventMemory = 64
    var queue: JobQueue
    var table: JobTable
    var watches: [Int: Watch] = [:]
    var nextWatchID = 1
    var nextWorkerID: WorkerID = 1
    /// One past the highest id this pool accepted or restored.
    package internal(set) var nextJobID: JobID = 1
    /// Callers waiting for a switch to settle, in the order they asked.
    var switchWaiters: [SwitchWaiter] = []
    var nextSwitchTicket = 1
    /// Jobs cancelled while a worker held them, with the reason, until they end: a running one
    /// is being interrupted, one held and not started is being taken back from its worker.
    var cancelling: [JobID: String] = [:]
    /// Jobs waiting until a time: their `startAt`, or the end of a retry's delay.
    var timetable = JobTimetable()
    /// Jobs waiting for others to end done.
    var dependencies = JobDependencies()
    /// Whether a job of a priority other than 0 was ever accepted (until then no prefetched job
    /// can be overtaken: see ``reclaimHeld(below:)``).
    var prioritiesInUse = false
    /// Jobs that ended whose dependents are being settled, while a cascade is walked (nil
    /// otherwise): see ``settleDependents(of:outcome:now:)``.
    var settling: [(JobID, JobState)]?
    /// Jobs restored from the journal that a job they run after, already ended, cancels once
    /// the journal records (``startJournal()``), with the reason and the instant of the restore
    /// (their end's time).
    var restoredCancels: [(JobID, String, UInt64)] = []
    /// Own jobs that jobs of other pools wait for: each one's end is announced
    /// (``PoolAction/dependencyEnded(_:_:)``), then it leaves the set.
    var awaitedOutside: Set<JobID> = []
    /// Other pools' jobs that submits under way here wait for, with how many submits expect each
    /// and how it ended if an end arrived meanwhile (see ``expectForeign(_:)``).
    var expectedForeign: [JobID: ExpectedForeign] = [:]
    /// Workers owed a wake-up, in the order they started waiting.
    var waiting: Deque<WorkerID> = []
    /// The mapping of monotonic instants to Unix time, for records shown to people.
    package let clock: MonotonicClock

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
    package init(model: ConcurrencyModel, configuration: Configuration, clock: MonotonicClock) {
        self.model = model
        self.configuration = configuration
        self.queue = JobQueue(limit: configuration.maxQueue)
        self.table = JobTable(retainFinished: configuration.retainFinished)
        self.clock = clock
    }

    /// Jobs a shutdown left unfinished that stay queued in the journal for the next start.
    package internal(set) var keptForRestart = 0
}
