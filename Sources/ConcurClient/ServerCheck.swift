import CConcurShims
import Glibc
import PathTrust

/// Who may answer on concurd's socket, as `concurctl` sees it: root, the owner of the socket's
/// directory (whoever could put a socket there), or a user the caller names; or anyone at all
/// if the socket is root's in a directory only root may change, because then root made it and
/// handed it over (systemd's socket activation: the service, a dynamic user, listens on a
/// socket systemd bound). The answering process's credentials come from the kernel
/// (SO_PEERCRED: those of the process that last called `listen`), so a process another user put
/// in concurd's place is told apart before a single call reaches it.
struct ServerCheck {
    /// The socket connected to.
    let socketPath: String
    /// A user trusted besides root and the directory's owner (`--server-user`).
    let serverUser: UInt32?

    /// The environment variable naming a user to trust besides root and the directory's owner.
    static let environmentVariable = "CONCUR_SERVER_USER"

    /// The user ids trusted to serve on the socket.
    var trusted: Set<UInt32> {
        var uids: Set<UInt32> = [0]
        if let owner = directoryOwner { uids.insert(owner) }
        if let serverUser { uids.insert(serverUser) }
        return uids
    }

    /// The socket's directory.
    var directory: String? {
        guard let slash = socketPath.lastIndex(of: "/") else { return nil }
        return slash == socketPath.startIndex ? "/" : String(socketPath[..<slash])
    }

    /// The owner of the socket's directory, if it can be read.
    var directoryOwner: UInt32? {
        guard let directory else { return nil }
        var info = stat()
        return stat(directory, &info) == 0 ? info.st_uid : nil
    }

    /// Whether only root could have made the socket: it is root's, in a directory that only
    /// root may change (and so are the directories above it).
    var madeByRoot: Bool {
        var info = stat()
        guard let directory, lstat(socketPath, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK, info.st_uid == 0 else {
            return false
        }
        return (try? PathTrust.check(directory, as: .directory, uid: 0)) != nil
    }

    /// Refuses the connection on `fd` unless its peer runs as a trusted user.
    func verify(_ fd: Int32) throws(ClientFailure) {
        var peer = concur_ucred()
        guard concur_peer_credentials(fd, &peer) == 0 else {
            throw ClientFailure(
                "cannot tell who answers on \(socketPath) (SO_PEERCRED: \(String(cString: strerror(errno)))); refusing to talk to it",
                exitCode: ClientFailure.ExitStatus.permission)
        }
        guard !trusted.contains(peer.uid), !madeByRoot else { return }
        let owner = directoryOwner.map { "uid \($0)" } ?? "unknown"
        throw ClientFailure(
            "refusing to talk to the process answering on \(socketPath) (pid \(peer.pid)): it runs as \(Self.describe(peer.uid)), "
                + "neither root nor the owner of the socket's directory (\(owner)), so it is not the concurd this socket belongs to. "
                + "If it is concurd, name its user with --server-user \(peer.uid) (or \(Self.environmentVariable))",
            exitCode: ClientFailure.ExitStatus.permission)
    }

    /// `uid 65534 (nobody)`.
    static func describe(_ uid: UInt32) -> String {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "uid \(uid)" }
        return "uid \(uid) (\(String(cString: name)))"
    }

    /// A user id from a name or a number, for `--server-user`; nil if there is no such user.
    static func userID(_ text: String) -> UInt32? {
        if let number = UInt32(text) { return number }
        return getpwnam(text).map { $0.pointee.pw_uid }
    }
}
