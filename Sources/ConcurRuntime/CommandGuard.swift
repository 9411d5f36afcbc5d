import CConcurShims
import Glibc
import Synchronization

/// Makes sure no command of an exec job outlives the daemon, however the daemon ends (kill -9
/// included): a small helper process, `concurd __guard`, holds the read end of a pipe whose
/// write end only the daemon holds, and the daemon registers each command's process group
/// there while it runs. When the pipe reaches end of file (the daemon is gone) the guard
/// SIGKILLs every group still registered, then exits. The guard is started just before the
/// first command the daemon itself runs (``enable(onFailure:)`` allows it, ``prepare()``
/// starts it), so a daemon that runs none starts none, and the first command is not spawned
/// before there is a guard to register it with.
///
/// A command run by a child worker (the processes model) is not registered: the child kills
/// its command's group itself when the daemon goes away (its parent-death signal is SIGTERM,
/// whose handler does it, and end of file on its channel does the same). Registering costs one
/// 8-byte write to the pipe at the start of a command and one at its end. A daemon killed in
/// the microseconds between spawning a command and registering it leaves that command behind.
///
/// A guard that dies while the daemon runs (killed by someone, out of memory) is noticed by
/// ``replaceIfGone()`` (the supervisor's one-second tick) and replaced, and the groups of the
/// commands still running are registered with the new one.
package enum CommandGuard {
    /// The pipe's write end in the daemon (close-on-exec), or -1 without a guard.
    private static let pipe = Atomic<Int32>(-1)
    /// The guard's pid, or 0.
    private static let helper = Atomic<Int32>(0)
    /// Whether this process may start a guard (the daemon: yes; a child worker: no), and
    /// whether it tried; the start happens with the first command.
    private static let starting = Mutex((enabled: false, tried: false))

    /// The guard's hidden subcommand.
    package static let helperArguments = ["__guard"]

    /// Lets this process start a guard when its first command starts (a daemon that runs no
    /// command never starts one); `onFailure` hears why, if it cannot be started.
    package static func enable(onFailure: @escaping @Sendable (String) -> Void) {
        starting.withLock { $0.enabled = true }
        failureHandler.withLock { $0 = onFailure }
    }

    private static let failureHandler = Mutex<(@Sendable (String) -> Void)?>(nil)
    /// The process groups registered and not yet released: what a replacement guard is told.
    private static let registered = Mutex(Set<pid_t>())

    /// If the guard has died, starts another and registers with it every command still
    /// running; returns what happened, for the log (nil: nothing to do). Cheap: one waitpid.
    package static func replaceIfGone() -> String? {
        let pid = helper.load(ordering: .relaxed)
        guard pid > 0, pipe.load(ordering: .acquiring) >= 0 else { return nil }
        var status: Int32 = 0
        let reaped = waitpid(pid, &status, WNOHANG)
        guard reaped == pid || (reaped < 0 && errno == ECHILD) else { return nil }
        let fd = pipe.exchange(-1, ordering: .acquiringAndReleasing)
        if fd >= 0 { close(fd) }
        helper.store(0, ordering: .relaxed)
        do throws(GuardError) {
            try start()
        } catch {
            return
                "the command guard (pid \(pid)) died and another could not start (\(error.description)): if concurd is killed, commands of exec jobs run by threads or tasks workers live on"
        }
        let groups = registered.withLock { $0 }
        for group in groups { send(Int64(group)) }
        return
            "the command guard (pid \(pid)) died; a new one (pid \(helper.load(ordering: .relaxed))) watches the \(groups.count) command\(groups.count == 1 ? "" : "s") running"
    }

    /// Starts the guard if it is enabled and was not tried yet (the first command's thread).
    private static func startIfNeeded() {
        let failure = starting.withLock { (state: inout (enabled: Bool, tried: Bool)) -> String? in
            guard state.enabled && !state.tried else { return nil }
            state.tried = true
            do throws(GuardError) {
                try start()
                return nil
            } catch {
                return error.description
            }
        }
        if let failure, let handler = failureHandler.withLock({ $0 }) { handler(failure) }
    }

    /// Starts the guard process (once). Throws with the reason if it cannot be started; the
    /// daemon then runs without one (its log says so).
    package static func start() throws(GuardError) {
        guard pipe.load(ordering: .acquiring) < 0 else { return }
        var ends: [Int32] = [-1, -1]
        guard Glibc.pipe(&ends) == 0 else { throw GuardError("pipe: \(String(cString: strerror(errno)))") }
        for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let argv = (["concurd"] + helperArguments + ["--parent", String(getpid())]).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let result = concur_spawn(HelperBinary.path, argv, environ, ends[0], -1, 0, &pid)
        close(ends[0])
        guard result == 0 else {
            close(ends[1])
            throw GuardError("posix_spawn: \(String(cString: strerror(result)))")
        }
        // Room for records the guard takes in batches, and a write that never blocks the daemon.
        _ = concur_set_pipe_size(ends[1], 1 << 20)
        _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) | O_NONBLOCK)
        // The guard is not waited for while the daemon runs: it leaves when the daemon does.
        helper.store(pid, ordering: .relaxed)
        pipe.store(ends[1], ordering: .releasing)
    }

    /// At the end of a clean stop, once no command runs: closes the pipe and waits (up to a
    /// second) for the guard to leave, so that it is not left for systemd to kill.
    package static func stop() {
        let fd = pipe.exchange(-1, ordering: .acquiringAndReleasing)
        guard fd >= 0 else { return }
        close(fd)
        let pid = helper.exchange(0, ordering: .relaxed)
        guard pid > 0 else { return }
        for _ in 0..<100 {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) != 0 { return }
            usleep(10_000)
        }
    }

    /// Whether a guard watches the daemon's commands.
    package static var isRunning: Bool { pipe.load(ordering: .acquiring) >= 0 }

    /// Starts the guard, if it is enabled and not started yet: called before a command is
    /// spawned, so that the first one is watched from its first microseconds like the others.
    static func prepare() {
        if pipe.load(ordering: .acquiring) < 0 { startIfNeeded() }
    }

    /// Registers the process group of a command that just started (starting the guard first,
    /// if ``prepare()`` could not).
    static func watch(_ group: pid_t) {
        if pipe.load(ordering: .acquiring) < 0 { startIfNeeded() }
        // Held even while a replacement starts: the replacement is told of it then.
        registered.withLock { _ = $0.insert(group) }
        send(Int64(group))
    }

    /// Forgets a command's process group once it has ended and its group was killed.
    static func release(_ group: pid_t) {
        registered.withLock { _ = $0.remove(group) }
        send(-Int64(group))
    }

    private static func send(_ record: Int64) {
        let fd = pipe.load(ordering: .acquiring)
        guard fd >= 0 else { return }
        var value = record
        while write(fd, &value, MemoryLayout<Int64>.size) < 0 && errno == EINTR {}
    }

    /// The guard's life, in the helper process: serves fd 3 until the daemon `parentPID` is
    /// gone. It ignores the signals a terminal sends its foreground group, so a Ctrl-C meant
    /// for the daemon leaves it to do its work. Never returns.
    package static func serveAsHelper(parentPID: Int32) -> Never {
        signal(SIGINT, SIG_IGN)
        signal(SIGQUIT, SIG_IGN)
        signal(SIGHUP, SIG_IGN)
        concur_set_thread_name("concur-guard")
        // Even if the daemon died before the guard got here (its parent is then another), the
        // pipe still holds what the daemon registered, then end of file: the loop acts on both.
        _ = parentPID
        concur_guard_serve(3)
    }
}

/// The command guard could not be started.
package struct GuardError: Error, CustomStringConvertible {
    /// What failed.
    package let description: String

    init(_ description: String) { self.description = description }
}
