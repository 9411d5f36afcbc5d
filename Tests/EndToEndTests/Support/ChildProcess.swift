import Foundation

/// A child process started with posix_spawn and reaped with waitpid, so tests see its exit at
/// once (Foundation's Process polls in 50 ms steps) and always end it by its PID.
final class ChildProcess {
    /// Where a standard stream goes.
    enum Output {
        /// A pipe the test reads.
        case pipe
        /// A file, created or truncated.
        case file(String)
        /// /dev/null.
        case null
    }

    let pid: pid_t
    private var exitStatus: Int32?
    private var readers: [Int32: Int32] = [:]  // child fd (1, 2) -> our read end
    private let collected = CollectedOutput()
    private let readersDone = DispatchGroup()

    /// Starts `executable` with `arguments`; `environment` nil inherits ours.
    init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdout: Output = .pipe,
        stderr: Output = .pipe
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var parentEnds: [Int32: Int32] = [:]
        var childEnds: [Int32] = []
        for (fd, output) in [(Int32(1), stdout), (Int32(2), stderr)] {
            switch output {
            case .pipe:
                // A socket pair made close-on-exec atomically, so that a child another test spawns
                // at the same moment cannot inherit it (and keep our reader from seeing EOF).
                var ends: [Int32] = [0, 0]
                guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
                    throw TestFailure("socketpair: \(errno)")
                }
                posix_spawn_file_actions_adddup2(&actions, ends[1], fd)
                parentEnds[fd] = ends[0]
                childEnds.append(ends[1])
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, fd, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            case .null:
                posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0)
            }
        }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let environmentStrings =
            (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in environmentStrings { free(pointer) } }
        // A clean start, whatever this test process blocked or ignored (in-process tests block
        // signals for their own watchers): an empty mask and default dispositions. A tmux server
        // that inherited a blocked SIGCHLD never noticed its shell exit and outlived its test.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environmentStrings)
        for fd in childEnds { close(fd) }
        guard result == 0 else {
            for fd in parentEnds.values { close(fd) }
            throw TestFailure("cannot start \(executable): \(String(cString: strerror(result)))")
        }
        self.pid = pid
        self.readers = parentEnds
        for (fd, readEnd) in parentEnds {
            readersDone.enter()
            let collected = collected
            let done = readersDone
            DispatchQueue.global().async {
                var data = [UInt8]()
                var chunk = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let count = chunk.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
                    if count < 0 && errno == EINTR { continue }
                    if count <= 0 { break }
                    data.append(contentsOf: chunk[0..<count])
                    collected.set(String(decoding: data, as: UTF8.self), isError: fd == 2)
                }
                close(readEnd)
                done.leave()
            }
        }
    }

    deinit {
        if isRunning {
            kill(pid, SIGKILL)
            _ = wait(timeout: 10)
        }
    }

    /// Whether it has not exited yet (reaps it if it has).
    var isRunning: Bool {
        guard exitStatus == nil else { return false }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        guard result == pid else { return result == 0 }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, spelled out: the macros are not imported.
        let signal = status & 0x7F
        exitStatus = signal == 0 ? (status >> 8) & 0xFF : 128 + signal
        return false
    }

    /// Waits up to `timeout` seconds; returns the exit status (128 + n for signal n), or nil.
    func wait(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning {
            guard Date() < deadline else { return nil }
            usleep(1_000)
        }
        return exitStatus
    }

    /// Sends `signal` to the child by its PID.
    func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Everything written to its piped stdout and stderr; waits for both to close.
    func output() -> (stdout: String, stderr: String) {
        readersDone.wait()
        return (collected.stdout, collected.stderr)
    }
}

/// What a finished command printed and returned.
struct CommandResult: CustomStringConvertible {
    let status: Int32
    let stdout: String
    let stderr: String

    var description: String { "exit \(status)\nstdout:\n\(stdout)\nstderr:\n\(stderr)" }

    /// The stdout lines, without empty ones.
    var lines: [String] { stdout.split(separator: "\n").map(String.init) }
}

/// Runs a command to its end (in `directory`, if given). After `timeout` seconds it is killed by
/// its PID and the test fails.
func runCommand(
    _ executable: URL, _ arguments: [String], environment: [String: String]? = nil, timeout: Double = 60,
    directory: String? = nil
) throws -> CommandResult {
    // In `directory`: through a shell that enters it and becomes the command.
    let child =
        try directory.map {
            try ChildProcess(
                "/bin/sh", ["-c", "cd \"$0\" && exec \"$@\"", $0, executable.path] + arguments, environment: environment)
        } ?? ChildProcess(executable.path, arguments, environment: environment)
    guard let status = child.wait(timeout: timeout) else {
        child.signal(SIGKILL)
        _ = child.wait(timeout: 10)
        throw TestFailure("\(executable.lastPathComponent) \(arguments.joined(separator: " ")) did not finish in \(timeout) s")
    }
    let (stdout, stderr) = child.output()
    return CommandResult(status: status, stdout: stdout, stderr: stderr)
}

/// Output gathered from reader threads.
final class CollectedOutput: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var out = ""
    private var err = ""

    func set(_ text: String, isError: Bool) {
        lock.withLock {
            if isError { err = text } else { out = text }
        }
    }

    var stdout: String { lock.withLock { out } }
    var stderr: String { lock.withLock { err } }
}

/// A test failure with a message.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
