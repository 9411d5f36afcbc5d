import ConcurTestSupport
import Foundation
import Testing

/// A real OpenSSH server for one test, on a port of its own on 127.0.0.1, that lets root in with
/// a key made for the test; and the ssh client configuration that reaches it as host
/// `concur-test`.
///
/// It runs in a mount namespace of its own (`unshare --mount`) where /etc/passwd also names
/// the privilege-separation user `sshd` and /run is a fresh tmpfs, so the host's files are not
/// touched. Its binary is Debian's (/usr/sbin/sshd, or the copy scripts/install-deps fetches
/// into .test-tools/ without installing the package). Needs root. Ended by its PID.
final class SSHServer {
    let folder: URL
    /// The ssh command that reaches the server, for `$CONCUR_SSH`.
    let sshCommand: String
    private let child: ChildProcess

    /// The name the client configuration gives the server.
    static let host = "concur-test"

    init() throws {
        try #require(getuid() == 0, "the --host tests start an SSH server in a mount namespace: run them as root")
        let fetched = Binaries.packageRoot.appendingPathComponent(".test-tools/openssh")
        let (sshd, libraries): (String, String?) =
            FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd")
            ? ("/usr/sbin/sshd", nil)
            : (
                fetched.appendingPathComponent("usr/sbin/sshd").path,
                fetched.appendingPathComponent("usr/lib/x86_64-linux-gnu").path
            )
        try #require(
            FileManager.default.isExecutableFile(atPath: sshd), "no sshd at \(sshd): run scripts/install-deps, which fetches it")
        folder = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("concur-ssh-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.path
        for key in ["host_key", "user_key"] {
            let made = try runCommand(
                URL(fileURLWithPath: "/usr/bin/ssh-keygen"), ["-q", "-t", "ed25519", "-N", "", "-f", "\(path)/\(key)"])
            try #require(made.status == 0, "\(made)")
        }
        try FileManager.default.copyItem(atPath: "\(path)/user_key.pub", toPath: "\(path)/authorized_keys")
        let passwd = try String(contentsOfFile: "/etc/passwd", encoding: .utf8)
        try (passwd + "sshd:x:65534:65534::/run/sshd:/usr/sbin/nologin\n").write(
            toFile: "\(path)/passwd", atomically: true, encoding: .utf8)
        let port = try Self.freePort()
        try """
        Port \(port)
        ListenAddress 127.0.0.1
        HostKey \(path)/host_key
        PidFile \(path)/sshd.pid
        AuthorizedKeysFile \(path)/authorized_keys
        PermitRootLogin prohibit-password
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        UsePAM no
        StrictModes no
        MaxStartups 100:30:200
        PerSourceMaxStartups none

        """.write(toFile: "\(path)/sshd_config", atomically: true, encoding: .utf8)
        try """
        Host \(Self.host)
          HostName 127.0.0.1
          Port \(port)
          User root
          IdentityFile \(path)/user_key
          IdentitiesOnly yes
          UserKnownHostsFile \(path)/known_hosts
          StrictHostKeyChecking accept-new
          LogLevel ERROR

        """.write(toFile: "\(path)/ssh_config", atomically: true, encoding: .utf8)
        let environment = libraries.map { "env LD_LIBRARY_PATH=\($0) " } ?? ""
        try """
        mount --bind \(path)/passwd /etc/passwd && mount -t tmpfs concur-ssh /run && mkdir /run/sshd || exit 1
        exec \(environment)\(sshd) -D -e -f \(path)/sshd_config

        """.write(toFile: "\(path)/run.sh", atomically: true, encoding: .utf8)
        sshCommand = "/usr/bin/ssh -F \(path)/ssh_config"
        child = try ChildProcess(
            "/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "\(path)/run.sh"],
            stdout: .file("\(path)/log"), stderr: .file("\(path)/log"))
        let up = eventually(10) { self.log().contains("Server listening") || !self.child.isRunning }
        try #require(up && child.isRunning, "sshd did not start: \(log())")
    }

    deinit {
        child.signal(SIGKILL)
        _ = child.wait(timeout: 10)
        try? FileManager.default.removeItem(at: folder)
    }

    /// What sshd logged.
    func log() -> String { (try? String(contentsOfFile: folder.path + "/log", encoding: .utf8)) ?? "" }

    /// A TCP port on 127.0.0.1 that nothing listens on now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        try #require(bound == 0, "bind: \(errno)")
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
