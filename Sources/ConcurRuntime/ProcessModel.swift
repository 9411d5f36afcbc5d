import CConcurShims
import ConcurCore
package import ConcurProtocol
import DequeModule
import Glibc

/// The processes model: each worker is a child process, the daemon's own binary re-executed in
/// its hidden worker mode (`concurd __worker`), talking to the daemon over a socket pair.
///
/// A crashing job takes down one child, never the daemon. Children are started by one
/// long-lived spawner thread (PR_SET_PDEATHSIG follows the thread that spawned a child, and
/// would fire when a short-lived thread ended); each is watched by a proxy thread of its own.
package final class ProcessModel: WorkerModel {
    /// `.processes`.
    package let model = ConcurrencyModel.processes
    private let launcher: any WorkerLauncher
    /// How children are started.
    package let startMethod: WorkerStartMethod

    /// The arguments that select the worker mode of the daemon's binary.
    package static let workerArguments = ["__worker"]

    /// A model whose spawner thread starts now (before the pool needs it); its children run
    /// `nice` levels below the daemon's control plane.
    package init(nice: Int = 0) throws {
        launcher = try WorkerSpawner(nice: nice)
        startMethod = .spawn
    }

    /// A model whose children the forkserver forks (started with the niceness its children get).
    package init(forkServer: ForkServer) {
        launcher = forkServer
        startMethod = .forkserver
    }

    /// Starts the proxy thread that spawns and serves child `handle.id`.
    package func startWorker(_ handle: WorkerHandle, pool: Pool, delay: Double) throws {
        let doorbell = concur_doorbell()
        guard doorbell >= 0 else { throw ProcessWorkerError("cannot create a doorbell: \(String(cString: strerror(errno)))") }
        handle.installDoorbell { concur_ring(doorbell) }
        let launcher = launcher
        do {
            try OSThread.start(name: "concur-proc-\(handle.id)") {
                ProcessWorkerProxy(handle: handle, pool: pool, launcher: launcher, doorbell: doorbell).run(delay: delay)
                close(doorbell)
            }
        } catch {
            close(doorbell)
            throw error
        }
    }
}

/// Why a child worker could not be started or served.
struct ProcessWorkerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Spawns child workers from one dedicated, long-lived thread.
///
/// `@unchecked Sendable`: `requests` is guarded by `lock`; each request's result is written
/// once by the spawner thread before it signals, and read by its requester after.
final class WorkerSpawner: WorkerLauncher, @unchecked Sendable {
    private final class Request {
        let channel: Int32
        let progress: Int32
        /// The command line, if not a worker's.
        let argv: [UnsafeMutablePointer<CChar>?]?
        var result: Result<pid_t, ProcessWorkerError>?
        init(channel: Int32, progress: Int32, argv: [UnsafeMutablePointer<CChar>?]?) {
            self.channel = channel
            self.progress = progress
            self.argv = argv
        }
    }

    private let lock = ConditionLock()
    private let done: Condition
    private var requests: Deque<Request> = []
    private let argv: [UnsafeMutablePointer<CChar>?]
    private let environment: [UnsafeMutablePointer<CChar>?]
    private let binary = HelperBinary.path

    init(nice: Int) throws {
        done = lock.makeCondition()
        // HelperBinary: this very binary (or the lighter build it pinned), even if replaced on disk since.
        let log = (ExecutionLog.path.map { ["--execution-log", $0] } ?? []) + CommandOutput.childArguments
        let arguments = ProcessModel.workerArguments + ["--parent", String(getpid()), "--nice", String(nice)] + log
        argv = (["concurd"] + arguments).map { strdup($0) } + [nil]
        // Children must not notify systemd nor adopt its sockets, and must die fast on a crash.
        var variables: [String] = []
        var cursor = environ
        while let entry = cursor.pointee {
            let text = String(cString: entry)
            let name = text.prefix { $0 != "=" }
            if ![
                "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "SWIFT_BACKTRACE", "WATCHDOG_USEC", "WATCHDOG_PID",
            ]
            .contains(String(name)) {
                variables.append(text)
            }
            cursor += 1
        }
        variables.append("SWIFT_BACKTRACE=enable=no")
        if let own = getenv("SWIFT_BACKTRACE") {
            variables.append("\(ProcessModel.commandBacktraceVariable)=\(String(cString: own))")
        }
        environment = variables.map { strdup($0) } + [nil]
        try OSThread.start(name: "concur-spawner") { [self] in serve() }
    }

    /// Spawns a child worker with `channel` as its fd 3 and `progress` as its fd 4; blocks the
    /// caller until it is done.
    func launch(channel: Int32, progress: Int32) -> Result<pid_t, ProcessWorkerError> {
        submit(Request(channel: channel, progress: progress, argv: nil))
    }

    /// Spawns the daemon's binary with `arguments` (another hidden mode: the forkserver), with
    /// `channel` as its fd 3 and `progress` (if not -1) as its fd 4, from the same long-lived
    /// thread, and with the same environment as a worker.
    func spawn(arguments: [String], channel: Int32, progress: Int32) -> Result<pid_t, ProcessWorkerError> {
        let argv = (["concurd"] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        return submit(Request(channel: channel, progress: progress, argv: argv))
    }

    private func submit(_ request: Request) -> Result<pid_t, ProcessWorkerError> {
        lock.withLock {
            requests.append(request)
            lock.signal()
            while request.result == nil { lock.wait(done) }
            return request.result!
        }
    }

    func reap(_ pid: pid_t) -> (code: Int32, signal: Int32)? {
        var code: Int32 = -1
        var signal: Int32 = -1
        return concur_reap(pid, &code, &signal) == 0 ? nil : (code, signal)
    }

    private func serve() -> Never {
        while true {
            let request = lock.withLock {
                while requests.isEmpty { lock.wait() }
                return requests.removeFirst()
            }
            var pid: pid_t = 0
            let result = (request.argv ?? argv).withUnsafeBufferPointer { arguments in
                environment.withUnsafeBufferPointer { variables in
                    concur_spawn_worker(
                        binary, UnsafePointer(arguments.baseAddress!), UnsafePointer(variables.baseAddress!),
                        request.channel, request.progress, &pid)
                }
            }
            lock.withLock {
                request.result =
                    result == 0
                    ? .success(pid) : .failure(ProcessWorkerError("posix_spawn failed: \(String(cString: strerror(result)))"))
                done.broadcast()
            }
        }
    }
}

extension ProcessModel {
    /// Where a child keeps the daemon's own `SWIFT_BACKTRACE` (the child runs with
    /// `enable=no`) for the commands it runs (see ``restoreCommandEnvironment()``).
    static let commandBacktraceVariable = "CONCUR_COMMAND_SWIFT_BACKTRACE"

    /// In a child worker or the forkserver, at its start: gives the environment back the
    /// daemon's `SWIFT_BACKTRACE` (or none), so that the commands it runs get the environment
    /// concurd itself had, as they do under threads and tasks. The child's own crash handling
    /// stays off: the Swift runtime reads the variable once, when the process starts. Call it
    /// before any other thread starts (setenv is not thread-safe).
    package static func restoreCommandEnvironment() {
        if let own = getenv(commandBacktraceVariable) {
            setenv("SWIFT_BACKTRACE", own, 1)
            unsetenv(commandBacktraceVariable)
        } else {
            unsetenv("SWIFT_BACKTRACE")
        }
    }
}
