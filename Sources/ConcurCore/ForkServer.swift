import CConcurShims
import Glibc

/// How the processes model starts a child worker.
public enum WorkerStartMethod: String, Sendable, CaseIterable {
    /// posix_spawn of the daemon's own binary in its hidden worker mode: a fresh process.
    case spawn
    /// fork of a small helper forked from the daemon before any thread started: a copy of a
    /// single-threaded process, safe to fork, and much faster to start than a fresh one.
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

/// The forkserver: a helper process forked from the daemon while it has a single thread, which
/// forks child workers on request (Python's `forkserver` start method, for the same reason).
///
/// A plain `fork` of the running daemon is unsafe: it copies only the calling thread, and a
/// lock another thread held at that instant (malloc's, the Swift runtime's) stays locked in the
/// child for ever. The helper is forked before any other thread exists (``start(nice:)``
/// checks), so every worker it forks is the copy of a single-threaded process. A worker so
/// started skips the exec and the runtime's start-up: it serves in well under a millisecond.
///
/// Workers are the helper's children: it reaps them and reports each exit (code or signal) to
/// the daemon over its socket, where ``reap(_:)`` finds it. The helper dies with the daemon
/// (PR_SET_PDEATHSIG, and end of file on its socket), and its workers with it.
///
/// `@unchecked Sendable`: `replies`, `exits`, `nextRequest` and `gone` are guarded by `lock`.
public final class ForkServer: WorkerLauncher, @unchecked Sendable {
    /// The helper's process id.
    public let helperPID: Int32
    private let socket: Int32
    private let lock = ConditionLock()
    private var nextRequest: UInt32 = 1
    private var replies: [UInt32: Result<pid_t, ProcessWorkerError>] = [:]
    private var exits: [pid_t: (code: Int32, signal: Int32)] = [:]
    private var gone = false
    private var reading = false

    /// Why the forkserver could not be started.
    public struct StartError: Error, Sendable, CustomStringConvertible {
        /// The text shown to people.
        public let description: String
    }

    /// Forks the helper. Call it first thing, while the daemon has a single thread: it refuses
    /// otherwise. In the helper, and in every worker the helper forks, it never returns: the
    /// helper serves requests, a worker serves jobs (running `nice` levels below the daemon).
    public static func start(nice: Int) throws(StartError) -> ForkServer {
        let threads = concur_thread_count()
        guard threads == 1 else {
            throw StartError(
                description: "the forkserver must be forked while concurd has one thread, and it has \(threads)")
        }
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw StartError(description: "cannot create the forkserver's socket: \(String(cString: strerror(errno)))")
        }
        let daemon = getpid()
        let pid = concur_fork()
        if pid < 0 {
            close(ends[0])
            close(ends[1])
            throw StartError(description: "cannot fork the forkserver: \(String(cString: strerror(errno)))")
        }
        if pid == 0 {
            close(ends[0])
            _ = concur_set_parent_death_signal(SIGKILL)
            if getppid() != daemon { _exit(0) }
            concur_set_thread_name("concur-forksrv")
            let helper = getpid()
            // Returns only in a worker the helper forked.
            _ = concur_forkserver_serve(ends[1])
            ChildWorker.runForked(helperPID: helper, nice: nice)
        }
        close(ends[1])
        return ForkServer(helperPID: pid, socket: ends[0])
    }

    private init(helperPID: pid_t, socket: Int32) {
        self.helperPID = helperPID
        self.socket = socket
    }

    /// Starts the thread that reads the helper's replies and exit reports (with the other
    /// threads, once signals are blocked).
    func startReading() throws(OSThread.StartError) {
        let start = lock.withLock { () -> Bool in
            defer { reading = true }
            return !reading
        }
        guard start else { return }
        try OSThread.start(name: "concur-forkcli") { [self] in read() }
    }

    private func read() {
        var message = concur_forkserver_message()
        while true {
            let count = withUnsafeMutableBytes(of: &message) { recv(socket, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count == MemoryLayout<concur_forkserver_message>.size else { break }
            lock.withLock {
                if message.type == 1 {
                    replies[message.request] =
                        message.error == 0
                        ? .success(message.pid)
                        : .failure(
                            ProcessWorkerError("the forkserver could not fork: \(String(cString: strerror(message.error)))"))
                } else {
                    exits[message.pid] = (message.code, message.signal)
                }
                lock.broadcast()
            }
        }
        lock.withLock {
            gone = true
            lock.broadcast()
        }
    }

    func launch(channel: Int32, progress: Int32) -> Result<pid_t, ProcessWorkerError> {
        let request = lock.withLock { () -> UInt32 in
            defer { nextRequest &+= 1 }
            return nextRequest
        }
        let error = concur_forkserver_request(socket, request, channel, progress)
        guard error == 0 else {
            return .failure(ProcessWorkerError("cannot reach the forkserver: \(String(cString: strerror(error)))"))
        }
        return lock.withLock {
            while replies[request] == nil && !gone { lock.wait() }
            return replies.removeValue(forKey: request) ?? .failure(ProcessWorkerError("the forkserver is gone"))
        }
    }

    /// Ends the helper (it exits at end of file on its socket; its workers, if any were left,
    /// die with it) and reaps it, so that no zombie is left behind.
    public func stop() {
        shutdown(socket, Int32(SHUT_RDWR))
        var code: Int32 = 0
        var signal: Int32 = 0
        let deadline = MonotonicClock.now() + 2_000_000_000
        while concur_reap(helperPID, &code, &signal) == 0 {
            if MonotonicClock.now() > deadline {
                kill(helperPID, SIGKILL)
                while concur_reap(helperPID, &code, &signal) == 0 { usleep(1_000) }
                return
            }
            usleep(1_000)
        }
    }

    func reap(_ pid: pid_t) -> (code: Int32, signal: Int32)? {
        lock.withLock {
            if let status = exits.removeValue(forKey: pid) { return status }
            // Without its helper nobody will report it; the worker died with the helper.
            return gone ? (-1, SIGKILL) : nil
        }
    }
}
