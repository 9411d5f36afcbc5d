import ConcurCore
import ConcurJournal
import ConcurProtocol
import ConcurRuntime
import Glibc
import Logging
import NIOPosix
import StoreAccess
import Synchronization
import Systemd
import Varlink
import VarlinkServer

/// One run of concurd, from start to a drained exit, as an ordered list of parts (``parts``).
///
/// Order matters: signals are taken first, then the workers start, then the socket is bound,
/// and only then READY=1 is sent; at shutdown the workers are drained before the socket closes,
/// so `status` keeps answering meanwhile. What parts share is kept here; each is set by the
/// part that makes it and read only by later ones, all on the thread that runs ``serve()``
/// (the signal thread reads the supervisor and the reloader through their mutexes).
final class DaemonRun {
    let configuration: DaemonConfiguration
    let logger: Logger
    let logLevel: LogLevelControl
    let reloadConfiguration: (@Sendable () throws(ConfigurationError) -> DaemonConfiguration)?
    let notifier = SystemdNotifier()
    let shutdown = ShutdownEvent()
    let live = LiveParts()

    private var socketPath = ""
    private var forkServer: ForkServer?
    /// Each pool's SQLite journal, unless ephemeral: the default pool's in the state directory,
    /// the others' in `pools/NAME` there (those of pools no longer configured included).
    private var supervisor: Supervisor!
    private var group: MultiThreadedEventLoopGroup!
    private var reloader: Reloader?
    private var control: ControlService!
    private var service: VarlinkService!
    private var outcome: Supervisor.ShutdownOutcome?

    init(
        configuration: DaemonConfiguration, logger: Logger, logLevel: LogLevelControl,
        reloadConfiguration: (@Sendable () throws(ConfigurationError) -> DaemonConfiguration)?
    ) {
        self.configuration = configuration
        self.logger = logger
        self.logLevel = logLevel
        self.reloadConfiguration = reloadConfiguration
    }

    /// The parts, in the order they start.
    var parts: [DaemonPart] {
        [
            DaemonPart(name: "resolve the control socket's path", start: resolveSocketPath),
            DaemonPart(name: "open the execution log", start: openExecutionLog),
            DaemonPart(name: "take the signals", start: takeSignals),
            DaemonPart(name: "enable the command guard", start: startCommandGuard),
            DaemonPart(name: "set up the output directory", start: setUpOutput),
            DaemonPart(name: "start the forkserver", start: startForkServer),
            DaemonPart(name: "read the job journal", start: readJournal),
            DaemonPart(name: "create the pool and the journal's writer", start: createPool),
            DaemonPart(name: "start the event loop", start: startEventLoop),
            DaemonPart(name: "start the workers", start: startWorkers),
            DaemonPart(name: "report how the run ended", start: reportOutcome),
            DaemonPart(name: "make the control service", start: makeControlService),
            DaemonPart(name: "open the control socket", start: openControlSocket),
            DaemonPart(name: "announce readiness and start the supervisor loop", start: announceReady),
        ]
    }

    /// Starts every part, serves until told to stop, drains, stops the parts in reverse; the
    /// process exit status.
    func serve() -> Int32 {
        var started = StartedParts()
        if let failure = started.start(parts) {
            logger.critical("\(failure)")
            return 1
        }
        outcome = drain()
        started.stop()
        switch outcome {
        case .drained?: return 0
        case .cancelled?, .abandoned?, nil: return Daemon.exitInterrupted
        }
    }

    /// Keeps `Status` in the systemd status line, sending it only when it changed.
    var refreshStatus: @Sendable () -> Void {
        { [live, notifier] in
            guard let supervisor = live.supervisor.withLock({ $0 }) else { return }
            let line = supervisor.statusLine()
            let changed = live.statusLine.withLock { previous in
                defer { previous = line }
                return previous != line
            }
            if changed { notifier.status(line) }
        }
    }

    // MARK: The parts

    private func resolveSocketPath() throws(DaemonStartFailure) -> (() -> Void)? {
        do {
            socketPath = try SocketPath.resolve(explicit: configuration.socket, uid: getuid()) {
                getenv($0).map { String(cString: $0) }
            }
        } catch {
            throw DaemonStartFailure(message: "\(error)")
        }
        return nil
    }

    /// Before the models start (child workers get the path on their command line) and before
    /// the forkserver starts (its helper and workers open it again).
    private func openExecutionLog() throws(DaemonStartFailure) -> (() -> Void)? {
        guard let path = configuration.executionLog else { return nil }
        do {
            try ExecutionLog.open(path: path)
        } catch {
            throw DaemonStartFailure(message: "\(error)")
        }
        return nil
    }

    /// The guard that kills exec jobs' commands if the daemon dies, started with the first
    /// command (a daemon that runs none has none); without it the daemon runs on, and says
    /// what that means.
    private func startCommandGuard() throws(DaemonStartFailure) -> (() -> Void)? {
        let logger = logger
        CommandGuard.enable { reason in
            logger.warning(
                "the command guard could not start (\(reason)): if concurd is killed, commands of exec jobs run by threads or tasks workers live on"
            )
        }
        return { CommandGuard.stop() }
    }

    /// Signals are blocked before the first thread starts (the models start threads); until
    /// the pool exists, only a stop is acted on.
    private func takeSignals() throws(DaemonStartFailure) -> (() -> Void)? {
        let (live, shutdown, logger) = (live, shutdown, logger)
        let testHooks = configuration.testHooks
        let refreshStatus = refreshStatus
        let signals = SignalWatcher(signals: [SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2]) {
            number in
            guard let supervisor = live.supervisor.withLock({ $0 }) else {
                if [SIGTERM, SIGINT, SIGQUIT].contains(number) { shutdown.escalate() }
                return
            }
            switch number {
            case SIGHUP:
                guard let reloader = live.reloader.withLock({ $0 }) else {
                    logger.warning("SIGHUP: concurd was started without a way to read its configuration again; nothing changed")
                    return
                }
                // Off the signal thread: a reload may wait for a new model to serve.
                try? OSThread.start(name: "concur-reload") { _ = try? reloader.reload() }
            case SIGUSR2 where testHooks:
                logger.critical("SIGUSR2 with test hooks on: the supervisor loop hangs now (the watchdog should act)")
                supervisor.hangLoop()
            default:
                Daemon.handle(
                    signal: number, supervisor: supervisor, shutdown: shutdown, logger: logger, refreshStatus: refreshStatus)
            }
        }
        return { signals.cancel() }
    }

    /// The forkserver's helper is a process of its own (single-threaded, so it may fork),
    /// spawned from a thread started after the signals were blocked.
    /// Exec jobs' output: `output` in the state directory, or for an ephemeral daemon a private
    /// folder in /tmp removed at the stop. Before the forkserver and the workers: they get it on
    /// their command line.
    private func setUpOutput() throws(DaemonStartFailure) -> (() -> Void)? {
        var directory: String
        var temporary = false
        if configuration.ephemeral {
            var template = Array("/tmp/concurd-output-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else {
                throw DaemonStartFailure(
                    message: "cannot create a folder for exec jobs' output in /tmp: \(String(cString: strerror(errno)))")
            }
            directory = String(cString: made)
            temporary = true
        } else {
            // The journal makes the state directory; the output folder goes in it.
            directory = stateDirectory + "/output"
        }
        do {
            try CommandOutput.configure(directory: directory, maxBytes: configuration.maxOutput)
        } catch {
            throw DaemonStartFailure(message: "\(error)")
        }
        return temporary ? { OutputJanitor.removeAll(in: directory) } : nil
    }

    private func startForkServer() throws(DaemonStartFailure) -> (() -> Void)? {
        guard configuration.startMethod == .forkserver else { return nil }
        do {
            let logger = logger
            let started = try ForkServer.start(nice: configuration.workerNice) { logger.warning("\($0)") }
            forkServer = started
            logger.info("forkserver started", metadata: ["forkserver_pid": "\(started.helperPID ?? 0)"])
            return { started.stop() }
        } catch {
            throw DaemonStartFailure(message: "cannot start the forkserver: \(error); use --start-method spawn")
        }
    }

    /// The journals are read before the pools exist: what they hold is put back first. A
    /// journal of a pool the configuration no longer names is read too: its unfinished jobs
    /// are kept and shown, and run once the pool is configured again.
    private func readJournal() throws(DaemonStartFailure) -> (() -> Void)? {
        if configuration.store != nil {
            try refuseStrandedJobs()
            return try joinStore()
        }
        if configuration.ephemeral {
            logger.notice("ephemeral: jobs are kept in memory only; a stop cancels queued jobs and a crash loses them")
            return nil
        }
        let directory = stateDirectory
        for name in journalPools(in: directory) {
            let started = MonotonicClock.now()
            do {
                let logger = logger
                let prefix = name == .default ? "" : "pool \(name): "
                let (opened, recovery) = try Self.openJournal(of: name, in: directory, configuration, logger: logger)
                live.journals.withLock { $0[name] = opened }
                let unconfigured =
                    configuration.supervisorPools.contains { $0.name == name }
                    ? ""
                    : "; pool \(name) is not configured: its unfinished jobs are kept, not run (add [pools.\(name)] back to run them, or concurctl cancel --queued --pool \(name))"
                logger.info(
                    "\(prefix)job journal \(opened.path): \(recovery.summary) (read in \(formatDuration(Double(MonotonicClock.now() - started) / 1e9)))\(unconfigured)",
                    metadata: ["in_flight": "\(recovery.inFlight)", "queued": "\(recovery.queued)", "pool": "\(name)"])
            } catch {
                for journal in live.journals.withLock({ $0.values }) { journal.close() }
                live.journals.withLock { $0 = [:] }
                throw DaemonStartFailure(message: name == .default ? "\(error)" : "pool \(name): \(error)")
            }
        }
        return nil
    }

    /// With `--store`, the journals of the state directory are not read: a start refuses to
    /// leave unfinished jobs in them behind without a word (a host moving to a shared queue
    /// with jobs still queued), and says how to finish or drop them.
    private func refuseStrandedJobs() throws(DaemonStartFailure) {
        let directory = stateDirectory
        var stranded: [(PoolName, Int)] = []
        for name in journalPools(in: directory) {
            let journal = Self.journalDirectory(of: name, in: directory)
            do {
                let count = try JobJournal.unfinishedJobs(in: journal)
                if count > 0 { stranded.append((name, count)) }
            } catch {
                throw DaemonStartFailure(message: "\(error)")
            }
        }
        guard !stranded.isEmpty else { return }
        let total = stranded.map(\.1).reduce(0, +)
        let pools = stranded.map { "\($0.1) in pool \($0.0)" }.joined(separator: ", ")
        throw DaemonStartFailure(
            message:
                "the job journal in \(directory) holds \(total) unfinished job\(total == 1 ? "" : "s") (\(pools)), which a node of a shared queue would never run: start concurd once without --store to finish them (or concurctl cancel --queued), or give this node another --state-directory"
        )
    }

    /// The state directory, as the configuration and the environment resolve it.
    private var stateDirectory: String {
        configuration.resolvedStateDirectory(uid: getuid()) { getenv($0).map { String(cString: $0) } }
    }

    /// The pools whose journals are read at start: the configured ones, and those with a
    /// journal in `directory`, by name.
    private func journalPools(in directory: String) -> [PoolName] {
        Set(configuration.supervisorPools.map(\.name)).union(Self.poolJournals(in: directory)).sorted()
    }

    /// With `--store`: this node joins the shared queue (connects, prepares the schema,
    /// registers, starts its lease) instead of reading a journal. Stopped after the pools'
    /// lanes, so it puts back what they still hold and marks the node stopped.
    private func joinStore() throws(DaemonStartFailure) -> (() -> Void)? {
        guard let url = configuration.store else { return nil }
        guard let join = SharedQueueSupport.join else {
            throw DaemonStartFailure(
                message: "this executable cannot join a shared store: run \(SharedQueueSupport.executableName)")
        }
        let node: any SharedQueueNode
        do {
            let address = try StoreAddress(parsing: url, defaultUser: Self.userName())
            var environment: [String: String] = [:]
            for key in ["PGPASSFILE", "HOME"] { environment[key] = getenv(key).map { String(cString: $0) } }
            let file = try PasswordFile.load(configured: configuration.storePasswordFile, environment: environment)
            node = try join(
                StoreNodeSettings(
                    address: address, password: file?.password(for: address), passwordFile: file?.path,
                    node: configuration.nodeName, leaseSeconds: configuration.leaseTimeout,
                    host: DaemonConfiguration().nodeName, pid: getpid(), version: Daemon.version), logger)
        } catch {
            throw DaemonStartFailure(message: "the job store: \(error)")
        }
        live.storeNode.withLock { $0 = node }
        return { node.close() }
    }

    /// The name of the user concurd runs as (the store's default user, as libpq's).
    private static func userName() -> String {
        guard let entry = getpwuid(geteuid()) else { return "\(geteuid())" }
        return String(
            decoding: UnsafeRawBufferPointer(start: entry.pointee.pw_name, count: strlen(entry.pointee.pw_name)), as: UTF8.self)
    }

    private static func openJournal(
        of name: PoolName, in directory: String, _ configuration: DaemonConfiguration, logger: Logger
    ) throws(JournalOpenError) -> (JobJournal, JobJournal.Recovery) {
        let prefix = name == .default ? "" : "pool \(name): "
        return try JobJournal.open(
            directory: journalDirectory(of: name, in: directory), sync: configuration.journalSync,
            maxAttempts: configuration.maxAttempts,
            retention: JobJournal.Retention(count: configuration.retainJobs, age: configuration.retainAge),
            clock: MonotonicClock(), onEvent: { Daemon.log($0, logger, prefix: prefix) })
    }

    /// What adds pool `name` for a reload: with a journal of its own unless ephemeral (or the
    /// one it kept, if a reload removed it or the configuration did not name it).
    private var addPool: @Sendable (PoolName, Supervisor.Configuration, DaemonConfiguration) throws -> Void {
        let (supervisor, live, logger, ephemeral) = (supervisor!, live, logger, configuration.ephemeral)
        let directory = stateDirectory
        let node = live.storeNode.withLock { $0 }
        return { name, pool, current in
            if let node {
                let lane = live.lane(of: node, for: name, allowExec: pool.limits.allowExec, current)
                let added = try supervisor.addPool(name, configuration: pool, store: lane)
                try lane.follow(added)
                return
            }
            if ephemeral || live.journals.withLock({ $0[name] }) != nil {
                try supervisor.addPool(name, configuration: pool, store: MemoryJobStore())
                return
            }
            let (journal, recovery) = try Self.openJournal(of: name, in: directory, current, logger: logger)
            logger.info("pool \(name): job journal \(journal.path): \(recovery.summary)")
            live.journals.withLock { $0[name] = journal }
            let added = try supervisor.addPool(name, configuration: pool, store: journal)
            try journal.follow(added)
        }
    }

    /// Where the journal of pool `name` lives in the state directory.
    static func journalDirectory(of name: PoolName, in directory: String) -> String {
        name == .default ? directory : directory + "/pools/" + name.rawValue
    }

    /// The pools that have a journal in the state directory, besides the default.
    static func poolJournals(in directory: String) -> [PoolName] {
        guard let folder = opendir(directory + "/pools") else { return [] }
        defer { closedir(folder) }
        var names: [PoolName] = []
        while let entry = readdir(folder) {
            let text = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let name = PoolName(text), name != .default { names.append(name) }
        }
        return names
    }

    /// The pools, with what their journals held; each journal's writer then follows its pool.
    /// Closing the journals comes after the drain: what finished is written, and what did not
    /// stays queued in them.
    private func createPool() throws(DaemonStartFailure) -> (() -> Void)? {
        let logger = logger
        let journals = live.journals.withLock { $0 }
        let configured = configuration.supervisorPools
        let node = live.storeNode.withLock { $0 }
        var lanes: [PoolName: any JobStore] = [:]
        if let node {
            for pool in configured {
                lanes[pool.name] = live.lane(
                    of: node, for: pool.name, allowExec: pool.configuration.limits.allowExec, configuration)
            }
        }
        /// A pool's own store: its lane of the shared queue, else its journal.
        func ownStore(_ name: PoolName) -> (any JobStore)? {
            if let lane = lanes[name] { return lane }
            if let journal = journals[name] { return journal }
            return nil
        }
        var setups: [Supervisor.PoolSetup] = []
        for pool in configured {
            setups.append(
                Supervisor.PoolSetup(
                    name: pool.name, configuration: pool.configuration, store: ownStore(pool.name) ?? MemoryJobStore()))
        }
        // A journal of a pool no longer configured: its jobs are kept and shown, none runs.
        for (name, journal) in journals where !configured.contains(where: { $0.name == name }) {
            setups.append(
                Supervisor.PoolSetup(name: name, configuration: configuration.supervisor, store: journal, removed: true))
        }
        let supervisor = Supervisor(
            pools: setups,
            models: WorkerModels.all(
                taskThreads: configuration.taskThreads, nice: configuration.workerNice, forkServer: forkServer),
            version: Daemon.version, onEvent: { logger.warning("\($0)") })
        self.supervisor = supervisor
        live.supervisor.withLock { $0 = supervisor }
        for pool in supervisor.pools {
            guard let store = ownStore(pool.name) else { continue }
            do {
                try store.follow(pool)
            } catch {
                throw DaemonStartFailure(message: "cannot start the job store's writer of pool \(pool.name): \(error)")
            }
        }
        let live = live
        let laneList = Array(lanes.values)
        return {
            for lane in laneList { lane.close() }
            for journal in live.journals.withLock({ $0.values }) { journal.close() }
        }
    }

    private func startEventLoop() throws(DaemonStartFailure) -> (() -> Void)? {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        return { try? group.syncShutdownGracefully() }
    }

    /// Workers first: once the socket accepts, the pool is running (READY=1 promises both).
    private func startWorkers() throws(DaemonStartFailure) -> (() -> Void)? {
        do {
            try supervisor.start(pools: configuration.supervisorPools.map { ($0.name, $0.configuration.workers) })
        } catch {
            throw DaemonStartFailure(message: "cannot start the workers: \(error)")
        }
        return nil
    }

    /// Nothing to start: its stop logs the totals and how the drain ended, once the socket has
    /// closed (after a failed start, nothing).
    private func reportOutcome() throws(DaemonStartFailure) -> (() -> Void)? {
        { [self] in
            guard let outcome else { return }
            let totals = supervisor.statuses().reduce(JobTotals()) { $0 + $1.totals }
            var summary = "\(totals.done) done, \(totals.failed) failed, \(totals.cancelled) cancelled"
            let kept = supervisor.keptForRestart
            if kept > 0, let failure = live.journals.withLock({ $0.values.lazy.compactMap(\.failure).first }) {
                summary += "; \(kept) unfinished jobs could not be kept for the next start as they stand: \(failure.reason)"
            } else if kept > 0 {
                summary += "; \(kept) unfinished kept queued in the journal for the next start"
            }
            switch outcome {
            case .drained:
                logger.info("stopped: every running job finished (\(summary))")
            case .cancelled:
                logger.warning("stopped: running jobs were interrupted (\(summary))")
            case .abandoned(let workers):
                logger.error("stopped with \(workers) worker(s) still busy after the grace period (\(summary))")
            }
        }
    }

    private func makeControlService() throws(DaemonStartFailure) -> (() -> Void)? {
        let reloader = reloadConfiguration.map { load in
            Reloader(
                configuration: configuration, supervisor: supervisor, notifier: notifier, logger: logger, logLevel: logLevel,
                load: load, refreshStatus: refreshStatus, addPool: addPool)
        }
        self.reloader = reloader
        live.reloader.withLock { $0 = reloader }
        let live = live
        reloader?.onRetentionChange { new in
            for journal in live.journals.withLock({ Array($0.values) }) {
                journal.setRetention(JobJournal.Retention(count: new.retainJobs, age: new.retainAge))
            }
            for lane in live.lanes.withLock({ Array($0.values) }) {
                lane.setRetention(JobRetention(count: new.retainJobs, age: new.retainAge))
            }
        }
        let node = live.storeNode.withLock { $0 }
        let pools: Supervisor = supervisor
        node?.report { NodeReport(pools.statuses()) }
        // A cancel on another node of a job this one holds: its pool cancels it, as a local one.
        // A job no pool holds yet (its claim still on the way) is asked about again; one
        // cancelled here already (its request is this node's own) is left as it is.
        node?.whenCancelRequested { [logger] requests in
            var acted: [JobID] = []
            for (id, reason) in requests {
                guard let pool = pools.pool(holding: id) else { continue }
                acted.append(id)
                guard !pool.read({ $0.isCancelling(id) }) else { continue }
                if let outcome = try? pool.cancel([id], reason: reason), !(outcome.cancelled + outcome.stopping).isEmpty {
                    logger.notice("job \(id): \(reason) on another node; \(outcome.stopping.isEmpty ? "cancelled" : "stopping")")
                }
            }
            return acted
        }
        control = ControlService(
            supervisor: supervisor, logger: logger, reloader: reloader, shutdown: shutdown, sharedQueue: node,
            maxAttempts: configuration.maxAttempts, onChange: refreshStatus)
        service = VarlinkService(
            vendor: "concur", product: "concurd", version: Daemon.version, url: "man:concurd(8)",
            interfaces: [control])
        return nil
    }

    /// Closed after the drain (so `status` answers while it lasts), after the live stats
    /// stream ended: its watchers learn it from the stream rather than from a dropped
    /// connection.
    private func openControlSocket() throws(DaemonStartFailure) -> (() -> Void)? {
        let access = Mutex(configuration.accessPolicy)
        reloader?.onAccessChange { policy in access.withLock { $0 = policy } }
        var serverConfiguration = VarlinkServerConfiguration { peer in access.withLock { $0 }.allows(peer) }
        serverConfiguration.stalledClientTimeout = configuration.watcherTimeout
        serverConfiguration.invalidMessage = { SupervisorError.invalidMessage(reason: $0) }
        serverConfiguration.oversizedReply = { bytes in
            SupervisorError.invalidValue(
                parameter: "more",
                reason: "the reply would take \(bytes) bytes, over the 1 MiB one message may hold; ask for less")
        }
        serverConfiguration.idleTimeout = configuration.idleTimeout
        serverConfiguration.naming = ServerNaming(name: "concurd", pathOption: "--socket")
        let server: VarlinkSocketServer
        do {
            server = try Daemon.openControlSocket(
                path: socketPath, service: service, configuration: serverConfiguration, group: group, logger: logger)
        } catch {
            throw DaemonStartFailure(message: "\(error)")
        }
        let control = control!
        return {
            control.statsFeed.finish()
            server.close()
        }
    }

    /// READY=1 once the socket accepts; the watchdog is pinged from the supervisor's own loop,
    /// at half systemd's interval: a stuck loop stops the pings, and systemd restarts the
    /// service. A loop that cannot start is logged, not fatal.
    private func announceReady() throws(DaemonStartFailure) -> (() -> Void)? {
        let statuses = supervisor.statuses()
        let shapes = statuses.map { status in
            let shape = "\(status.model.rawValue) model, \(status.workers.live) workers, queue limit \(status.maxQueue)"
            if status.removed { return "\(status.pool) removed (\(status.queued + status.scheduled + status.waiting) jobs kept)" }
            return statuses.count == 1 ? shape : "\(status.pool) \(shape)"
        }
        logger.info(
            "serving on \(socketPath): \(shapes.joined(separator: "; "))",
            // When it began to serve, by the clock systemd's timestamps use (before READY=1).
            metadata: ["pid": "\(getpid())", "monotonic_us": "\(MonotonicClock.now() / 1000)"])
        let line = Supervisor.statusLine(statuses, recorder: supervisor.recorderName)
        live.statusLine.withLock { $0 = line }
        notifier.ready(status: line)
        let watchdogEvery = notifier.watchdogInterval.map { Double($0) / 2e6 }
        if let watchdogEvery {
            logger.info("systemd watchdog: pinging every \(formatDuration(watchdogEvery)) from the supervisor loop")
        }
        let (notifier, refreshStatus, reloader, retainAge) = (notifier, refreshStatus, reloader, configuration.retainAge)
        let (outputTotal, logger) = (configuration.maxOutputTotal, logger)
        let sweeps = Atomic<Int>(0)
        do {
            try supervisor.startLoop(
                heartbeatEvery: watchdogEvery, heartbeat: { notifier.watchdog() },
                onTick: { supervisor in
                    refreshStatus()
                    if let replaced = CommandGuard.replaceIfGone() { logger.warning("\(replaced)") }
                    for pool in supervisor.pools {
                        pool.pruneFinished(olderThan: reloader?.configuration.retainAge ?? retainAge)
                    }
                    // Every 5 s: output goes with its job, and stays under its bound.
                    if sweeps.add(1, ordering: .relaxed).newValue % 5 == 0, let directory = CommandOutput.directory {
                        let sweep = OutputJanitor.sweep(
                            directory, maxTotal: reloader?.configuration.maxOutputTotal ?? outputTotal,
                            state: { id in supervisor.pool(holding: id)?.read { $0.job(id)?.state } })
                        if sweep.evicted > 0 {
                            logger.notice(
                                "output: removed the output of \(sweep.evicted) finished jobs to stay under max_output_total (\(sweep.bytes) bytes kept)"
                            )
                        }
                    }
                })
        } catch {
            logger.error("the supervisor loop could not start: \(error); the status line will not be refreshed")
        }
        let supervisor = supervisor!
        return { supervisor.stopLoop() }
    }

    // MARK: Serving

    /// Waits for a stop, then drains: systemd is asked for time while jobs are finishing,
    /// within the drain timeout's bound.
    private func drain() -> Supervisor.ShutdownOutcome {
        let level = shutdown.wait()
        let running = supervisor.runningCount
        logger.info(
            "shutting down: \(level == .cancel ? "interrupting" : "draining") \(running) running job\(running == 1 ? "" : "s")")
        notifier.stopping(status: "draining: \(running) running")
        var lastRunning = running
        let drainTimeout = reloader?.configuration.drainTimeout ?? configuration.drainTimeout
        let notifier = notifier
        return supervisor.drain(timeout: drainTimeout) { running in
            if running < lastRunning {
                notifier.extendTimeout(microseconds: 5_000_000)
            }
            lastRunning = running
            notifier.status("draining: \(running) running")
        }
    }
}

/// What the signal thread, the status refresh and a reload read of a run, under their own locks:
/// the supervisor and the reloader once they exist, the status line last sent to systemd, and
/// the pools' journals.
final class LiveParts: Sendable {
    let supervisor = Mutex<Supervisor?>(nil)
    let reloader = Mutex<Reloader?>(nil)
    let statusLine = Mutex("")
    /// Each pool's job journal (none when ephemeral); a reload that adds a pool adds its own.
    let journals = Mutex<[PoolName: JobJournal]>([:])
    /// This node of a shared store (`--store`), if it is one.
    let storeNode = Mutex<(any SharedQueueNode)?>(nil)
    /// Each pool's lane of the shared store (none without `--store`).
    let lanes = Mutex<[PoolName: any JobStore]>([:])

    /// The lane of `pool` of `node`, pruning the queue's finished jobs of that pool by
    /// `configuration`'s retention, and kept here for a reload that changes it.
    func lane(
        of node: any SharedQueueNode, for pool: PoolName, allowExec: Bool, _ configuration: DaemonConfiguration
    ) -> any JobStore {
        let lane = node.lane(for: pool, allowExec: allowExec)
        lane.setRetention(JobRetention(count: configuration.retainJobs, age: configuration.retainAge))
        lanes.withLock { $0[pool] = lane }
        return lane
    }
}
