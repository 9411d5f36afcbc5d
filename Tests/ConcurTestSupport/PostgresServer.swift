import Foundation

/// A throwaway PostgreSQL server for tests: `initdb` into a new directory under /tmp and
/// `pg_ctl start` on a Unix socket of its own (no TCP), as the unprivileged `postgres` user when
/// the tests run as root (initdb refuses root), else as the test's own user.
///
/// The role `concur` (password ``password``, checked by SCRAM) owns the databases tests create;
/// `postgres` connects by trust for assertions through ``psql(_:database:)``. A password file for
/// `concur` is written to ``passwordFile`` in a root-owned folder, as concurd wants it. The
/// server ends by its `pg_ctl stop`, or by the PID in `postmaster.pid`, never by name: when
/// released, at exit for ``shared()``, and at the next start for servers a crashed test process
/// left behind (their directory names the PID that made them).
///
/// Missing PostgreSQL binaries make the test fail, with what to install, rather than skip.
package final class PostgresServer: @unchecked Sendable {
    /// The server's folder (owned by the server's user): `data`, `log` and the socket.
    package let directory: String
    /// The socket directory, as `?host=` takes it.
    package var socketDirectory: String { directory }
    /// A password file (0600) with the line for `concur`.
    package let passwordFile: String
    /// The password of the role `concur`.
    package let password = "concur-secret"
    private let client: TemporaryFolder
    private let binaries: String
    private let runAs: String?
    private var stopped = false

    /// The server every suite may share: one database per test keeps them apart.
    package static func shared() throws -> PostgresServer {
        try sharedServer.withLock { server in
            if let server { return server }
            let started = try PostgresServer()
            server = started
            atexit { PostgresServer.sharedServer.withLock { $0?.stop() } }
            return started
        }
    }
    private static let sharedServer = LockedValue<PostgresServer?>(nil)

    /// Starts a new server (about 1.5 s), its folder in `parent` (a small disk, say).
    package init(under parent: String = "/tmp") throws {
        binaries = try Self.findBinaries()
        runAs = geteuid() == 0 ? "postgres" : nil
        Self.removeLeftovers()
        var template = Array("\(parent)/concur-pg-\(getpid())-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw TestSupportError("mkdtemp: \(String(cString: strerror(errno)))")
        }
        directory = String(cString: made)
        client = try TemporaryFolder(prefix: "concur-pgpass")
        passwordFile = client.path + "/pgpass"
        if let runAs {
            guard let user = getpwnam(runAs) else {
                throw TestSupportError("there is no user \(runAs): install postgresql-15 (scripts/install-deps does)")
            }
            chown(directory, user.pointee.pw_uid, user.pointee.pw_gid)
        }
        do {
            try run("initdb", ["-D", "\(directory)/data", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            let hba = "local all concur scram-sha-256\nlocal all all trust\n"
            try run("sh", ["-c", "printf '%s' \"$1\" > \"$2\"", "sh", hba, "\(directory)/data/pg_hba.conf"], tool: false)
            try start()
            _ = try psql("CREATE ROLE concur LOGIN CREATEDB PASSWORD '\(password)'")
            try client.write(passwordFile, "\(directory):*:*:concur:\(password)\n", mode: 0o600)
        } catch {
            stop()
            throw error
        }
    }

    deinit { stop() }

    /// A URL for `database` on this server, as `concurd --store` takes it.
    package func url(database: String, user: String = "concur") -> String {
        "postgres://\(user)@/\(database)?host=\(directory)"
    }

    /// Creates a database owned by `concur`, named after the test.
    package func createDatabase(_ name: String) throws {
        _ = try psql("CREATE DATABASE \"\(name)\" OWNER concur")
    }

    /// Runs `sql` as `postgres` and returns psql's unaligned, tuples-only output, trimmed.
    @discardableResult
    package func psql(_ sql: String, database: String = "postgres") throws -> String {
        try run("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", directory, "-U", "postgres", "-d", database, "-Atc", sql])
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Stops the server (`-m fast`: sessions are ended, committed work stays) and starts it again.
    package func restart() throws {
        try run("pg_ctl", ["-D", "\(directory)/data", "-m", "fast", "-w", "stop"])
        try start()
    }

    /// The server's log (`pg_ctl -l`): with `log_statement` set, every statement it ran.
    package var logPath: String { "\(directory)/log" }

    /// Stops the server (`-m fast`) until ``bringBack()``: for a test of a store that went away.
    package func takeDown() throws {
        try run("pg_ctl", ["-D", "\(directory)/data", "-m", "fast", "-w", "stop"])
    }

    /// Starts a server ``takeDown()`` stopped, on the same socket and data.
    package func bringBack() throws {
        try start()
    }

    /// Stops the server for good and removes its folder. Safe to call twice.
    package func stop() {
        guard !stopped else { return }
        stopped = true
        if (try? run("pg_ctl", ["-D", "\(directory)/data", "-m", "fast", "-w", "-t", "20", "stop"])) == nil {
            Self.killPostmaster(in: directory)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func start() throws {
        let options = "-k \(directory) -c listen_addresses= -c fsync=off -c max_connections=100"
        try run("pg_ctl", ["-D", "\(directory)/data", "-l", "\(directory)/log", "-w", "-t", "30", "-o", options, "start"])
    }

    /// Runs a PostgreSQL program (or, with `tool: false`, a plain one) as the server's user.
    @discardableResult
    private func run(_ program: String, _ arguments: [String], tool: Bool = true) throws -> String {
        let executable = tool ? "\(binaries)/\(program)" : "/bin/\(program)"
        let argv = (runAs.map { ["/usr/sbin/runuser", "-u", $0, "--", executable] } ?? [executable]) + arguments
        // Output to a file, not a pipe: the postmaster pg_ctl starts inherits the descriptors,
        // and a pipe would never reach its end while the server runs. Signals are unblocked and
        // at their defaults in the child, whatever the test runner does with them.
        let outputPath = client.path + "/output-\(UInt64.random(in: 0...UInt64.max))"
        defer { unlink(outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
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
        var cArguments = argv.map { strdup($0) } + [nil]
        defer { for argument in cArguments { free(argument) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, argv[0], &actions, &attributes, &cArguments, environ)
        guard result == 0 else { throw TestSupportError("cannot start \(argv[0]): \(String(cString: strerror(result)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let exited = status & 0x7f == 0
        let code = (status >> 8) & 0xff
        guard exited && code == 0 else {
            throw TestSupportError("\(program) \(arguments.joined(separator: " ")) failed (status \(status)): \(text)")
        }
        return text
    }

    private static func findBinaries() throws -> String {
        let fixed = "/usr/lib/postgresql/15/bin"
        if access("\(fixed)/initdb", X_OK) == 0 { return fixed }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        for version in versions.sorted().reversed() where access("/usr/lib/postgresql/\(version)/bin/initdb", X_OK) == 0 {
            return "/usr/lib/postgresql/\(version)/bin"
        }
        throw TestSupportError("PostgreSQL's initdb is missing: install postgresql-15 (scripts/install-deps does)")
    }

    /// Stops servers whose test process died without stopping them: `/tmp/concur-pg-PID-*` with
    /// no process PID.
    private static func removeLeftovers() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []
        for name in names where name.hasPrefix("concur-pg-") {
            let fields = name.split(separator: "-")
            guard fields.count == 4, let pid = pid_t(fields[2]), kill(pid, 0) != 0, errno == ESRCH else { continue }
            killPostmaster(in: "/tmp/\(name)")
            try? FileManager.default.removeItem(atPath: "/tmp/\(name)")
        }
    }

    /// Ends the postmaster named by `postmaster.pid` (its first line) with SIGQUIT, then SIGKILL.
    private static func killPostmaster(in directory: String) {
        guard let text = try? String(contentsOfFile: "\(directory)/data/postmaster.pid", encoding: .utf8),
            let line = text.split(separator: "\n").first, let pid = pid_t(line), pid > 1
        else { return }
        kill(pid, SIGQUIT)
        for _ in 0..<50 where kill(pid, 0) == 0 { usleep(100_000) }
        kill(pid, SIGKILL)
    }
}

/// A value behind a lock, for test support that is shared across tests.
package final class LockedValue<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    package init(_ value: Value) { self.value = value }
    package func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
