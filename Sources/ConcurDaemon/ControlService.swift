import ConcurCore
import ConcurProtocol
package import ConcurRuntime
package import Logging
import Synchronization
package import Varlink

/// `io.concur.Supervisor` over the Supervisor: decodes and checks each call, performs it, and
/// maps the pool's errors to the interface's typed errors.
///
/// Calls are answered on the connection's event loop; none of them waits for a job. Streaming
/// calls (`Submit`/`Generate` with `more`, `WatchJobs`) are fed by a ``JobWatchSink``.
package struct ControlService: VarlinkInterface {
    /// The supervisor served.
    package let supervisor: Supervisor
    /// Called after a successful resize (the daemon refreshes systemd's status line).
    let onChange: @Sendable () -> Void
    /// Where model switches are logged.
    let logger: Logger
    /// Computes the statistics that `WatchStats` streams, once for all watchers.
    let statsFeed: StatsFeed
    /// Re-reads the configuration for `Reload()`; nil when concurd has no way to.
    let reloader: Reloader?
    /// The daemon's shutdown, which `Shutdown()` raises; nil when the service runs without one.
    let shutdown: ShutdownEvent?
    /// The queue this node shares with others (`--store`): submits go there, not to a pool.
    let sharedQueue: (any SharedQueueNode)?
    /// Attempts a job queued in the shared queue gets when the workers running it die.
    let maxAttempts: Int
    /// Streams exec jobs' output to `Logs` callers.
    let logFeed = LogFeed()
    /// The memory the streams of finished jobs may hold for clients that do not keep up.
    let watchBudget = WatchBudget()
    /// Follows jobs in the shared queue for the calls that wait for them (with `sharedQueue`).
    let sharedJobFeed: SharedJobFeed?

    /// A service over `supervisor`; `onChange` runs after calls that change the pool's shape.
    package init(
        supervisor: Supervisor, logger: Logger = Logger(label: "concurd"), onChange: @escaping @Sendable () -> Void = {}
    ) {
        self.init(supervisor: supervisor, logger: logger, reloader: nil, shutdown: nil, onChange: onChange)
    }

    /// A service that also answers `Reload()` through `reloader` and `Shutdown()` through
    /// `shutdown`.
    init(
        supervisor: Supervisor, logger: Logger, reloader: Reloader?, shutdown: ShutdownEvent?,
        sharedQueue: (any SharedQueueNode)? = nil, maxAttempts: Int = 3, onChange: @escaping @Sendable () -> Void
    ) {
        self.sharedQueue = sharedQueue
        self.maxAttempts = maxAttempts
        self.reloader = reloader
        self.shutdown = shutdown
        self.supervisor = supervisor
        self.logger = logger
        self.onChange = onChange
        self.statsFeed = StatsFeed(supervisor: supervisor)
        self.sharedJobFeed = sharedQueue.map { SharedJobFeed(queue: $0, logger: logger) }
    }

    /// The interface name.
    package var name: String { SupervisorInterface.name }
    /// The interface definition text.
    package var definition: String { SupervisorInterface.definition }

    /// Nanoseconds a `Stats` reply may be reused for the next caller: calls in a burst share
    /// one reading of the pool and /proc.
    static let statsReuseWithin: UInt64 = 2_000_000

    /// The most job ids one `ListJobs` or `WatchJobs` call may name.
    static let maxIDsPerCall = 10_000
    /// The most jobs one `ListJobs` call returns.
    static let maxListLimit = 10_000

    /// Handles one call of the interface.
    package func handle(method: String, parameters: JSONObject, peer: VarlinkPeer, responder: VarlinkResponder) {
        guard let method = SupervisorInterface.Method(rawValue: method) else {
            responder.fail(.methodNotFound("\(name).\(method)"))
            return
        }
        do {
            switch method {
            case .submit: try submit(parameters, peer: peer, responder: responder)
            case .generate: try generate(parameters, peer: peer, responder: responder)
            case .status:
                var reader = ParameterReader(parameters)
                let pool = try anyPool(reader.poolName())
                try reader.finish()
                // The addressed pool is among every pool's: its JSON is built once for both.
                let statuses = supervisor.statuses()
                let pools = statuses.map { $0.json }
                let name = (pool ?? supervisor.pool).name.rawValue
                let status = statuses.firstIndex { $0.pool == name }.map { pools[$0] } ?? supervisor.status(of: pool).json
                responder.reply(["status": status, "pools": .array(pools)])
            case .stats:
                var reader = ParameterReader(parameters)
                let pool = try anyPool(reader.poolName())
                try reader.finish()
                // The frame the watchers share, if it is recent: a client calling Stats in a
                // loop costs a copy, not a reading of /proc each time.
                responder.reply(encoded: statsFeed.frame(of: pool, maxAge: Self.statsReuseWithin))
            case .resize: try resize(parameters, responder: responder)
            case .setModel: try setModel(parameters, responder: responder)
            case .listJobs: try listJobs(parameters, responder: responder)
            case .watchJobs: try watchJobs(parameters, peer: peer, responder: responder)
            case .watchStats: try watchStats(parameters, responder: responder)
            case .pause, .resume: try pause(method == .pause, parameters, responder: responder)
            case .reload: try reload(parameters, responder: responder)
            case .cancel: try cancel(parameters, peer: peer, responder: responder)
            case .shutdown: try shutdown(parameters, peer: peer, responder: responder)
            case .logs: try logs(parameters, responder: responder)
            case .clusterStatus: try clusterStatus(parameters, responder: responder)
            }
        } catch {
            responder.fail(error)
        }
    }

    private func submit(_ parameters: JSONObject, peer: VarlinkPeer, responder: VarlinkResponder) throws(VarlinkError) {
        var reader = ParameterReader(parameters)
        let jobs: [JobSpec] = try reader.required("jobs")
        let pool = try addressed(reader.poolName())
        try reader.finish()
        guard !jobs.isEmpty else { throw SupervisorError.invalidValue(parameter: "jobs", reason: "give at least one job") }
        guard jobs.count <= JobLimits.jobsPerSubmit else {
            throw SupervisorError.invalidValue(
                parameter: "jobs", reason: "at most \(JobLimits.jobsPerSubmit) jobs per Submit; split the batch or use Generate")
        }
        for (index, job) in jobs.enumerated() {
            if let directory = job.command?.directory, let problem = CommandRunner.problem(enteringDirectory: directory) {
                throw SupervisorError.invalidValue(parameter: "jobs[\(index)].cwd", reason: problem)
            }
        }
        try accept(
            jobs, to: pool, peer: peer, responder: responder, naming: { "jobs[\($0)].\($1)" },
            header: { ids in ["ids": .array(ids.map { $0.json })] })
    }

    private func generate(_ parameters: JSONObject, peer: VarlinkPeer, responder: VarlinkResponder) throws(VarlinkError) {
        let request = try WorkloadRequest(parameters: parameters)
        let pool = try addressed(request.pool)
        // Refuse a batch that cannot fit before generating it.
        let fits = pool.read { $0.intakeOpen && $0.acceptedWaiting + request.count <= $0.configuration.maxQueue }
        if !fits {
            let (open, limit, queued) = pool.read { ($0.intakeOpen, $0.configuration.maxQueue, $0.acceptedWaiting) }
            throw open ? SupervisorError.queueFull(limit: limit, queued: queued) : SupervisorError.shuttingDown
        }
        let seed = request.seed ?? WorkloadGenerator.randomSeed()
        let jobs = WorkloadGenerator.jobs(for: request, seed: seed)
        try accept(
            jobs, to: pool, peer: peer, responder: responder, naming: { $1 },
            header: { ids in
                [
                    "first": ids.lowerBound.json, "last": (ids.upperBound - 1).json, "count": ids.count.json,
                    "seed": Int64(bitPattern: seed).json,
                ]
            })
    }

    /// Queues `jobs` and replies with `header(ids)` once the journal holds them (the event loop
    /// does not wait: the reply is sent from the journal's thread after its commit); with
    /// `more`, then streams each job as it finishes (the watch starts atomically with the
    /// submit, so none is missed). A refused job's field is named by `naming(index, field)`.
    private func accept(
        _ jobs: [JobSpec], to pool: Pool, peer: VarlinkPeer, responder: VarlinkResponder, naming: (Int, String) -> String,
        header: @escaping @Sendable (Range<JobID>) -> JSONObject
    ) throws(VarlinkError) {
        if let sharedQueue {
            try share(jobs, to: pool, in: sharedQueue, responder: responder, naming: naming, header: header)
            return
        }
        let stream = responder.more ? makeStream(peer: peer, responder: responder) : nil
        let reply = SubmitReply { ids, watch, failure in
            if let failure {
                responder.fail(SupervisorError.journalUnavailable(reason: failure.reason))
                stream?.cancel()
                return
            }
            let fields = header(ids)
            guard let stream else {
                responder.reply(fields)
                return
            }
            // On the connection's event loop, in one step: a completion already queued there
            // must not see the stream started before this first reply has gone out.
            responder.enqueue {
                responder.reply(fields, continues: true)
                stream.start(watch: watch, in: pool, header: fields)
            }
        }
        do {
            let (ids, watch) = try mapSubmit(naming: naming) { () throws(SubmitError) in
                try supervisor.submit(jobs, to: pool, watch: stream?.sink) { failure in reply.durable(failure) }
            }
            reply.accepted(ids, watch: watch)
        } catch {
            stream?.cancel()
            throw error
        }
    }

    /// Queues `jobs` into the shared queue after the checks a pool's own intake makes, and
    /// replies from the store's thread once the transaction committed; a job that runs after
    /// one the queue does not hold is refused there. With `more`, each job's end follows, as
    /// the queue shows it (``SharedJobFeed``). Crash jobs are not kept (another host's daemon
    /// would take the crash).
    private func share(
        _ jobs: [JobSpec], to pool: Pool, in queue: any SharedQueueNode, responder: VarlinkResponder,
        naming: (Int, String) -> String,
        header: @escaping @Sendable (Range<JobID>) -> JSONObject
    ) throws(VarlinkError) {
        if responder.more && jobs.count > SharedJobFeed.maxJobs {
            throw SupervisorError.invalidValue(
                parameter: "more",
                reason:
                    "at most \(SharedJobFeed.maxJobs) jobs of a shared queue are followed by one call: submit fewer with --wait, or follow them with concurctl wait --all"
            )
        }
        let (allowExec, intakeOpen) = pool.read { ($0.configuration.allowExec, $0.intakeOpen) }
        let model = ConcurrencyModel.threads
        try mapSubmit(naming: naming) { () throws(SubmitError) in
            guard intakeOpen else { throw .shuttingDown }
            for (index, job) in jobs.enumerated() {
                if case .crash = job.kind {
                    throw .notKept(
                        index: index, field: "kind",
                        reason: "crash jobs are not queued in a shared store: the node that took one would go down")
                }
            }
            try JobAdmission.check(jobs, allowExec: allowExec, model: model) { MonotonicClock().unixTime(MonotonicClock.now()) }
        }
        let (name, feed) = (pool.name, sharedJobFeed)
        // The completion cannot call `naming`: the field of each job that may be refused, named now.
        let afterFields = jobs.contains { !$0.after.isEmpty } ? jobs.indices.map { naming($0, "after") } : []
        queue.enqueue(jobs, into: name, maxAttempts: maxAttempts) { result in
            switch result {
            case .success(let ids):
                let range = JobID(ids.lowerBound)..<JobID(ids.upperBound + 1)
                let fields = header(range)
                guard let feed, responder.more else { return responder.reply(fields) }
                // On the connection's context: the first reply goes out before any job's.
                responder.enqueue {
                    responder.reply(fields, continues: true)
                    feed.watch(range, header: fields, responder: responder)
                }
            case .failure(let failure) where failure.refusedAfter.map(afterFields.indices.contains) == true:
                responder.fail(
                    SupervisorError.invalidValue(parameter: afterFields[failure.refusedAfter ?? 0], reason: failure.message))
            case .failure(let failure):
                responder.fail(
                    SupervisorError.storeUnavailable(
                        reason:
                            "\(failure.message); the jobs were not queued, unless the connection closed while their commit was under way (then concurctl jobs shows them)"
                    ))
            }
        }
    }

    private func mapSubmit<T>(naming: (Int, String) -> String, _ body: () throws(SubmitError) -> T)
        throws(VarlinkError) -> T
    {
        do {
            return try body()
        } catch {
            switch error {
            case .shuttingDown: throw SupervisorError.shuttingDown
            case .queueFull(let limit, let queued): throw SupervisorError.queueFull(limit: limit, queued: queued)
            case .execDisabled: throw SupervisorError.execDisabled
            case .crashRefused(let model): throw SupervisorError.crashRefused(model: model)
            case .notDurable(let reason): throw SupervisorError.journalUnavailable(reason: reason)
            case .storeUnavailable(let reason, let inDoubt):
                throw SupervisorError.storeUnavailable(
                    reason: reason, inDoubt: inDoubt.map { Int64($0.lowerBound)...Int64($0.upperBound - 1) })
            case .notKept(let index, let field, let reason):
                throw SupervisorError.invalidValue(parameter: naming(index, field), reason: reason)
            case .badStartTime(let index, let reason):
                throw SupervisorError.invalidValue(
                    parameter: naming(index, "startAt"), reason: "\(reason); a job may start from now to 366 days ahead")
            case .unknownDependency(let index, let id) where id >= supervisor.ids.allocatedBelow:
                throw SupervisorError.invalidValue(
                    parameter: naming(index, "after"),
                    reason: "job \(id) was never submitted; a job runs only after jobs that exist")
            case .unknownDependency(let index, let id), .forgottenDependency(let index, let id):
                throw SupervisorError.invalidValue(
                    parameter: naming(index, "after"),
                    reason:
                        "job \(id) ended so long ago that its record is no longer kept (--retain-jobs, retain_jobs), so how it ended is not known"
                )
            }
        }
    }

    private func resize(_ parameters: JSONObject, responder: VarlinkResponder) throws(VarlinkError) {
        var reader = ParameterReader(parameters)
        let workers: Int = try reader.required("workers")
        let pool = try addressed(reader.poolName())
        try reader.finish()
        do {
            let previous = try pool.resize(to: workers)
            onChange()
            responder.reply(["workers": workers.json, "previous": previous.json])
        } catch {
            switch error {
            case .shuttingDown: throw SupervisorError.shuttingDown
            case .invalidWorkers(let min, let max): throw SupervisorError.invalidWorkers(min: min, max: max)
            }
        }
    }

    private func setModel(_ parameters: JSONObject, responder: VarlinkResponder) throws(VarlinkError) {
        var reader = ParameterReader(parameters)
        let model: ConcurrencyModel = try reader.required("model")
        let preempt: Bool = try reader.optional("preempt") ?? false
        let pool = try addressed(reader.poolName())
        try reader.finish()
        let named = pool.name == .default ? "" : "pool \(pool.name): "
        let start = MonotonicClock.now()
        let onChange = onChange
        let logger = logger
        do {
            // The reply waits for the new model to serve; the event loop does not.
            _ = try pool.setModel(model, preempt: preempt) { outcome in
                let seconds = Double(MonotonicClock.now() - start) / 1e9
                switch outcome {
                case .serving(let record):
                    logger.info(
                        "\(named)model: \(record.from.rawValue) -> \(model.rawValue)\(preempt ? " (preempting)" : ""), serving after \(formatDuration(seconds))"
                    )
                case .failed(let reason): logger.error("\(named)the switch to the \(model.rawValue) model failed: \(reason)")
                case .superseded(let other):
                    logger.info("the switch to \(model.rawValue) was replaced by one to \(other.rawValue)")
                case .unchanged, .shuttingDown: break
                }
                responder.enqueue {
                    switch outcome {
                    case .serving(let record):
                        responder.reply([
                            "model": model.json, "previous": record.from.json, "changed": true, "servingAfter": seconds.json,
                        ])
                    case .unchanged:
                        responder.reply(["model": model.json, "previous": model.json, "changed": false, "servingAfter": 0.0])
                    case .superseded(let other):
                        responder.fail(SupervisorError.switchSuperseded(by: other))
                    case .failed(let reason):
                        responder.fail(SupervisorError.modelUnavailable(model: model, reason: reason))
                    case .shuttingDown:
                        responder.fail(SupervisorError.shuttingDown)
                    }
                    onChange()
                }
            }
            onChange()
        } catch {
            switch error {
            case .shuttingDown: throw SupervisorError.shuttingDown
            case .unavailable(let model, let reason): throw SupervisorError.modelUnavailable(model: model, reason: reason)
            }
        }
    }

    private func listJobs(_ parameters: JSONObject, responder: VarlinkResponder) throws(VarlinkError) {
        var reader = ParameterReader(parameters)
        let ids: [UInt64]? = try reader.optional("ids")
        let state: JobState? = try reader.optional("state")
        let limit: Int = try reader.optional("limit") ?? 100
        let only = try anyPool(reader.poolName(), given: parameters["pool"] != nil)
        try reader.finish()
        guard (1...Self.maxListLimit).contains(limit) else {
            throw SupervisorError.invalidValue(parameter: "limit", reason: "limit must be between 1 and \(Self.maxListLimit)")
        }
        let selection: JobListReply.Selection
        if let ids, !ids.isEmpty {
            guard ids.count <= Self.maxIDsPerCall else {
                throw SupervisorError.invalidValue(parameter: "ids", reason: "at most \(Self.maxIDsPerCall) ids per call")
            }
            let pools = only.map { [$0] } ?? supervisor.pools
            selection = .ids(ids, state: state)
            // In a shared queue, the ids no pool here holds are read from the queue.
            if let sharedQueue, JobListReply.firstUnknown(of: ids, in: pools) != nil {
                let foreign = JobListReply.notHeld(ids, in: pools)
                sharedQueue.readJobs(foreign) { result in
                    responder.enqueue {
                        switch result {
                        case .failure(let failure): responder.fail(SupervisorError.storeUnavailable(reason: failure.message))
                        case .success(let jobs):
                            let fetched = Dictionary(jobs.map { ($0.id, $0) }) { first, _ in first }
                            let inPool = fetched.filter { only == nil || $0.value.pool == only?.name.rawValue }
                            if let missing = foreign.first(where: { inPool[$0] == nil }) {
                                return responder.fail(SupervisorError.noSuchJob(missing))
                            }
                            JobListReply(
                                pools: pools, selection: selection, responder: responder, fetched: inPool,
                                node: sharedQueue.name
                            ).send()
                        }
                    }
                }
                return
            }
            if let unknown = JobListReply.firstUnknown(of: ids, in: pools) { throw SupervisorError.noSuchJob(unknown) }
        } else if let sharedQueue {
            // The queue's jobs, wherever they ran; those a pool here holds as it holds them.
            sharedQueue.readRecentJobs(pool: only?.name.rawValue, state: state, limit: limit) { result in
                responder.enqueue { [supervisor] in
                    switch result {
                    case .failure(let failure): responder.fail(SupervisorError.storeUnavailable(reason: failure.message))
                    case .success(let jobs):
                        let pools = only.map { [$0] } ?? supervisor.pools
                        let foreign = Set(JobListReply.notHeld(jobs.map(\.id), in: pools))
                        let fetched = Dictionary(
                            jobs.filter { foreign.contains($0.id) }.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
                        JobListReply(
                            pools: pools, selection: .ids(jobs.map(\.id), state: state), responder: responder,
                            fetched: fetched, node: sharedQueue.name
                        ).send()
                    }
                }
            }
            return
        } else {
            selection = .recent(state: state, limit: limit)
        }
        JobListReply(
            pools: only.map { [$0] } ?? supervisor.pools, selection: selection, responder: responder, node: sharedQueue?.name
        ).send()
    }

    private func pause(_ pause: Bool, _ parameters: JSONObject, responder: VarlinkResponder) throws(VarlinkError) {
        var reader = ParameterReader(parameters)
        let pool = try addressed(reader.poolName())
        try reader.finish()
        guard pool.read({ $0.intakeOpen }) else { throw SupervisorError.shuttingDown }
        let changed = pool.setPaused(pause)
        let named = pool.name == .default ? "" : "pool \(pool.name) "
        if changed { logger.notice("\(named)\(pause ? "paused: workers take no new jobs" : "resumed")") }
        onChange()
        responder.reply(["changed": .bool(changed)])
    }

    private func reload(_ parameters: JSONObject, responder: VarlinkResponder) throws(VarlinkError) {
        try ParameterReader(parameters).finish()
        guard let reloader else {
            throw SupervisorError.invalidConfiguration(
                reason: "concurd was started without a configuration it can read again; restart it instead")
        }
        guard supervisor.pool.read({ $0.intakeOpen }) else { throw SupervisorError.shuttingDown }
        // Off the event loop: a reload may wait for a new model to serve.
        do {
            try OSThread.start(name: "concur-reload") {
                let result = Result { () throws(ConfigurationError) in try reloader.reload() }
                responder.enqueue {
                    switch result {
                    case .success(let outcome):
                        responder.reply([
                            "applied": .array(outcome.applied.map(JSON.string)),
                            "restartNeeded": .array(outcome.needRestart.map(JSON.string)),
                        ])
                    case .failure(let error):
                        responder.fail(SupervisorError.invalidConfiguration(reason: error.message))
                    }
                }
            }
        } catch {
            throw SupervisorError.invalidConfiguration(reason: "cannot start the reload: \(error)")
        }
    }

    private func cancel(_ parameters: JSONObject, peer: VarlinkPeer, responder: VarlinkResponder) throws(VarlinkError) {
        var reader = ParameterReader(parameters)
        let ids: [UInt64] = try reader.optional("ids") ?? []
        let queued: Bool = try reader.optional("queued") ?? false
        let named = try reader.poolName()
        try reader.finish()
        if named != nil && !ids.isEmpty {
            throw SupervisorError.invalidValue(
                parameter: "pool", reason: "ids name jobs in every pool; give pool with queued only")
        }
        if queued && !ids.isEmpty {
            throw SupervisorError.invalidValue(parameter: "queued", reason: "give ids or queued, not both")
        }
        if !queued && ids.isEmpty {
            throw SupervisorError.invalidValue(parameter: "ids", reason: "give the ids of the jobs to cancel, or queued: true")
        }
        guard ids.count <= Self.maxIDsPerCall else {
            throw SupervisorError.invalidValue(parameter: "ids", reason: "at most \(Self.maxIDsPerCall) ids per call")
        }
        let reason = "cancelled by uid \(peer.uid)"
        // In a shared queue, the jobs no pool here knows (and with queued, those waiting in the
        // queue) are the queue's: cancelled there first (ids all or none), then the ones here.
        let selection: SharedCancelSelection
        let here: @Sendable () throws(VarlinkError) -> (CancelOutcome, [Pool])
        if queued {
            let pool = try anyPool(named)!
            selection = .queued(pool.name)
            here = { (pool.cancelQueued(reason: reason), [pool]) }
        } else {
            let foreign = sharedQueue == nil ? [] : ids.filter { supervisor.pool(holding: $0) == nil }
            let local = ids.filter { !foreign.contains($0) }
            selection = .ids(foreign)
            if !foreign.isEmpty {
                // All or none: the ids here are checked before the queue cancels its own.
                for id in local {
                    if let job = supervisor.pool(holding: id)?.read({ $0.job(id) }), job.state.isFinal {
                        throw SupervisorError.jobFinished(id, state: job.state)
                    }
                }
            }
            here = { [self] () throws(VarlinkError) in
                guard !foreign.isEmpty else { return try cancelHere(local, reason: reason) }
                // After the queue's part: a job here that ended since the check is left out.
                var remaining = local
                while !remaining.isEmpty {
                    do throws(CancelError) {
                        return try self.cancel(remaining, reason: reason)
                    } catch {
                        switch error {
                        case .alreadyFinished(let id, _), .noSuchJob(let id): remaining.removeAll { $0 == id }
                        }
                    }
                }
                return (CancelOutcome(), [])
            }
        }
        guard let sharedQueue, selection != .ids([]) else {
            let (outcome, pools) = try here()
            return finishCancel(outcome, in: pools, reason: reason, peer: peer, responder: responder)
        }
        sharedQueue.cancelShared(selection, reason: reason) { result in
            responder.enqueue {
                do throws(VarlinkError) {
                    switch result {
                    case .failure(let failure): throw SupervisorError.storeUnavailable(reason: failure.message)
                    case .success(.unknown(let id)): throw SupervisorError.noSuchJob(id)
                    case .success(.finished(let id, let state)): throw SupervisorError.jobFinished(id, state: state)
                    case .success(.cancelled(let cancelled, let stopping)):
                        var (outcome, pools) = try here()
                        outcome.cancelled += cancelled
                        outcome.stopping += stopping
                        self.finishCancel(outcome, in: pools, reason: reason, peer: peer, responder: responder)
                    }
                } catch {
                    responder.fail(error)
                }
            }
        }
    }

    /// Cancels `ids` of this daemon's pools, as ``cancel(_:reason:)`` does, with its refusals
    /// as Varlink errors.
    private func cancelHere(_ ids: [JobID], reason: String) throws(VarlinkError) -> (CancelOutcome, [Pool]) {
        do {
            return try cancel(ids, reason: reason)
        } catch {
            switch error {
            case .noSuchJob(let id): throw SupervisorError.noSuchJob(id)
            case .alreadyFinished(let id, let state): throw SupervisorError.jobFinished(id, state: state)
            }
        }
    }

    /// Logs a cancel and replies once `pools` recorded it.
    private func finishCancel(
        _ outcome: CancelOutcome, in pools: [Pool], reason: String, peer: VarlinkPeer, responder: VarlinkResponder
    ) {
        let total = outcome.cancelled.count + outcome.stopping.count
        if total > 0 {
            logger.notice(
                "\(reason) (pid \(peer.pid)): \(total) job\(total == 1 ? "" : "s"), \(outcome.stopping.count) of them running")
        }
        // The reply waits (off the event loop) until the journal holds the cancels: a job told
        // cancelled is not run again after a crash.
        Self.whenRecorded(in: pools) { failure in
            responder.enqueue {
                if let failure {
                    responder.fail(
                        SupervisorError.journalUnavailable(
                            reason:
                                "\(failure.reason); the jobs were cancelled, but if concurd stops before the journal records again the running ones may run again"
                        ))
                    return
                }
                responder.reply([
                    "cancelled": .array(outcome.cancelled.map(\.json)), "stopping": .array(outcome.stopping.map(\.json)),
                ])
            }
        }
    }

    private func clusterStatus(_ parameters: JSONObject, responder: VarlinkResponder) throws(VarlinkError) {
        try ParameterReader(parameters).finish()
        guard let sharedQueue else { throw SupervisorError.notShared }
        sharedQueue.readCluster { result in
            responder.enqueue {
                switch result {
                case .success(let status): responder.reply(status.object)
                case .failure(let failure): responder.fail(SupervisorError.storeUnavailable(reason: failure.message))
                }
            }
        }
    }

    private func logs(_ parameters: JSONObject, responder: VarlinkResponder) throws(VarlinkError) {
        var reader = ParameterReader(parameters)
        let id: UInt64 = try reader.required("id")
        let stream: LogStream? = try reader.optional("stream")
        let follow: Bool = try reader.optional("follow") ?? false
        try reader.finish()
        guard responder.more else { throw VarlinkError.expectedMore }
        guard let pool = supervisor.pool(holding: id), let job = pool.job(id) else { throw SupervisorError.noSuchJob(id) }
        guard job.kind.isExec else {
            throw SupervisorError.invalidValue(
                parameter: "id", reason: "job \(id) is a \(job.kind.name) job: only exec jobs have output")
        }
        guard let directory = CommandOutput.directory else {
            responder.reply(["end": true])
            return
        }
        logFeed.start(
            id: id, streams: stream.map { [$0.rawValue] } ?? ["stdout", "stderr"], follow: follow, pool: pool,
            directory: directory, responder: responder)
    }

    private func shutdown(_ parameters: JSONObject, peer: VarlinkPeer, responder: VarlinkResponder) throws(VarlinkError) {
        var reader = ParameterReader(parameters)
        let mode: ShutdownMode = try reader.optional("mode") ?? .drain
        try reader.finish()
        guard let shutdown else {
            throw VarlinkError.methodNotImplemented(
                "\(SupervisorInterface.method(.shutdown)) (this service has no daemon to stop)")
        }
        let (level, changed) = shutdown.raise(to: mode == .drain ? .drain : .cancel)
        if changed {
            Daemon.shutdownReached(
                level, cause: "Shutdown(\(mode.rawValue)) by uid \(peer.uid) (pid \(peer.pid))",
                again: "call Shutdown with mode interrupt", supervisor: supervisor, logger: logger)
        }
        responder.reply(["mode": (level == .cancel ? ShutdownMode.interrupt : .drain).json, "changed": .bool(changed)])
    }

    /// The shortest and longest interval of `WatchStats`, in seconds.
    static let watchIntervals = 0.05...60.0

    private func watchStats(_ parameters: JSONObject, responder: VarlinkResponder) throws(VarlinkError) {
        var reader = ParameterReader(parameters)
        let interval: Double = try reader.optional("interval") ?? 1
        let pool = try anyPool(reader.poolName())
        try reader.finish()
        guard responder.more else { throw VarlinkError.expectedMore }
        guard Self.watchIntervals.contains(interval) else {
            throw SupervisorError.invalidValue(
                parameter: "interval",
                reason:
                    "interval must be between \(formatDecimal(Self.watchIntervals.lowerBound)) and \(formatDecimal(Self.watchIntervals.upperBound)) seconds"
            )
        }
        statsFeed.watch(pool!, every: interval, responder: responder)
    }

    private func watchJobs(_ parameters: JSONObject, peer: VarlinkPeer, responder: VarlinkResponder) throws(VarlinkError) {
        var reader = ParameterReader(parameters)
        let ids: [UInt64] = try reader.optional("ids") ?? []
        let unfinished: Bool = try reader.optional("unfinished") ?? false
        let events: Bool = try reader.optional("events") ?? (ids.isEmpty && !unfinished)
        let named = try reader.poolName()
        try reader.finish()
        guard responder.more else { throw VarlinkError.expectedMore }
        guard ids.count <= Self.maxIDsPerCall else {
            throw SupervisorError.invalidValue(parameter: "ids", reason: "at most \(Self.maxIDsPerCall) ids per call")
        }
        if unfinished && !ids.isEmpty {
            throw SupervisorError.invalidValue(parameter: "unfinished", reason: "give ids or unfinished, not both")
        }
        if unfinished && events {
            throw SupervisorError.invalidValue(parameter: "events", reason: "a watch of the unfinished jobs carries no events")
        }
        if named != nil && !ids.isEmpty {
            throw SupervisorError.invalidValue(parameter: "pool", reason: "ids name jobs in every pool; give pool without ids")
        }
        if let sharedQueue, let feed = sharedJobFeed, unfinished || !ids.isEmpty {
            return watchShared(ids: ids, unfinished: unfinished, in: named, queue: sharedQueue, feed: feed, responder: responder)
        }
        // The pools watched, each with its share of the ids: the one given, or every pool.
        let watched: [(pool: Pool, ids: [JobID])]
        if !ids.isEmpty {
            watched = try Self.grouped(ids, in: supervisor.pools)
        } else if let named {
            watched = [(try anyPool(named)!, [])]
        } else {
            watched = supervisor.pools.map { ($0, []) }
        }
        // The stream of every job never ends: a client that falls behind it is cut off.
        let stream = makeStream(peer: peer, responder: responder, summarizes: unfinished || !ids.isEmpty)
        if unfinished {
            stream.sink.expectEnds(.max)
            let watches = watched.compactMap { pool, _ in pool.watchUnfinished(sink: stream.sink).map { (pool, $0) } }
            guard !watches.isEmpty else {
                // Nothing to wait for: one empty reply ends the call.
                stream.cancel()
                responder.reply([:])
                return
            }
            stream.sink.expectEnds(watches.count)
            stream.start(watches: watches, header: [:])
            return
        }
        stream.sink.expectEnds(ids.isEmpty ? .max : watched.count)
        var watches: [(pool: Pool, id: Int)] = []
        do {
            for (pool, share) in watched {
                watches.append((pool, try pool.watch(ids: share, events: events, sink: stream.sink)))
            }
            stream.start(watches: watches, header: [:])
        } catch {
            for watch in watches { watch.pool.removeWatch(watch.id) }
            stream.cancel()
            throw SupervisorError.noSuchJob(error.id)
        }
    }
}

extension ControlService {
    /// `WatchJobs` of `ids`, or (`unfinished`) of every job not ended of `pool` (nil: every
    /// pool), in a shared queue: the jobs are read from the queue (an unknown id fails the call
    /// with `NoSuchJob`) and followed there, wherever they run.
    fileprivate func watchShared(
        ids: [JobID], unfinished: Bool, in pool: PoolName?, queue: any SharedQueueNode, feed: SharedJobFeed,
        responder: VarlinkResponder
    ) {
        let unavailable = { @Sendable (failure: SharedQueueFailure) in
            responder.fail(SupervisorError.storeUnavailable(reason: failure.message))
        }
        guard unfinished else {
            queue.readJobs(ids) { result in
                switch result {
                case .failure(let failure): unavailable(failure)
                case .success(let jobs):
                    let held = Set(jobs.map(\.id))
                    if let missing = ids.first(where: { !held.contains($0) }) {
                        return responder.fail(SupervisorError.noSuchJob(missing))
                    }
                    feed.watch(ids, header: [:], responder: responder)
                }
            }
            return
        }
        let most = SharedJobFeed.maxJobs
        queue.readUnfinishedIDs(pool: pool?.rawValue, limit: most + 1) { result in
            switch result {
            case .failure(let failure): unavailable(failure)
            case .success(let unfinished) where unfinished.count > most:
                responder.fail(
                    SupervisorError.invalidValue(
                        parameter: "unfinished",
                        reason:
                            "more than \(most) jobs of the shared queue have not ended; one call follows at most \(most): wait for one pool's (wait --all --pool NAME), or for ranges of ids (wait 1-10000)"
                    ))
            case .success(let unfinished): feed.watch(unfinished, header: [:], responder: responder)
            }
        }
    }

    /// A stream of finished jobs for `peer`'s call, within the shared watch budget; a client cut
    /// off for falling behind is logged.
    /// `summarizes` for a stream that ends (see ``JobStream``).
    fileprivate func makeStream(peer: VarlinkPeer, responder: VarlinkResponder, summarizes: Bool = true) -> JobStream {
        let logger = logger
        return JobStream(responder: responder, budget: watchBudget, summarizes: summarizes) { reason in
            logger.warning("dropping a watcher of jobs: \(reason)", metadata: ["peer": "\(peer)"])
        }
    }
}

// Pools: which one a call addresses.
extension ControlService {
    /// The pool a call that changes something addresses (nil: the default): one that takes work.
    fileprivate func addressed(_ name: PoolName?) throws(VarlinkError) -> Pool {
        do {
            return try supervisor.pool(named: name)
        } catch {
            throw Self.varlinkError(error)
        }
    }

    /// The pool a read or a cancel addresses (nil: the default), removed ones included; nil
    /// when `given` is false: every pool.
    fileprivate func anyPool(_ name: PoolName?, given: Bool = true) throws(VarlinkError) -> Pool? {
        guard given else { return nil }
        do {
            return try supervisor.anyPool(named: name)
        } catch {
            throw Self.varlinkError(error)
        }
    }

    static func varlinkError(_ error: UnknownPoolError) -> VarlinkError {
        SupervisorError.unknownPool(error.name.rawValue, pools: error.pools.map(\.rawValue), removed: error.removed)
    }

    /// `ids` by the pool that holds each, in the pools' order; an unknown id is `NoSuchJob`.
    fileprivate static func grouped(_ ids: [JobID], in pools: [Pool]) throws(VarlinkError) -> [(pool: Pool, ids: [JobID])] {
        if pools.count == 1 { return [(pools[0], ids)] }
        var shares = Array(repeating: [JobID](), count: pools.count)
        for id in ids {
            guard let index = pools.firstIndex(where: { pool in pool.read { $0.holds(id) } }) else {
                throw SupervisorError.noSuchJob(id)
            }
            shares[index].append(id)
        }
        return zip(pools, shares).filter { !$0.1.isEmpty }.map { ($0, $1) }
    }

    /// Cancels jobs of any pools: every id is checked first (an unknown or finished one cancels
    /// nothing), then each pool cancels its own. A job that ends between the check and its
    /// pool's turn (the pools are not locked together) is left out of the reply once a pool
    /// before it has cancelled: what was cancelled is never reported as refused. Returns the
    /// pools touched.
    fileprivate func cancel(_ ids: [JobID], reason: String) throws(CancelError) -> (CancelOutcome, [Pool]) {
        let pools = supervisor.pools
        if pools.count == 1 { return (try supervisor.pool.cancel(ids, reason: reason), pools) }
        var byPool: [ObjectIdentifier: (Pool, [JobID])] = [:]
        for id in ids {
            guard let pool = supervisor.pool(holding: id) else { throw .noSuchJob(id) }
            byPool[ObjectIdentifier(pool), default: (pool, [])].1.append(id)
        }
        let touched = pools.filter { byPool[ObjectIdentifier($0)] != nil }
        for pool in touched {
            try pool.read { state throws(CancelError) in
                for id in byPool[ObjectIdentifier(pool)]!.1 {
                    if let job = state.job(id), job.state.isFinal { throw .alreadyFinished(id, job.state) }
                }
            }
        }
        var outcome = CancelOutcome()
        for (index, pool) in touched.enumerated() {
            var share = byPool[ObjectIdentifier(pool)]!.1
            while !share.isEmpty {
                do {
                    let part = try pool.cancel(share, reason: reason)
                    outcome.cancelled += part.cancelled
                    outcome.stopping += part.stopping
                    break
                } catch .alreadyFinished(let id, _) where index > 0 {
                    share.removeAll { $0 == id }
                }
            }
        }
        return (outcome, touched)
    }

    /// Calls `body` once every pool of `pools` has recorded what it changed so far, with the
    /// first failure if one could not.
    fileprivate static func whenRecorded(in pools: [Pool], _ body: @escaping @Sendable (JournalFailure?) -> Void) {
        guard pools.count > 1 else {
            (pools.first ?? nil).map { $0.whenRecorded(body) } ?? body(nil)
            return
        }
        let pending = Mutex((left: pools.count, failure: JournalFailure?.none))
        for pool in pools {
            pool.whenRecorded { failure in
                let done = pending.withLock { state -> JournalFailure?? in
                    state.left -= 1
                    if state.failure == nil { state.failure = failure }
                    return state.left == 0 ? .some(state.failure) : nil
                }
                if let done { body(done) }
            }
        }
    }
}
