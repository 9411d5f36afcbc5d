import Glibc

/// `--host USER@HOST`: concurd on another host, reached as Varlink's own `ssh:` addresses reach
/// a service: `ssh -T USER@HOST concurctl bridge` runs there, and its standard input and output
/// are the connection (one end of a socket pair here). The remote `concurctl bridge` checks who
/// answers on that host's socket, so the check here is the remote one; OpenSSH authenticates
/// the host.
///
/// `$CONCUR_SSH` is the ssh command (default `ssh`, from PATH; words split at blanks, as in
/// `ssh -F ~/.ssh/concur.conf`) and `$CONCUR_REMOTE_CONCURCTL`
/// the concurctl to run there (default `concurctl`, from the remote PATH). ssh's own messages
/// (a host key, a refused login) go to this process's standard error as they come.
struct RemoteBridge {
    /// The host as given.
    let host: String
    /// The ssh process.
    let pid: pid_t

    /// The environment variable naming the ssh program.
    static let sshVariable = "CONCUR_SSH"
    /// The environment variable naming the concurctl on the remote host.
    static let remoteVariable = "CONCUR_REMOTE_CONCURCTL"

    /// Why `host` cannot be given to ssh, or nil: a leading `-` would be read as an option,
    /// and blanks or control characters split or hide it.
    static func problem(with host: String) -> String? {
        if host.isEmpty { return "give a host: --host HOST or --host USER@HOST" }
        if host.hasPrefix("-") { return "'\(host.prefix(64))' starts with '-', which ssh would read as an option" }
        if host.utf8.count > 255 { return "at most 255 bytes, not \(host.utf8.count)" }
        if host.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
            return "a host has no blanks or control characters"
        }
        return nil
    }

    /// The ssh command line: batch mode (no password prompt on a terminal it does not own, so
    /// keys or an agent), no pseudo-terminal and no escape character (the stream is binary).
    static func arguments(host: String, remoteArguments: [String], environment: (String) -> String?) -> [String] {
        let words = (environment(sshVariable) ?? "").split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        let ssh = words.isEmpty ? ["ssh"] : words
        let concurctl = environment(remoteVariable).flatMap { $0.isEmpty ? nil : $0 } ?? "concurctl"
        // The remote side runs the words through its shell: each is quoted.
        let command = ([concurctl, "bridge"] + remoteArguments).map(shellQuoted).joined(separator: " ")
        return ssh + ["-T", "-e", "none", "-o", "BatchMode=yes", "--", host, command]
    }

    /// `word` in single quotes for a POSIX shell.
    static func shellQuoted(_ word: String) -> String {
        "'" + word.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }

    /// Starts ssh to `host` with `remoteArguments` after `concurctl bridge`; returns the bridge
    /// and this side's end of the connection (owned by the caller).
    static func start(host: String, remoteArguments: [String]) throws(ClientFailure) -> (RemoteBridge, Int32) {
        if let problem = problem(with: host) {
            throw ClientFailure("--host: \(problem)", exitCode: ClientFailure.ExitStatus.usage)
        }
        let argv = arguments(host: host, remoteArguments: remoteArguments) { getenv($0).map { String(cString: $0) } }
        var ends: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw ClientFailure("--host: cannot make a socket pair: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, ends[1], 0)
        posix_spawn_file_actions_adddup2(&actions, ends[1], 1)
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, argv[0], &actions, nil, cArguments, environ)
        close(ends[1])
        guard result == 0 else {
            close(ends[0])
            throw ClientFailure(
                "--host: cannot run \(argv[0]) (\(String(cString: strerror(result)))): install the OpenSSH client, or name one in $\(sshVariable)",
                exitCode: ClientFailure.ExitStatus.unavailable)
        }
        return (RemoteBridge(host: host, pid: pid), ends[0])
    }

    /// What a connection that ended before its reply means: ssh could not log in, or the
    /// remote concurctl could not reach concurd (it said why on standard error, shown above).
    /// Waits for ssh to exit (it does, its connection closed) to tell which.
    func failure() -> ClientFailure {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        switch code {
        case 255:
            return ClientFailure(
                "ssh to \(host) failed (its message is above): check that `ssh \(host) concurctl --version` works without a password (BatchMode: keys or an agent)",
                exitCode: ClientFailure.ExitStatus.unavailable)
        case 127:
            return ClientFailure(
                "\(host) has no concurctl in its PATH: install concur there, or name it in $\(Self.remoteVariable)",
                exitCode: ClientFailure.ExitStatus.unavailable)
        case 0:
            return ClientFailure(
                "concurd on \(host) closed the connection (is it shutting down?)", exitCode: ClientFailure.ExitStatus.unavailable)
        case ClientFailure.ExitStatus.unavailable, ClientFailure.ExitStatus.permission:
            return ClientFailure(
                "concurctl bridge on \(host) could not reach concurd (its message is above; exit status \(code))",
                exitCode: code)
        default:
            return ClientFailure(
                "the command ssh ran on \(host) ended with status \(code) before concurd answered (see any message above; an account whose shell refuses logins, such as nologin, ends with 1)",
                exitCode: ClientFailure.ExitStatus.unavailable)
        }
    }
}
