import ConcurProtocol
import ConcurTestSupport
import Foundation
import Testing
import Varlink

/// A real `concurd` on a temporary socket, for one test. It is ended by its PID when the test
/// is over (SIGKILL if it is still running), and its folder is removed.
final class TestDaemon {
    let directory: URL
    let socket: String
    let logFile: URL
    private let child: ChildProcess

    /// Starts `concurd serve` with `arguments` (plus `--socket`, a fresh one unless given, and
    /// `--state-directory`: `stateDirectory`, else one in its folder, unless `--ephemeral` is
    /// among the arguments) and waits until it serves.
    init(
        _ arguments: [String] = [], socket: String? = nil, stateDirectory: String? = nil,
        environment extra: [String: String] = [:], waitForSocket: Bool = true
    ) throws {
        try Binaries.check()
        directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "concur-e2e-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.socket = socket ?? directory.appendingPathComponent("run/control.sock").path
        logFile = directory.appendingPathComponent("concurd.log")
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = nil
        environment["SWIFT_BACKTRACE"] = "enable=no"
        for (key, value) in extra { environment[key] = value }
        var arguments = arguments
        if !arguments.contains("--ephemeral") && !arguments.contains("--state-directory") {
            arguments += ["--state-directory", stateDirectory ?? directory.appendingPathComponent("state").path]
        }
        child = try ChildProcess(
            Binaries.concurd.path, ["--socket", self.socket] + arguments, environment: environment, stdout: .file(logFile.path),
            stderr: .file(logFile.path))
        if waitForSocket {
            // "serving on" is logged once the socket is fully set up (mode included) and accepts.
            let up = eventually(20) { log().contains("serving on ") || !child.isRunning }
            try #require(up && child.isRunning, "concurd did not start:\n\(log())")
        }
    }

    deinit {
        child.signal(SIGKILL)
        _ = child.wait(timeout: 10)
        try? FileManager.default.removeItem(at: directory)
    }

    var pid: Int32 { child.pid }

    /// Runs `concurctl` against this daemon.
    func ctl(_ arguments: [String], timeout: Double = 60) throws -> CommandResult {
        guard let subcommand = arguments.first else { return try runCommand(Binaries.concurctl, []) }
        return try runCommand(Binaries.concurctl, [subcommand, "--socket", socket] + arguments.dropFirst(), timeout: timeout)
    }

    /// `concurctl ARGS --json`, parsed.
    func ctlJSON(_ arguments: [String]) throws -> JSONObject {
        let result = try ctl(arguments + ["--json"])
        try #require(result.status == 0, "\(arguments): \(result)")
        guard case .object(let object) = try JSON.parse(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestFailure("not a JSON object: \(result.stdout)")
        }
        return object
    }

    /// The daemon's status through the real client.
    func status() throws -> PoolStatus {
        try PoolStatus(json: ctlJSON(["status"])["status"] ?? .null, path: "status")
    }

    /// Sends a signal by PID.
    func signal(_ number: Int32) {
        child.signal(number)
    }

    /// Waits for the daemon to exit; returns its status, or nil if it still ran after `timeout`.
    func waitForExit(timeout: Double = 30) -> Int32? {
        child.wait(timeout: timeout)
    }

    /// What the daemon logged so far.
    func log() -> String {
        (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
    }

    /// Starts `concurctl ARGS` against this daemon in the background (e.g. `submit --wait`).
    func startCtl(_ arguments: [String]) throws -> ChildProcess {
        try ChildProcess(Binaries.concurctl.path, [arguments[0], "--socket", socket] + arguments.dropFirst(), stderr: .pipe)
    }
}

extension ChildProcess {
    /// Waits for the end; returns the exit status and what it printed on stdout, or nil after
    /// `timeout` seconds.
    func finish(timeout: Double = 60) -> (status: Int32, output: String)? {
        guard let status = wait(timeout: timeout) else { return nil }
        return (status, output().stdout)
    }
}

/// A file whose creation ends the jobs that wait on it: the test, not the clock, decides when a
/// job finishes, so no step races the job's end however slow the machine is.
final class Gate {
    /// The file the jobs wait for.
    let path = NSTemporaryDirectory() + "concur-gate-\(UUID().uuidString.prefix(8))"

    /// `concurctl submit` arguments for an exec job that runs until the gate opens (the daemon
    /// needs `--allow-exec`).
    var job: [String] { ["submit", "--exec", "--", "sh", "-c", "until [ -e \(path) ]; do sleep 0.02; done"] }

    /// Lets every job waiting on the gate finish.
    func open() {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}
