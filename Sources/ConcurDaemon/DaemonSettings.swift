import ConcurJournal
import ConcurProtocol
import ConcurRuntime
import Logging
import StoreAccess

/// Every setting of concurd, once, in the order of docs/operations.md. Defaults are ``DaemonConfiguration``'s
/// initial values; the flags themselves are declared in ``ConcurdCommand/Serve`` (the argument
/// parser needs them written out), and `DaemonSettingsTests` checks that the two agree.
enum DaemonSettings {
    typealias Limits = DaemonConfiguration.Limits

    /// Every setting, in the order of docs/operations.md.
    static var all: [DaemonSetting] { pool + journal + store + jobsAndWorkers + control }

    /// The socket and the pool's size and limits.
    private static var pool: [DaemonSetting] {
        [
            .text(
                "socket", "--socket", \.socket, placeholder: "PATH", reload: .restart, meaning: "the control socket",
                defaultText: "see below",
                check: { configuration, fail throws(ConfigurationError) in
                    guard let socket = configuration.socket else { return }
                    guard socket.hasPrefix("/") else { throw fail("must be an absolute path, not '\(socket)'") }
                    guard socket.utf8.count < 108 else {
                        throw fail("is longer than 107 bytes, the limit of a Unix socket address")
                    }
                }),
            .integer(
                "workers", "--workers", \.workers, range: nil, reload: .live,
                meaning: "workers at start (1 to `--max-workers`)",
                extraCheck: { configuration, fail throws(ConfigurationError) in
                    // Checked against max_workers only once that is valid itself.
                    guard Limits.maxWorkers.contains(configuration.maxWorkers) else { return }
                    guard (1...configuration.maxWorkers).contains(configuration.workers) else {
                        throw fail(
                            "must be between 1 and \(configuration.maxWorkers) (the max workers), not \(configuration.workers)")
                    }
                }),
            .choice(
                "model", "--model", \.model, reload: .live,
                meaning:
                    "the concurrency model at start: `threads`, `processes` or `tasks` (switch later with `concurctl model`)",
                extraCheck: { configuration, fail throws(ConfigurationError) in
                    let available = DaemonConfiguration.availableModels
                    guard available.contains(configuration.model) else {
                        throw fail(
                            "\(configuration.model.rawValue) is not available in this version; use \(available.map(\.rawValue).joined(separator: " or "))"
                        )
                    }
                }),
            .integer(
                "max_queue", "--max-queue", \.maxQueue, range: Limits.maxQueue, reload: .live,
                meaning: "queued jobs beyond this are refused with `QueueFull`"),
            .integer(
                "max_workers", "--max-workers", \.maxWorkers, range: Limits.maxWorkers, reload: .live,
                meaning: "the largest pool a resize may ask for (up to 4096)"),
            .seconds(
                "drain_timeout", "--drain-timeout", \.drainTimeout, range: Limits.drainTimeout,
                rangeText: "between 0 and 86400 seconds", reload: .live,
                meaning: "seconds running jobs get after SIGTERM before they are interrupted"),
            .integer(
                "retain_jobs", "--retain-jobs", \.retainJobs, range: Limits.retainJobs, reload: .live,
                meaning: "finished jobs kept for `concurctl jobs` (in memory and in the journal)"),
        ]
    }

    /// The job journal: retention, place, durability.
    private static var journal: [DaemonSetting] {
        [
            .seconds(
                "retain_age", "--retain-age", \.retainAge, range: Limits.retainAge,
                rangeText: "between 1 second and 10 years (315360000)", reload: .live,
                meaning: "seconds finished jobs are kept, besides their count (1 s to 10 years)"),
            .text(
                "state_directory", "--state-directory", \.stateDirectory, placeholder: "DIR", reload: .restart,
                meaning:
                    "where the job journal lives: `$STATE_DIRECTORY` under systemd, else `/var/lib/concurd` for root, `$XDG_STATE_HOME/concurd` or `~/.local/state/concurd` for others",
                defaultText: "see below",
                check: { configuration, fail throws(ConfigurationError) in
                    guard let directory = configuration.stateDirectory else { return }
                    guard directory.hasPrefix("/") else { throw fail("must be an absolute path, not '\(directory)'") }
                    guard directory.utf8.count <= 4000 else { throw fail("is longer than 4000 bytes") }
                    guard !configuration.ephemeral else {
                        throw ConfigurationError(
                            "--ephemeral and --state-directory (config keys 'ephemeral' and 'state_directory') contradict each other: an ephemeral concurd keeps no journal; drop one"
                        )
                    }
                }),
            .toggle(
                "ephemeral", "--ephemeral", \.ephemeral, reload: .restart,
                meaning: "no journal: jobs live in memory only (a stop cancels queued jobs, a crash loses them)"),
            .choice(
                "journal_sync", "--journal-sync", \.journalSync, reload: .restart,
                meaning:
                    "`normal`: the journal survives a crash or `kill -9` of concurd; `full`: a power loss too (an fsync per commit)"
            ),
        ]
    }

    /// The queue shared with other nodes in PostgreSQL, and this node's place in it.
    private static var store: [DaemonSetting] {
        [
            .text(
                "store", "--store", \.store, placeholder: "URL", reload: .restart,
                meaning:
                    "a PostgreSQL queue shared with other concurd nodes: `postgres://USER@HOST/DB`, a local server's socket as `?host=/run/postgresql` (the password never here: see `--store-password-file`)",
                defaultText: "none: the SQLite journal",
                check: { configuration, fail throws(ConfigurationError) in
                    guard let store = configuration.store else { return }
                    do throws(StoreAddressError) {
                        _ = try StoreAddress(parsing: store, defaultUser: "concur")
                    } catch {
                        throw fail("cannot be used (\(error.url)): \(error.problem)")
                    }
                    guard !configuration.ephemeral else {
                        throw ConfigurationError(
                            "--ephemeral and --store (config keys 'ephemeral' and 'store') contradict each other: a node of a shared store keeps its jobs there; drop one"
                        )
                    }
                }),
            .text(
                "store_password_file", "--store-password-file", \.storePasswordFile, placeholder: "FILE", reload: .restart,
                meaning:
                    "the store's password, as a libpq password file (`HOST:PORT:DB:USER:PASSWORD` lines, mode 0600); without it `PGPASSFILE`, then `~/.pgpass`",
                defaultText: "none",
                check: { configuration, fail throws(ConfigurationError) in
                    guard let file = configuration.storePasswordFile else { return }
                    guard file.hasPrefix("/") else { throw fail("must be an absolute path, not '\(file)'") }
                }),
            .text(
                "node", "--node", \.node, placeholder: "NAME", reload: .restart,
                meaning: "this node's name in the shared store (1 to 63 of a-z, A-Z, 0-9, `.`, `_`, `-`)",
                defaultText: "the host name",
                check: { configuration, fail throws(ConfigurationError) in
                    guard let node = configuration.node else { return }
                    let allowed = node.utf8.allSatisfy { byte in
                        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                            || byte == 0x2E || byte == 0x5F || byte == 0x2D
                    }
                    guard (1...63).contains(node.utf8.count) && allowed else {
                        throw fail("must be 1 to 63 of a-z, A-Z, 0-9, '.', '_' and '-', not '\(node.prefix(80))'")
                    }
                }),
            .seconds(
                "lease_timeout", "--lease-timeout", \.leaseTimeout, range: Limits.leaseTimeout,
                rangeText: "between 2 and 3600 seconds", reload: .restart,
                meaning:
                    "seconds a node of a shared store may go without a heartbeat before another runs its jobs again (2 to 3600)"),
        ]
    }

    /// What jobs may do and how workers run.
    private static var jobsAndWorkers: [DaemonSetting] {
        [
            .integer(
                "max_attempts", "--max-attempts", \.maxAttempts, range: Limits.maxAttempts, reload: .live,
                meaning: "attempts a job gets when the worker running it dies (1 to 100); then it fails"),
            .optionalSeconds(
                "job_timeout", "--job-timeout", \.jobTimeout, range: JobLimits.timeout,
                rangeText: "between 0.001 and 86400 seconds", reload: .live,
                meaning: "seconds a job may run unless it sets its own `timeout`; past it the job is stopped and fails",
                defaultText: "none"),
            .toggle(
                "allow_exec", "--allow-exec", \.allowExec, reload: .live,
                meaning: "accept `exec` jobs (they run commands as the daemon's user)"),
            .integer(
                "max_output", "--max-output", \.maxOutput, range: Limits.maxOutput, reload: .restart,
                meaning:
                    "bytes kept of each stream (stdout, stderr) of an exec job (4096 to 2^30): past it the head and the tail stay, the middle is cut"
            ),
            .integer(
                "max_output_total", "--max-output-total", \.maxOutputTotal, range: Limits.maxOutputTotal, reload: .live,
                meaning: "bytes of output kept for all jobs (2^20 to 2^40): past it the oldest finished jobs' output is removed"),
            .optionalInteger(
                "task_threads", "--task-threads", \.taskThreads, range: Limits.taskThreads, reload: .restart,
                meaning: "threads the tasks model's worker tasks share (1 to 256)", defaultText: "cores"),
            .integer(
                "worker_nice", "--worker-nice", \.workerNice, range: Limits.workerNice, reload: .restart,
                meaning: "nice levels the workers run below the control plane (0 to 19; 0: the same priority)"),
            .choice(
                "start_method", "--start-method", \.startMethod, reload: .restart,
                meaning:
                    "how the processes model starts a child: `spawn` (a fresh process) or `forkserver` (a fork of a helper made at start)"
            ),
        ]
    }

    /// The control socket's clients, the log, and what only tests use.
    private static var control: [DaemonSetting] {
        [
            .seconds(
                "idle_timeout", "--idle-timeout", \.idleTimeout, range: Limits.idleTimeout,
                rangeText: "between 1 and 86400 seconds", reload: .restart,
                meaning:
                    "seconds a connection may stay silent (a half-sent message included) with no call running before it is closed (1 to 86400)"
            ),
            .seconds(
                "watcher_timeout", "--watcher-timeout", \.watcherTimeout, range: Limits.watcherTimeout,
                rangeText: "between 1 and 3600 seconds", reload: .restart,
                meaning:
                    "seconds a client may leave its replies unread (a stuck `stats --follow`) before it is disconnected (1 to 3600)"
            ),
            .choice(
                "log_level", "--log-level", \.logLevel, placeholder: "L", reload: .live,
                meaning: "`trace`, `debug`, `info`, `notice`, `warning`, `error`, `critical`"),
            .names(
                "allowed_users", \.allowedUsers, reload: .live,
                check: { configuration throws(ConfigurationError) in
                    for user in configuration.allowedUsers where AccessPolicy.userID(user) == nil {
                        throw ConfigurationError(
                            "allowed_users: there is no user '\(user)' on this machine; create it or remove it from the list")
                    }
                }),
            .names(
                "allowed_groups", \.allowedGroups, reload: .live,
                check: { configuration throws(ConfigurationError) in
                    for group in configuration.allowedGroups where AccessPolicy.groupID(group) == nil {
                        throw ConfigurationError(
                            "allowed_groups: there is no group '\(group)' on this machine; create it (groupadd --system \(group)) or remove it from the list"
                        )
                    }
                }),
            .toggle(
                "test_hooks", "--test-hooks", \.testHooks, reload: .ignored,
                meaning: "let SIGUSR2 hang the supervisor loop, to test the watchdog", shown: false),
            .text(
                "execution_log", "--execution-log", \.executionLog, placeholder: "FILE", inFile: false, reload: .ignored,
                meaning: "append a line for the start and the end of every run of every job to this file (for tests)",
                defaultText: nil),
        ]
    }

    /// The keys a config file may set, as written in the file.
    static var fileKeys: [String] { all.filter(\.inFile).map(\.key) }

    /// The option table of docs/operations.md: a row per setting with a flag shown there, then `--config`.
    static var markdownTable: String {
        var rows = ["| option | default | meaning |", "| --- | --- | --- |"]
        for setting in all {
            guard let flag = setting.flag, let defaultText = setting.defaultText else { continue }
            let option = setting.placeholder.isEmpty ? flag : "\(flag) \(setting.placeholder)"
            rows.append("| `\(option)` | \(defaultText) | \(setting.meaning) |")
        }
        rows.append("| `--config FILE` | none | a TOML file with the same settings (see `systemd/concurd.toml`) |")
        return rows.joined(separator: "\n")
    }
}
