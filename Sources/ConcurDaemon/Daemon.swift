import ConcurCore
import ConcurJournal
import ConcurProtocol
import ConcurRuntime
import Glibc
package import Logging
import NIOPosix
import Synchronization
package import Systemd
import Varlink
import VarlinkServer

/// The `concurd` service: control socket, pool, signals and systemd notifications, from start
/// to a drained exit.
package enum Daemon {
    /// The version reported by `GetInfo` and `Status`.
    package static let version = "0.1.0"

    /// How concurd's entries are named in the journal (`journalctl -t concurd`, `CONCUR_JOB=`).
    package static let journalIdentity = JournalIdentity(syslogIdentifier: "concurd", fieldPrefix: "CONCUR_")

    /// Exit status when running jobs had to be interrupted at shutdown (sysexits EX_TEMPFAIL:
    /// the work was not finished and should be retried).
    package static let exitInterrupted: Int32 = 75

    /// Runs the daemon until it is told to stop; returns the process exit status (0 drained,
    /// 1 could not start, ``exitInterrupted`` when running jobs had to be interrupted).
    ///
    /// The run is an ordered list of parts (``DaemonRun``), started in order and stopped in
    /// reverse. `reloadConfiguration` reads the configuration again (SIGHUP, `Reload()`);
    /// `logLevel` is the level the log handlers share, which a reload may change.
    package static func serve(
        configuration: DaemonConfiguration, logger: Logger, logLevel: LogLevelControl = LogLevelControl(.info),
        reloadConfiguration: (@Sendable () throws(ConfigurationError) -> DaemonConfiguration)? = nil
    ) -> Int32 {
        DaemonRun(configuration: configuration, logger: logger, logLevel: logLevel, reloadConfiguration: reloadConfiguration)
            .serve()
    }

    /// Logs what happened to the journal: a failure and what it left unrecorded (critical), a
    /// recovery (notice), and what a stop could never write (error, with the ids).
    static func log(_ event: JobJournal.Event, _ logger: Logger, prefix: String = "") {
        switch event {
        case .failed(let failure, let unrecorded):
            logger.critical("\(prefix)\(failure.reason); not recorded yet: \(unrecorded)")
        case .stillFailing(let failure, let seconds, let unrecorded):
            logger.critical(
                "\(prefix)\(failure.reason); still failing after \(formatDuration(seconds)); not recorded yet: \(unrecorded)")
        case .recovered(let seconds, let written):
            logger.notice(
                "\(prefix)the job journal records again after \(formatDuration(seconds)): \(written) changes that had waited are written; workers take jobs again"
            )
        case .lost(let unrecorded):
            logger.error("\(prefix)the job journal could not record everything before the stop: \(unrecorded)")
        }
    }

    /// Adopts the socket systemd passed (named `control`, or `varlink` as Varlink services'
    /// units name theirs, or the only one), else binds `path`.
    static func openControlSocket(
        path: String, service: VarlinkService, configuration: VarlinkServerConfiguration,
        group: MultiThreadedEventLoopGroup, logger: Logger
    ) throws -> VarlinkSocketServer {
        let passed = ListenedSockets.take()
        let named = passed.first { $0.name == "control" } ?? passed.first { $0.name == "varlink" }
        if let socket = named ?? (passed.count == 1 ? passed.first : nil) {
            logger.info("using the socket passed by systemd (fd \(socket.fileDescriptor))")
            return try VarlinkSocketServer.adopt(
                fileDescriptor: socket.fileDescriptor, path: nil, service: service, configuration: configuration, group: group,
                logger: logger)
        }
        return try VarlinkSocketServer.bind(
            path: path, service: service, configuration: configuration, group: group, logger: logger)
    }

    /// What a shutdown that just reached `level` (by a signal or a `Shutdown` call, `cause`)
    /// does at once: at `cancel`, running jobs are interrupted; at `drain`, the daemon's drain
    /// (which waits on the event) does the rest. `again` says how to go further.
    static func shutdownReached(
        _ level: ShutdownEvent.Level, cause: String, again: String, supervisor: Supervisor, logger: Logger
    ) {
        if level == .cancel {
            logger.warning("\(cause): interrupting running jobs")
            for pool in supervisor.pools { pool.cancelRunning(reason: "interrupted: \(cause) during shutdown") }
        } else {
            logger.notice("\(cause): draining; \(again) to interrupt running jobs")
        }
    }

    /// Acts on one signal: TERM/INT drain then cancel, QUIT cancels, TTIN/TTOU resize the
    /// default pool by one, USR1 logs a snapshot of every pool.
    static func handle(
        signal number: Int32, supervisor: Supervisor, shutdown: ShutdownEvent, logger: Logger,
        refreshStatus: @Sendable () -> Void
    ) {
        let name = SignalWatcher.name(of: number)
        switch number {
        case SIGTERM, SIGINT, SIGQUIT:
            let level = shutdown.escalate(atLeast: number == SIGQUIT ? .cancel : .drain)
            shutdownReached(level, cause: "SIG\(name)", again: "send it again", supervisor: supervisor, logger: logger)
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
                "\(Supervisor.statusLine(stats.pools, recorder: supervisor.recorderName)); default pool: throughput \(formatDecimal(stats.throughput.last10s, places: 1))/s over 10 s; run time p50 \(formatDecimal(stats.latency.run.p50 * 1000, places: 3)) ms, p99 \(formatDecimal(stats.latency.run.p99 * 1000, places: 3)) ms"
            )
        default:
            break
        }
    }
}
