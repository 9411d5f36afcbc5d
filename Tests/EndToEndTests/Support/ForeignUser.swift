import Foundation

/// A user made for one test (neither root nor anyone the daemon trusts), removed when released.
final class ForeignUser {
    let name: String
    let uid: UInt32
    let gid: UInt32

    init() throws {
        name = "concurtest\(UUID().uuidString.prefix(6).lowercased())"
        let made = try runCommand(
            URL(fileURLWithPath: "/usr/sbin/useradd"), ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
        guard made.status == 0 else { throw TestFailure("useradd \(name): \(made)") }
        guard let entry = getpwnam(name) else { throw TestFailure("no user \(name) after useradd") }
        uid = entry.pointee.pw_uid
        gid = entry.pointee.pw_gid
    }

    deinit {
        _ = try? runCommand(URL(fileURLWithPath: "/usr/sbin/userdel"), [name])
    }

    /// Hands `path` (and everything below it) to this user.
    func own(_ path: String) throws {
        let result = try runCommand(URL(fileURLWithPath: "/bin/chown"), ["-R", "\(uid):\(gid)", path])
        guard result.status == 0 else { throw TestFailure("chown \(path): \(result)") }
    }

    /// `setpriv` arguments that run a command as this user.
    var setpriv: [String] { ["--reuid=\(uid)", "--regid=\(gid)", "--clear-groups"] }
}
