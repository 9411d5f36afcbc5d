import CConcurShims
import ConcurCore
import ConcurProtocol
import Glibc

/// How the processes model starts a child worker.
package enum WorkerStartMethod: String, Sendable, CaseIterable {
    /// posix_spawn of the daemon's own binary in its hidden worker mode: a fresh process.
    case spawn
    /// fork of a small single-threaded helper (the forkserver), which is much faster to start
    /// a worker than a fresh process.
    case forkserver
}

/// What the processes model needs to start and reap child workers.
protocol WorkerLauncher: Sendable {
    /// Starts a child with `channel` as its fd 3 and `progress` as its fd 4; blocks until it runs.
    func launch(channel: Int32, progress: Int32) -> Result<pid_t, ProcessWorkerError>
    /// How child `pid` ended, once it has: its exit code or the signal that killed it (the other
    /// -1); nil while it runs.
    func reap(_ pid: pid_t) -> (code: Int32, signal: Int32)?
}

/// The forkserver: a helper process that forks child workers on request (Python's
/// `forkserver` start method, for the same reason).
///
/// A plain `fork` of the running daemon is unsafe: it copies only the calling thread, and a
/// lock another thread held at that instant (malloc's, the Swift runtime's) stays locked in the
/// child for ever. The helper is a fresh `concurd __forkserver` (posix_spawn from a long-lived
/// thread), which checks that it has a single thread before it forks anything, so every worker
/// it forks is the copy of a single-threaded process. A worker so started skips the exec and
/// the runtime's start-up: it serves in well under a millisecond.
///
/// Workers are the helper's children: it reaps them and reports each exit (code or signal) to
/// the daemon over its socket, where ``reap(_:)`` finds it. The helper dies with the daemon
/// (PR_SET_PDEATHSIG, and end of file on its socket), and its workers with it. If the helper
/// dies while the daemon runs (killed, say), its workers die too; the pool replaces them, and
/// the first of those starts a new helper (after a backoff if helpers keep dying young).
///
/// `@unchecked Sendable`: every `var` is guarded by `lock`.
package final class ForkServer: WorkerLauncher, @unchecked Sendable {
    /// One helper process and its socket.
    private struct Helper {
        let pid: pid_t
        let socket: Int32
        let generation: Int
        let startedAt: UInt64
    }

    /// Why the forkserver could not be started.
    package struct StartError: Error, Sendable, CustomStringConvertible {
        /// The text shown to people.
        package let description: String
    }

    /// The arguments that select the helper mode of the daemon's binary.
    package static let helperArguments = ["__forkserver"]

    private let spawner: WorkerSpawner
    private let nice: Int
    private let onEvent: @Sendable (String) -> Void
    private let lock = ConditionLock()
    private var helper: Helper?
    private var generation = 0
    private var nextRequest: UInt32 = 1
    private var replies: [UInt32: Result<pid_t, ProcessWorkerError>] = [:]
    private var exits: [pid_t: (code: Int32, signal: Int32)] = [:]
    /// Each live worker's helper, by generation; a worker of a helper that is gone died with it.
    private var owners: [pid_t: Int] = [:]
    private var gone: Set<Int> = []
    /// Helpers in a row that died within a second of starting (or could not be started).
    private var failures = 0
    private var lastStart: UInt64 = 0
    private var stopped = false

    /// Starts the helper (its workers run `nice` levels below the daemon); `onEvent` hears when
    /// a helper dies and when a new one starts.
    package static func start(nice: Int, onEvent: @escaping @Sendable (String) -> Void = { _ in })
        throws(StartError) -> ForkServer
    {
        let spawner: WorkerSpawner
        do {
            spawner = try WorkerSpawner(nice: nice)
        } catch {
            throw StartError(description: "cannot start the spawner thread: \(error)")
        }
        let server = ForkServer(spawner: spawner, nice: nice, onEvent: onEvent)
        let started = server.lock.withLock { server.startHelperLocked() }
        if case .failure(let error) = started { throw StartError(description: error.description) }
        return server
    }

    private init(spawner: WorkerSpawner, nice: Int, onEvent: @escaping @Sendable (String) -> Void) {
        self.spawner = spawner
        self.nice = nice
        self.onEvent = onEvent
    }

    /// The helper's process id, while one runs.
    package var helperPID: Int32? { lock.withLock { helper?.pid } }

    /// Spawns a helper and the thread that reads what it sends (under `lock`).
    private func startHelperLocked() -> Result<Helper, ProcessWorkerError> {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            return .failure(ProcessWorkerError("cannot create the forkserver's socket: \(String(cString: strerror(errno)))"))
        }
        let log = (ExecutionLog.path.map { ["--execution-log", $0] } ?? []) + CommandOutput.childArguments
        let arguments = Self.helperArguments + ["--parent", String(getpid()), "--nice", String(nice)] + log
        let spawned = spawner.spawn(arguments: arguments, channel: ends[1], progress: -1)
        close(ends[1])
        lastStart = MonotonicClock.now()
        guard case .success(let pid) = spawned else {
            close(ends[0])
            failures += 1
            if case .failure(let error) = spawned {
                return .failure(ProcessWorkerError("cannot start the forkserver: \(error)"))
            }
            return .failure(ProcessWorkerError("cannot start the forkserver"))
        }
        generation += 1
        let started = Helper(pid: pid, socket: ends[0], generation: generation, startedAt: lastStart)
        do {
            try OSThread.start(name: "concur-forkcli") { [self] in read(started) }
        } catch {
            kill(pid, SIGKILL)
            close(ends[0])
            _ = Self.reapHelper(pid)
            return .failure(ProcessWorkerError("cannot start the forkserver's reader: \(error)"))
        }
        helper = started
        return .success(started)
    }

    /// The helper's messages until it goes away; then its workers count as dead and it is reaped.
    private func read(_ helper: Helper) {
        var message = concur_forkserver_message()
        while true {
            let count = withUnsafeMutableBytes(of: &message) { recv(helper.socket, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count == MemoryLayout<concur_forkserver_message>.size else { break }
            lock.withLock {
                if message.type == 1 {
                    replies[message.request] =
                        message.error == 0
                        ? .success(message.pid)
                        : .failure(
                            ProcessWorkerError("the forkserver could not fork: \(String(cString: strerror(message.error)))"))
                    if message.error == 0 { owners[message.pid] = helper.generation }
                } else {
                    exits[message.pid] = (message.code, message.signal)
                    owners[message.pid] = nil
                }
                lock.broadcast()
            }
        }
        let (code, signal) = Self.reapHelper(helper.pid)
        let (expected, young) = lock.withLock { () -> (Bool, Bool) in
            gone.insert(helper.generation)
            if self.helper?.generation == helper.generation { self.helper = nil }
            close(helper.socket)
            let young = MonotonicClock.now() - helper.startedAt < 1_000_000_000
            failures = young ? failures + 1 : 0
            lock.broadcast()
            return (stopped, young)
        }
        guard !expected else { return }
        let how = signal >= 0 ? "killed by \(ProcessWorkerProxy.signalName(signal))" : "exited with status \(code)"
        onEvent(
            "the forkserver (pid \(helper.pid)) \(how); its workers die with it, and a new one starts with the next worker"
                + (young ? " (after a backoff: it died within a second of starting)" : ""))
    }

    /// Reaps the helper, which has closed its socket (it exited, or is about to); SIGKILL if it
    /// lingers.
    private static func reapHelper(_ pid: pid_t) -> (code: Int32, signal: Int32) {
        var code: Int32 = -1
        var signal: Int32 = -1
        let deadline = MonotonicClock.now() + 2_000_000_000
        var killed = false
        while true {
            let reaped = concur_reap(pid, &code, &signal)
            if reaped != 0 { return reaped == 1 ? (code, signal) : (-1, SIGKILL) }
            if !killed && MonotonicClock.now() > deadline {
                kill(pid, SIGKILL)
                killed = true
            }
            usleep(1_000)
        }
    }

    /// Seconds to wait before starting a helper after `failures` died young in a row.
    static func backoff(afterFailures failures: Int) -> Double {
        failures == 0 ? 0 : min(5, 0.1 * Double(1 << min(failures - 1, 10)))
    }

    func launch(channel: Int32, progress: Int32) -> Result<pid_t, ProcessWorkerError> {
        lock.withLock {
            guard !stopped else { return .failure(ProcessWorkerError("the forkserver is stopping")) }
            if helper == nil {
                let wait = Self.backoff(afterFailures: failures)
                let until = lastStart + UInt64(wait * 1e9)
                while helper == nil && !stopped && MonotonicClock.now() < until { _ = lock.wait(untilMonotonic: until) }
                if helper == nil {
                    let restart = startHelperLocked()
                    guard case .success(let started) = restart else { return restart.map(\.pid) }
                    onEvent("started a new forkserver (pid \(started.pid))")
                }
            }
            guard let current = helper else { return .failure(ProcessWorkerError("the forkserver is gone")) }
            let request = nextRequest
            nextRequest &+= 1
            let error = concur_forkserver_request(current.socket, request, channel, progress)
            guard error == 0 else {
                return .failure(ProcessWorkerError("cannot reach the forkserver: \(String(cString: strerror(error)))"))
            }
            while replies[request] == nil && !gone.contains(current.generation) { lock.wait() }
            return replies.removeValue(forKey: request) ?? .failure(ProcessWorkerError("the forkserver died"))
        }
    }

    /// Ends the helper (it exits at end of file on its socket; its workers, if any were left,
    /// die with it) and waits until it is reaped, so that no zombie is left behind.
    package func stop() {
        lock.withLock {
            stopped = true
            guard let current = helper else { return }
            shutdown(current.socket, Int32(SHUT_RDWR))
            let deadline = MonotonicClock.now() + 3_000_000_000
            while helper != nil && MonotonicClock.now() < deadline { _ = lock.wait(untilMonotonic: deadline) }
        }
    }

    func reap(_ pid: pid_t) -> (code: Int32, signal: Int32)? {
        lock.withLock {
            if let status = exits.removeValue(forKey: pid) { return status }
            // Without its helper nobody will report it: the worker died with the helper.
            if let generation = owners[pid], gone.contains(generation) {
                owners[pid] = nil
                return (-1, SIGKILL)
            }
            return nil
        }
    }

    // MARK: The helper process

    /// The helper's life (`concurd __forkserver`): checks that it has one thread, dies with the
    /// daemon `parentPID`, and serves fork requests on fd 3. It never returns in the helper; in
    /// each worker it forks, that worker serves jobs (`nice` levels below the daemon).
    package static func serveAsHelper(parentPID: Int32, nice: Int) -> Never {
        _ = concur_set_parent_death_signal(SIGKILL)
        // The daemon may have died before the death signal was armed.
        if getppid() != parentPID { _exit(0) }
        let threads = concur_thread_count()
        guard threads == 1 else {
            StandardStreams.printError("concurd forkserver: it must run with one thread to fork safely, and it has \(threads)")
            _exit(70)
        }
        concur_set_thread_name("concur-forksrv")
        // The workers it forks inherit it: their commands get the daemon's environment.
        ProcessModel.restoreCommandEnvironment()
        let helper = getpid()
        // Returns only in a worker the helper forked.
        _ = concur_forkserver_serve(ChildWorker.channel)
        ChildWorker.runForked(helperPID: helper, nice: nice)
    }
}
