import ConcurProtocol
import ConcurTestSupport
import Foundation
import Testing
import Varlink

/// What concurd and concurctl trust: only what root or their own user could have put on disk or
/// on the socket, and what a job may do is decided when it runs. A user made for the test plays
/// the other user.
@Suite("Trust: foreign files, foreign servers, exec decided at run time", .serialized, .enabled(if: getuid() == 0))
struct TrustTests {
    /// A folder for one test (root's, 0755), removed afterwards.
    typealias Folder = DurabilityTests.Folder

    /// Leaves one exec job (it would create the marker) queued in `folder.state`, as a daemon
    /// that allowed exec left it at a graceful stop.
    static func queueExecJob(_ folder: Folder) throws {
        let daemon = try TestDaemon(["--allow-exec", "--workers", "1"], stateDirectory: folder.state)
        #expect(try daemon.ctl(["pause"]).status == 0)
        let submitted = try daemon.ctl(["submit", "--exec", "--", "/usr/bin/touch", folder.marker])
        #expect(submitted.status == 0, "\(submitted)")
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit() == 0, "\(daemon.log())")
    }

    static func start(_ folder: Folder, _ arguments: [String] = []) throws -> CommandResult {
        try runCommand(
            Binaries.concurd, ["--socket", folder.socket, "--state-directory", folder.state] + arguments, timeout: 20)
    }

    @Test("a state directory another user owns, or may write, is refused; the exec job planted there never runs")
    func foreignStateDirectory() throws {
        let folder = try Folder()
        let foreign = try ForeignUser()
        try Self.queueExecJob(folder)
        try foreign.own(folder.state)
        let owned = try Self.start(folder)
        #expect(owned.status == 1, "\(owned)")
        #expect(
            owned.stderr.contains("refusing the state directory: \(folder.state) belongs to another user (uid \(foreign.uid))"),
            "\(owned)")
        #expect(owned.stderr.contains("chown root \(folder.state)"), "\(owned)")
        // Back to root's, but writable by anyone: refused too.
        #expect(try runCommand(URL(fileURLWithPath: "/bin/chown"), ["-R", "0:0", folder.state]).status == 0)
        #expect(chmod(folder.state, 0o777) == 0)
        let open = try Self.start(folder)
        #expect(open.status == 1 && open.stderr.contains("is writable by its group or by others (mode 777)"), "\(open)")
        #expect(!folder.markerExists, "the planted job ran")

        // Made private again, it starts; exec is not allowed now, so the queued command fails
        // when it comes up, with the reason, and never runs.
        #expect(chmod(folder.state, 0o700) == 0)
        let daemon = try TestDaemon(["--workers", "1"], socket: folder.socket, stateDirectory: folder.state)
        #expect(
            try eventually(20) {
                let job = try daemon.ctlJSON(["jobs", "1"])
                return "\(job)".contains("\"failed\"")
            })
        let job = try daemon.ctl(["jobs", "1"])
        #expect(job.stdout.contains("exec jobs are not allowed"), "\(job)")
        #expect(!folder.markerExists, "a command queued while exec was allowed ran without --allow-exec")
    }

    @Test("a socket directory another user owns, may write, or reaches through a link of theirs is refused")
    func foreignSocketDirectory() throws {
        let folder = try Folder()
        let foreign = try ForeignUser()
        let run = folder.path + "/run"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        try foreign.own(run)
        var refused = try runCommand(Binaries.concurd, ["--socket", folder.socket, "--ephemeral"], timeout: 20)
        #expect(refused.status == 1, "\(refused)")
        #expect(
            refused.stderr.contains("refusing the socket's directory: \(run) belongs to another user (uid \(foreign.uid))"),
            "\(refused)")
        _ = chown(run, 0, 0)
        #expect(chmod(run, 0o777) == 0)
        refused = try runCommand(Binaries.concurd, ["--socket", folder.socket, "--ephemeral"], timeout: 20)
        #expect(refused.status == 1 && refused.stderr.contains("is writable by its group or by others"), "\(refused)")
        #expect(chmod(run, 0o700) == 0)
        // A link the other user made, to a directory of root's: refused (they could point it elsewhere).
        let link = folder.path + "/link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: run)
        #expect(lchown(link, foreign.uid, foreign.gid) == 0)
        refused = try runCommand(Binaries.concurd, ["--socket", link + "/control.sock", "--ephemeral"], timeout: 20)
        #expect(refused.status == 1 && refused.stderr.contains("\(link) is a symbolic link made by another user"), "\(refused)")
        // The same directory, root's and private, is fine.
        let daemon = try TestDaemon(["--ephemeral"], socket: folder.socket)
        #expect(try daemon.ctl(["status"]).status == 0)
    }

    @Test("a config file another user owns or may write is refused at start; a reload from it keeps the configuration")
    func foreignConfigFile() throws {
        let folder = try Folder()
        let foreign = try ForeignUser()
        let config = folder.path + "/concurd.toml"
        try "allow_exec = true\nworkers = 1\n".write(toFile: config, atomically: true, encoding: .utf8)
        try foreign.own(config)
        let owned = try Self.start(folder, ["--config", config])
        #expect(owned.status == 2, "a configuration error: \(owned)")
        #expect(
            owned.stderr.contains(
                "concurd does not trust its config file: \(config) belongs to another user (uid \(foreign.uid))"),
            "\(owned)")
        _ = chown(config, 0, 0)
        #expect(chmod(config, 0o666) == 0)
        let open = try Self.start(folder, ["--config", config])
        #expect(open.status == 2 && open.stderr.contains("\(config) is writable by its group or by others (mode 666)"), "\(open)")
        // A link of the other user's to a file of root's: refused, it could point elsewhere later.
        #expect(chmod(config, 0o644) == 0)
        let link = folder.path + "/linked.toml"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: config)
        #expect(lchown(link, foreign.uid, foreign.gid) == 0)
        let linked = try Self.start(folder, ["--config", link])
        #expect(linked.status == 2 && linked.stderr.contains("\(link) is a symbolic link made by another user"), "\(linked)")

        // Started from a trusted file without exec; the file then changes hands and turns exec
        // on: the reload (by concurctl or SIGHUP) keeps what runs, and says why.
        try "workers = 1\n".write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try TestDaemon(["--config", config], socket: folder.socket, stateDirectory: folder.state)
        try "allow_exec = true\nworkers = 1\n".write(toFile: config, atomically: true, encoding: .utf8)
        try foreign.own(config)
        let reload = try daemon.ctl(["reload"])
        #expect(reload.status == 1, "\(reload)")
        #expect(
            reload.stderr.contains("concurd kept its configuration: concurd does not trust its config file: \(config) belongs"),
            "\(reload)")
        daemon.signal(SIGHUP)
        #expect(eventually { daemon.log().contains("does not trust its config file") }, "\(daemon.log())")
        let exec = try daemon.ctl(["submit", "--exec", "--", "/usr/bin/touch", folder.marker])
        #expect(exec.status == 1 && exec.stderr.contains("exec"), "\(exec)")
        #expect(!folder.markerExists)
    }

    @Test("a reload that turns exec off: exec jobs already queued fail when they come up, with the reason")
    func reloadTurnsExecOff() throws {
        let folder = try Folder()
        let config = folder.path + "/concurd.toml"
        try "allow_exec = true\nworkers = 1\n".write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try TestDaemon(["--config", config], socket: folder.socket, stateDirectory: folder.state)
        #expect(try daemon.ctl(["pause"]).status == 0)
        #expect(try daemon.ctl(["submit", "--exec", "--", "/usr/bin/touch", folder.marker]).status == 0)
        try "allow_exec = false\nworkers = 1\n".write(toFile: config, atomically: true, encoding: .utf8)
        let reload = try daemon.ctl(["reload"])
        #expect(reload.status == 0, "\(reload)")
        #expect(try daemon.ctl(["resume"]).status == 0)
        #expect(try eventually(20) { try daemon.status().totals.failed == 1 })
        #expect(try daemon.ctl(["jobs", "1"]).stdout.contains("exec jobs are not allowed"))
        #expect(!folder.markerExists, "the command ran after exec was turned off")
    }

    @Test("concurctl refuses a server that is neither root nor the socket directory's owner, unless told to trust it")
    func impostor() throws {
        let folder = try Folder()
        let foreign = try ForeignUser()
        // A directory anyone may write (a misconfiguration): another user puts a listener there.
        let open = folder.path + "/open"
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: true)
        #expect(chmod(open, 0o1777) == 0)
        let socket = open + "/control.sock"
        let script = Binaries.clients.appendingPathComponent("attack_client.py").path
        let impostor = try ChildProcess(
            "/usr/bin/setpriv", foreign.setpriv + ["/usr/bin/env", "python3", script, "impostor", socket, "30"])
        defer {
            impostor.signal(SIGKILL)
            _ = impostor.wait(timeout: 10)
        }
        #expect(eventually(10) { FileManager.default.fileExists(atPath: socket) })
        let refused = try runCommand(Binaries.concurctl, ["status", "--socket", socket])
        #expect(refused.status == 77, "\(refused)")
        #expect(refused.stderr.contains("refusing to talk to the process answering on \(socket)"), "\(refused)")
        #expect(refused.stderr.contains("it runs as uid \(foreign.uid) (\(foreign.name))"), "\(refused)")
        #expect(refused.stderr.contains("--server-user \(foreign.uid)"), "\(refused)")
        // Told to trust that user, concurctl talks to it (and shows what it answered).
        let trusted = try runCommand(Binaries.concurctl, ["status", "--socket", socket, "--server-user", foreign.name])
        #expect(trusted.status == 1 && trusted.stderr.contains("org.example.Impostor"), "\(trusted)")
        let fromEnvironment = try runCommand(
            Binaries.concurctl, ["status", "--socket", socket],
            environment: ProcessInfo.processInfo.environment.merging(["CONCUR_SERVER_USER": String(foreign.uid)]) { $1 })
        #expect(fromEnvironment.stderr.contains("org.example.Impostor"), "\(fromEnvironment)")
        let unknown = try runCommand(Binaries.concurctl, ["status", "--socket", socket, "--server-user", "no-such-user-x"])
        #expect(unknown.status == 64 && unknown.stderr.contains("no user 'no-such-user-x'"), "\(unknown)")
    }
}

extension DurabilityTests.Folder {
    /// A file an exec job creates: it exists only if the job ran.
    var marker: String { path + "/marker" }
    /// The control socket, in a directory of its own.
    var socket: String { path + "/run/control.sock" }
    var markerExists: Bool { FileManager.default.fileExists(atPath: marker) }
}
