import ConcurTestSupport
import Foundation
import Testing

/// `concurctl --host` through a real OpenSSH client and server (``SSHServer``), and `concurctl
/// bridge` under the independent Python Varlink client's own bridge mode.
@Suite("concurd on another host: --host over ssh, and bridge", .serialized)
struct RemoteHostTests {
    @Test("--host runs commands through ssh and concurctl bridge; ssh's and the bridge's failures say which")
    func overSSH() throws {
        let server = try SSHServer()
        let daemon = try TestDaemon(["--ephemeral", "--workers", "2"])
        var environment = ProcessInfo.processInfo.environment
        environment["CONCUR_SSH"] = server.sshCommand
        environment["CONCUR_REMOTE_CONCURCTL"] = Binaries.concurctl.path
        environment["CONCUR_SOCKET"] = nil
        func remote(_ arguments: [String], host: String = SSHServer.host, socket: String? = nil) throws -> CommandResult {
            let target = ["--host", host, "--socket", socket ?? daemon.socket]
            return try runCommand(
                Binaries.concurctl, [arguments[0]] + target + arguments.dropFirst(), environment: environment, timeout: 60)
        }
        let status = try remote(["status"])
        #expect(status.status == 0 && status.stdout.contains("pid \(daemon.pid)"), "\(status) \(server.log())")
        let submitted = try remote(["submit", "--jobs", "5", "--kind", "sleep", "--scale", "0.01", "--wait"])
        #expect(submitted.status == 0 && submitted.stdout.contains("5 done, 0 failed"), "\(submitted)")
        let resized = try remote(["resize", "--workers", "3"])
        #expect(resized.status == 0, "\(resized)")
        #expect(try daemon.status().workers.target == 3)
        // A stream lasts as long as it is read: three replies of stats --follow, then the client ends it.
        let followed = server.folder.path + "/follow.out"
        let follow = try ChildProcess(
            Binaries.concurctl.path,
            ["stats", "--follow", "--interval", "0.2", "--host", SSHServer.host, "--socket", daemon.socket],
            environment: environment, stdout: .file(followed), stderr: .file(followed))
        func lines() -> Int { ((try? String(contentsOfFile: followed, encoding: .utf8)) ?? "").split(separator: "\n").count }
        #expect(eventually(20) { lines() >= 4 }, "\((try? String(contentsOfFile: followed, encoding: .utf8)) ?? "")")
        follow.signal(SIGTERM)
        #expect(follow.wait(timeout: 10) != nil)
        // Its ssh, and the bridge on the other side, end with it.
        #expect(eventually(10) { Self.bridges(to: daemon.socket).isEmpty }, "\(Self.bridges(to: daemon.socket))")

        // Failures: ssh could not log in; the remote bridge found no concurd; a host ssh would
        // read as an option; no ssh at all.
        let refused = try remote(["status"], host: "no-such-user@\(SSHServer.host)")
        #expect(
            refused.status == 69 && refused.stderr.contains("concurctl: ssh to no-such-user@concur-test failed"), "\(refused)")
        // The key lets in an account whose shell is nologin: what it printed is not Varlink.
        let locked = try remote(["status"], host: "nobody@\(SSHServer.host)")
        #expect(locked.status == 69 && locked.stderr.contains("ended with status 1 before concurd answered"), "\(locked)")
        let missing = try remote(["status"], socket: daemon.socket + ".missing")
        #expect(missing.status == 69, "\(missing)")
        #expect(missing.stderr.contains("no concurd socket at \(daemon.socket).missing"), "\(missing)")
        #expect(missing.stderr.contains("concurctl bridge on concur-test could not reach concurd"), "\(missing)")
        let option = try runCommand(Binaries.concurctl, ["status", "--host=-oProxyCommand=sh"], environment: environment)
        #expect(option.status == 64 && option.stderr.contains("which ssh would read as an option"), "\(option)")
        let blank = try runCommand(Binaries.concurctl, ["status", "--host", "a b"], environment: environment)
        #expect(blank.status == 64 && blank.stderr.contains("no blanks"), "\(blank)")
        environment["CONCUR_SSH"] = "/nonexistent/ssh"
        let noSSH = try remote(["status"])
        #expect(noSSH.status == 69 && noSSH.stderr.contains("install the OpenSSH client"), "\(noSSH)")
        let both = try runCommand(Binaries.concurctl, ["bridge", "--host", "h"], environment: environment)
        #expect(both.status == 64 && both.stderr.contains("leave out --host"), "\(both)")
    }

    /// Processes whose command line names `socket` and `bridge`: ssh and the remote bridge.
    static func bridges(to socket: String) -> [String] {
        let processes = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return processes.filter { $0.allSatisfy(\.isNumber) }.compactMap { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let command = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\u{0}", with: " ")
            return command.contains("bridge") && command.contains(socket) ? "\(pid): \(command)" : nil
        }
    }

    @Test("the Python Varlink client calls concurd through concurctl bridge, its own --bridge transport")
    func pythonBridge() throws {
        let daemon = try TestDaemon(["--ephemeral", "--workers", "2"])
        let bridge = "\(Binaries.concurctl.path) bridge --socket \(daemon.socket)"
        let resized = try runCommand(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["python3", "-m", "varlink.cli", "-b", bridge, "call", "io.concur.Supervisor.Resize", #"{"workers": 3}"#])
        #expect(resized.status == 0 && resized.stdout.contains(#""previous": 2"#), "\(resized)")
        let info = try runCommand(
            URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-m", "varlink.cli", "-b", bridge, "info"])
        #expect(info.status == 0 && info.stdout.contains("Product: concurd"), "\(info)")
        // No socket: the bridge says so on standard error and relays nothing.
        let stranger = try runCommand(Binaries.concurctl, ["bridge", "--socket", "/nonexistent/control.sock"])
        #expect(stranger.status == 69 && stranger.stdout.isEmpty, "\(stranger)")
    }
}
