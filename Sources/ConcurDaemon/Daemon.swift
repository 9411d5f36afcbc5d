import ConcurCore
import ConcurJournal
import ConcurProtocol
import ConcurRuntime
import Glibc
public import Logging
import NIOPosix
import Synchronization
public import Systemd
import Varlink
import VarlinkServer

/// The `concurd` service: control socket, pool, signals and systemd notifications, from start
/// to a drained exit.
public enum Daemon {
    /// The version reported by `GetInfo` and `Status`.
    public static let version = "0.1.0"

    /// Exit status when running jobs had to be interrupted at shutdown (sysexits EX_TEMPFAIL:
    /// the work was not finished and should be retried).
    public static let exitInterrupted: Int32 = 75

    /// Runs the daemon until it is told to stop; returns the process exit status.
    ///
    /// Order matters: signals are taken first, then the workers start, then the socket is bound,
    /// and only then READY=1 is sent; at shutdown
    /// the workers are drained before the socket closes, so `status` keeps answering meanwhile.
    ///
    /// `reloadConfiguration` reads the configuration again (SIGHUP, `Reload()`); `logLevel` is the
    /// level the log handlers share, which a reload may change.
    public static func serve(
        configuration: DaemonConfiguration, logger: Logger, logLevel: LogLevelControl = LogLevelControl(.info),
        reloadConfiguration: (@Sendable () throws(ConfigurationError) -> DaemonConfiguration)? = nil
    ) -> Int32 {
        let notifier = SystemdNotifier()
        let socketPath: String
        do {
            socketPath = try SocketPath.resolve(explicit: configuration.socket, uid: getuid()) {
                getenv($0).map { String(cString: $0) }
            }
        } catch {
            logger.critical("\(error)")
            return 1
        }

        if let path = configuration.executionLog {
            // Before the models start (child workers get the path on their command line) and
            // before the forkserver starts (its helper and workers open it again).
            do {
                try ExecutionLog.open(path: path)
            } catch {
                logger.critical("\(error)")
                return 1
            }
        }

        // Signals are blocked before the first thread starts (the models start threads); until
        // the pool exists, only a stop is acted on.
        let shutdown = ShutdownEvent()
        let current = Mutex<Supervisor?>(nil)
        let currentReloader = Mutex<Reloader?>(nil)
        let statusLine = Mutex("")
        let refreshStatus: @Sendable () -> Void = {
            guard let supervisor = current.withLock({ $0 }) else { return }
            let line = Supervisor.statusLine(supervisor.status())
            let changed = statusLine.withLock { previous in
                defer { previous = line }
                return previous != line
            }
            if changed { notifier.status(line) }
        }
        let testHooks = configuration.testHooks
        let signals = SignalWatcher(signals: [SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2]) {
            number in
            guard let supervisor = current.withLock({ $0 }) else {
                if [SIGTERM, SIGINT, SIGQUIT].contains(number) { shutdown.escalate() }
                return
            }
            switch number {
            case SIGHUP:
                guard let reloader = currentReloader.withLock({ $0 }) else {
                    logger.warning("SIGHUP: concurd was started without a way to read its configuration again; nothing changed")
                    return
                }
                // Off the signal thread: a reload may wait for a new model to serve.
                try? OSThread.start(name: "concur-reload") { _ = try? reloader.reload() }
            case SIGUSR2 where testHooks:
                logger.critical("SIGUSR2 with test hooks on: the supervisor loop hangs now (the watchdog should act)")
                supervisor.hangLoop()
            default:
                handle(signal: number, supervisor: supervisor, shutdown: shutdown, logger: logger, refreshStatus: refreshStatus)
            }
        }
        defer { signals.cancel() }

        // The forkserver's helper is a process of its own (single-threaded, so it may fork),
        // spawned from a thread started after the signals were blocked.
        var forkServer: ForkServer?
        if configuration.startMethod == .forkserver {
            do {
                forkServer = try ForkServer.start(nice: configuration.workerNice) { logger.warning("\($0)") }
                logger.info("forkserver started", metadata: ["forkserver_pid": "\(forkServer?.helperPID ?? 0)"])
            } catch {
                logger.critical("cannot start the forkserver: \(error); use --start-method spawn")
                return 1
            }
        }
        defer { forkServer?.stop() }

        // The journal is read before the pool exists: what it holds is put back first.
        let journal: JobJournal?
        let restoring: (records: [JobRecord], nextJobID: JobID)?
        if configuration.ephemeral {
            (journal, restoring) = (nil, nil)
            logger.notice("ephemeral: jobs are kept in memory only; a stop cancels queued jobs and a crash loses them")
        } else {
            let directory = configuration.resolvedStateDirectory(uid: getuid()) { getenv($0).map { String(cString: $0) } }
            let started = MonotonicClock.now()
            do {
                let (opened, recovery) = try JobJournal.open(
                    directory: directory, sync: configuration.journalSync, maxAttempts: configuration.maxAttempts,
                    retention: JobJournal.Retention(count: configuration.retainJobs, age: configuration.retainAge),
                    clock: MonotonicClock(), onEvent: { log($0, logger) })
                journal = opened
                restoring = (recovery.records, recovery.nextJobID)
                logger.info(
                    "job journal \(opened.path): \(recovery.summary) (read in \(formatDuration(Double(MonotonicClock.now() - started) / 1e9)))",
                    metadata: ["in_flight": "\(recovery.inFlight)", "queued": "\(recovery.queued)"])
            } catch {
                logger.critical("\(error)")
                return 1
            }
        }

        let supervisor = Supervisor(
            configuration: configuration.supervisor,
            models: WorkerModels.all(
                taskThreads: configuration.taskThreads, nice: configuration.workerNice, forkServer: forkServer),
            version: version, durability: journal, restoring: restoring,
            onEvent: { logger.warning("\($0)") })
        current.withLock { $0 = supervisor }
        do {
            try journal?.start(pool: supervisor.pool)
        } catch {
            logger.critical("cannot start the job journal's writer: \(error)")
            return 1
        }
        // After the drain: what finished is written, and what did not stays queued in it.
        defer { journal?.close() }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        // Workers first: once the socket accepts, the pool is running (READY=1 promises both).
        do {
            try supervisor.start(workers: configuration.workers)
        } catch {
            logger.critical("cannot start the workers: \(error)")
            return 1
        }

        let reloader = reloadConfiguration.map { load in
            Reloader(
                configuration: configuration, supervisor: supervisor, notifier: notifier, logger: logger, logLevel: logLevel,
                load: load, refreshStatus: refreshStatus)
        }
        currentReloader.withLock { $0 = reloader }
        reloader?.onRetentionChange { new in
            journal?.setRetention(JobJournal.Retention(count: new.retainJobs, age: new.retainAge))
        }
        let control = ControlService(supervisor: supervisor, logger: logger, reloader: reloader, onChange: refreshStatus)
        let service = VarlinkService(
            vendor: "concur", product: "concurd", version: version, url: "https://github.com/concur/concur",
            interfaces: [control])
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
        let server: VarlinkSocketServer
        do {
            server = try openControlSocket(
                path: socketPath, service: service, configuration: serverConfiguration, group: group, logger: logger)
        } catch {
            logger.critical("\(error)")
            return 1
        }

        let status = supervisor.status()
        logger.info(
            "serving on \(socketPath): \(status.model.rawValue) model, \(status.workers.live) workers, queue limit \(status.maxQueue)",
            // When it began to serve, by the clock systemd's timestamps use (before READY=1).
            metadata: ["pid": "\(getpid())", "monotonic_us": "\(MonotonicClock.now() / 1000)"])
        statusLine.withLock { $0 = Supervisor.statusLine(status) }
        notifier.ready(status: Supervisor.statusLine(status))
        // The watchdog is pinged from the supervisor's own loop, at half systemd's interval: a
        // stuck loop stops the pings, and systemd restarts the service.
        let watchdogEvery = notifier.watchdogInterval.map { Double($0) / 2e6 }
        if let watchdogEvery {
            logger.info("systemd watchdog: pinging every \(formatDuration(watchdogEvery)) from the supervisor loop")
        }
        do {
            try supervisor.startLoop(
                heartbeatEvery: watchdogEvery, heartbeat: { notifier.watchdog() },
                onTick: { supervisor in
                    refreshStatus()
                    supervisor.pool.pruneFinished(olderThan: reloader?.configuration.retainAge ?? configuration.retainAge)
                })
        } catch {
            logger.error("the supervisor loop could not start: \(error); the status line will not be refreshed")
        }

        let level = shutdown.wait()
        let running = supervisor.pool.read { $0.runningCount }
        logger.info(
            "shutting down: \(level == .cancel ? "interrupting" : "draining") \(running) running job\(running == 1 ? "" : "s")")
        notifier.stopping(status: "draining: \(running) running")
        var lastRunning = running
        let drainTimeout = reloader?.configuration.drainTimeout ?? configuration.drainTimeout
        let outcome = supervisor.drain(timeout: drainTimeout) { running in
            if running < lastRunning {
                // Jobs are finishing: ask systemd for time, within the drain timeout's bound.
                notifier.extendTimeout(microseconds: 5_000_000)
            }
            lastRunning = running
            notifier.status("draining: \(running) running")
        }
        supervisor.stopLoop()
        control.statsFeed.finish()
        server.close()
        let totals = supervisor.status().totals
        var summary = "\(totals.done) done, \(totals.failed) failed, \(totals.cancelled) cancelled"
        let kept = supervisor.pool.read { $0.keptForRestart }
        if kept > 0, let failure = journal?.failure {
            summary += "; \(kept) unfinished jobs could not be kept for the next start as they stand: \(failure.reason)"
        } else if kept > 0 {
            summary += "; \(kept) unfinished kept queued in the journal for the next start"
        }
        switch outcome {
        case .drained:
            logger.info("stopped: every running job finished (\(summary))")
            return 0
        case .cancelled:
            logger.warning("stopped: running jobs were interrupted (\(summary))")
            return exitInterrupted
        case .abandoned(let workers):
            logger.error("stopped with \(workers) worker(s) still busy after the grace period (\(summary))")
            return exitInterrupted
        }
    }

    /// Logs what happened to the journal: a failure and what it left unrecorded (critical), a
    /// recovery (notice), and what a stop could never write (error, with the ids).
    static func log(_ event: JobJournal.Event, _ logger: Logger) {
        switch event {
        case .failed(let failure, let unrecorded):
            logger.critical("\(failure.reason); not recorded yet: \(unrecorded)")
        case .stillFailing(let failure, let seconds, let unrecorded):
            logger.critical("\(failure.reason); still failing after \(formatDuration(seconds)); not recorded yet: \(unrecorded)")
        case .recovered(let seconds, let written):
            logger.notice(
                "the job journal records again after \(formatDuration(seconds)): \(written) changes that had waited are written; workers take jobs again"
            )
        case .lost(let unrecorded):
            logger.error("the job journal could not record everything before the stop: \(unrecorded)")
        }
    }

    /// Adopts the socket systemd passed (named `control`, or the only one), else binds `path`.
    static func openControlSocket(
        path: String, service: VarlinkService, configuration: VarlinkServerConfiguration,
        group: MultiThreadedEventLoopGroup, logger: Logger
    ) throws -> VarlinkSocketServer {
        let passed = ListenedSockets.take()
        if let socket = passed.first(where: { $0.name == "control" }) ?? (passed.count == 1 ? passed.first : nil) {
            logger.info("using the socket passed by systemd (fd \(socket.fileDescriptor))")
            return try VarlinkSocketServer.adopt(
                fileDescriptor: socket.fileDescriptor, path: nil, service: service, configuration: configuration, group: group,
                logger: logger)
        }
        return try VarlinkSocketServer.bind(
            path: path, service: service, configuration: configuration, group: group, logger: logger)
    }

    /// Acts on one signal: TERM/INT drain then cancel, QUIT cancels, TTIN/TTOU resize by one,
    /// USR1 logs a snapshot.
    static func handle(
        signal number: Int32, supervisor: Supervisor, shutdown: ShutdownEvent, logger: Logger,
        refreshStatus: @Sendable () -> Void
    ) {
        let name = SignalWatcher.name(of: number)
        switch number {
        case SIGTERM, SIGINT, SIGQUIT:
            let level = shutdown.escalate(atLeast: number == SIGQUIT ? .cancel : .drain)
            if level == .cancel {
                logger.warning("SIG\(name): interrupting running jobs")
                supervisor.pool.cancelRunning(reason: "interrupted: SIG\(name) during shutdown")
            } else {
                logger.notice("SIG\(name): draining; send it again to interrupt running jobs")
            }
        case SIGTTIN, SIGTTOU:
            let current = supervisor.pool.read { $0.target }
            guard current > 0 else {
                logger.warning("SIG\(name): the pool is not running yet (or shutting down); nothing changed")
                return
            }
            let target = current + (number == SIGTTIN ? 1 : -1)
            do {
                let previous = try supervisor.pool.resize(to: target)
                logger.info("SIG\(name): workers \(previous) -> \(target)")
                refreshStatus()
            } catch {
                logger.warning("SIG\(name): cannot resize to \(target) workers: \(error)")
            }
        case SIGUSR1:
            let stats = supervisor.stats()
            logger.info(
                "\(Supervisor.statusLine(stats.status)); throughput \(formatDecimal(stats.throughput.last10s, places: 1))/s over 10 s; run time p50 \(formatDecimal(stats.latency.run.p50 * 1000, places: 3)) ms, p99 \(formatDecimal(stats.latency.run.p99 * 1000, places: 3)) ms"
            )
        default:
            break
        }
    }
}
