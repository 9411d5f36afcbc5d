import ConcurCore
import ConcurDaemon
import ConcurProtocol
import ConcurRuntime
import Foundation
import Testing

@Suite("The daemon's configuration")
struct ConfigurationTests {
    func serve(_ arguments: [String], file: String? = nil) throws -> DaemonConfiguration {
        let command = try ConcurdCommand.Serve.parse(arguments + (file == nil ? [] : ["--config", "/etc/concurd.toml"]))
        return try command.resolvedConfiguration { _ throws(ConfigurationError) in file ?? "" }
    }

    @Test("defaults, then the file, then flags")
    func precedence() throws {
        #expect(try serve([]) == DaemonConfiguration())
        let file = """
            workers = 6
            max_queue = 500
            drain_timeout = 2.5
            log_level = "debug"
            socket = "/tmp/x.sock"
            retain_jobs = 10
            max_workers = 16
            model = "processes"
            max_attempts = 5
            job_timeout = 60
            allow_exec = true
            task_threads = 3
            worker_nice = 4
            start_method = "forkserver"
            watcher_timeout = 5
            allowed_users = ["root", 0]
            allowed_groups = ["root"]
            state_directory = "/srv/concur"
            retain_age = 3600
            journal_sync = "full"
            """
        let fromFile = try serve([], file: file)
        #expect(fromFile.workers == 6 && fromFile.maxQueue == 500 && fromFile.drainTimeout == 2.5)
        #expect(fromFile.logLevel == .debug && fromFile.socket == "/tmp/x.sock" && fromFile.retainJobs == 10)
        #expect(fromFile.model == .processes && fromFile.maxAttempts == 5 && fromFile.jobTimeout == 60 && fromFile.allowExec)
        #expect(fromFile.taskThreads == 3 && fromFile.workerNice == 4 && fromFile.startMethod == .forkserver)
        #expect(fromFile.watcherTimeout == 5)
        #expect(fromFile.allowedUsers == ["root", "0"] && fromFile.allowedGroups == ["root"])
        #expect(fromFile.stateDirectory == "/srv/concur" && fromFile.retainAge == 3600 && fromFile.journalSync == .full)
        #expect(try serve(["--ephemeral"]).ephemeral && !(try serve([]).ephemeral))
        #expect(try serve([], file: "ephemeral = true").ephemeral)
        #expect(try serve(["--journal-sync", "normal", "--retain-age", "60"], file: file).journalSync == .normal)
        #expect(try serve(["--state-directory", "/var/tmp/c"], file: file).stateDirectory == "/var/tmp/c")
        let environment = ["STATE_DIRECTORY": "/var/lib/private/concurd:/var/lib/other", "HOME": "/home/ann"]
        #expect(DaemonConfiguration().resolvedStateDirectory(uid: 1000) { environment[$0] } == "/var/lib/private/concurd")
        #expect(DaemonConfiguration().resolvedStateDirectory(uid: 0) { _ in nil } == "/var/lib/concurd")
        #expect(
            DaemonConfiguration().resolvedStateDirectory(uid: 1000) { ["HOME": "/home/ann"][$0] }
                == "/home/ann/.local/state/concurd")
        #expect(DaemonConfiguration().resolvedStateDirectory(uid: 1000) { ["XDG_STATE_HOME": "/x"][$0] } == "/x/concurd")
        #expect(try serve([]).watcherTimeout == 30)
        #expect(try serve(["--watcher-timeout", "2.5"], file: file).watcherTimeout == 2.5)
        #expect(try serve(["--test-hooks"]).testHooks && !(try serve([]).testHooks))
        #expect(try serve([]).idleTimeout == 60 && (try serve(["--idle-timeout", "5"]).idleTimeout) == 5)
        #expect(try serve(["--start-method", "spawn"], file: file).startMethod == .spawn)
        #expect(try serve([]).workerNice == 10)
        #expect(try serve(["--worker-nice", "0"], file: file).workerNice == 0)
        #expect(try serve(["--task-threads", "2"], file: file).taskThreads == 2)
        let overridden = try serve(["--workers", "3", "--drain-timeout", "1"], file: file)
        #expect(overridden.workers == 3 && overridden.drainTimeout == 1 && overridden.maxQueue == 500)
    }

    @Test(
        "refuses wrong config file values, naming the key and the file",
        arguments: [
            ("workers = \"four\"", "workers must be an integer"), ("max_queue = 1.5", "max_queue must be an integer"),
            ("drain_timeout = \"soon\"", "drain_timeout must be a number"), ("model = \"fibers\"", "model must be one of"),
            ("log_level = \"loud\"", "log_level must be one of"), ("socket = 5", "socket must be a string"),
            ("wrokers = 4", "unknown key 'wrokers'; did you mean 'workers'?"),
            ("drain_timout = 4", "did you mean 'drain_timeout'?"), ("workers = ", "not valid TOML"),
            ("retain_jobs = true", "retain_jobs must be an integer"),
            ("max_workers = [1]", "max_workers must be an integer"), ("max_attempts = \"3\"", "max_attempts must be an integer"),
            ("job_timeout = \"5s\"", "job_timeout must be a number of seconds"),
            ("allow_exec = \"yes\"", "allow_exec must be true or false"),
            ("task_threads = 2.5", "task_threads must be an integer"),
            ("worker_nice = \"low\"", "worker_nice must be an integer"),
            ("start_method = \"fork\"", "start_method must be one of \"spawn\", \"forkserver\""),
            ("watcher_timeout = \"30s\"", "watcher_timeout must be a number of seconds"),
            ("test_hooks = 1", "test_hooks must be true or false"),
            ("idle_timeout = \"1m\"", "idle_timeout must be a number of seconds"),
            ("allowed_users = \"alice\"", "allowed_users must be a list of names or ids"),
            ("allowed_groups = [true]", "allowed_groups must be a list of names or ids"),
            ("allowed_users = [-1]", "allowed_users must be a list of names or ids"),
            ("state_directory = 1", "state_directory must be a string"),
            ("ephemeral = \"yes\"", "ephemeral must be true or false"),
            ("retain_age = \"1w\"", "retain_age must be a number of seconds"),
            ("journal_sync = \"always\"", "journal_sync must be one of \"normal\", \"full\""),
            ("store = 5", "store must be a string"),
            ("store_password_file = [\"/etc/pgpass\"]", "store_password_file must be a string"),
            ("node = true", "node must be a string"),
            ("lease_timeout = \"30s\"", "lease_timeout must be a number of seconds"),
        ])
    func wrongFileValues(line: String, message: String) {
        #expect {
            try serve([], file: line)
        } throws: { error in
            let text = (error as? ConfigurationError)?.message ?? ""
            return text.contains(message) && text.contains("/etc/concurd.toml")
        }
    }

    @Test(
        "refuses out-of-range values from either source, naming the flag and the key",
        arguments: [
            (["--workers", "0"], "--workers (config key 'workers') must be between 1 and 256"),
            (["--workers", "300"], "--workers (config key 'workers') must be between 1 and 256"),
            (["--workers", "20", "--max-workers", "10"], "must be between 1 and 10"),
            (["--max-workers", "5000"], "--max-workers"), (["--max-queue", "0"], "--max-queue"),
            (["--drain-timeout=-1"], "--drain-timeout"), (["--drain-timeout", "100000"], "--drain-timeout"),
            (["--retain-jobs=-5"], "--retain-jobs"), (["--socket", "relative.sock"], "must be an absolute path"),
            (["--socket", "/" + String(repeating: "x", count: 120)], "longer than 107 bytes"),
            (["--task-threads", "0"], "--task-threads (config key 'task_threads') must be between 1 and 256, not 0"),
            (["--task-threads", "257"], "--task-threads"),
            (["--worker-nice", "20"], "--worker-nice (config key 'worker_nice') must be between 0 and 19, not 20"),
            (["--worker-nice=-1"], "--worker-nice"),
            (["--start-method", "fork"], "--start-method must be one of spawn, forkserver, not 'fork'"),
            (["--max-attempts", "0"], "--max-attempts (config key 'max_attempts') must be between 1 and 100"),
            (["--max-attempts", "101"], "--max-attempts"), (["--job-timeout", "0"], "--job-timeout (config key 'job_timeout')"),
            (["--job-timeout", "90000"], "--job-timeout"),
            (["--log-level", "loud"], "--log-level must be one of"),
            (
                ["--watcher-timeout", "0.5"],
                "--watcher-timeout (config key 'watcher_timeout') must be between 1 and 3600 seconds"
            ),
            (["--watcher-timeout", "4000"], "--watcher-timeout"),
            (["--idle-timeout", "0"], "--idle-timeout (config key 'idle_timeout') must be between 1 and 86400 seconds, not 0"),
            (["--idle-timeout", "90000"], "--idle-timeout"),
            (["--retain-age", "0"], "--retain-age (config key 'retain_age') must be between 1 second and 10 years"),
            (["--retain-age", "1e12"], "--retain-age"),
            (["--state-directory", "state"], "--state-directory (config key 'state_directory') must be an absolute path"),
            (["--state-directory", "/" + String(repeating: "d", count: 4001)], "longer than 4000 bytes"),
            (["--state-directory", "/srv/c", "--ephemeral"], "contradict each other"),
            (["--journal-sync", "sometimes"], "--journal-sync must be one of normal, full, not 'sometimes'"),
            (["--store", "mysql://concur@db/jobs"], "--store (config key 'store') cannot be used (mysql://concur@db/jobs)"),
            (["--store", "postgres://concur@db/jobs?sslmode=maybe"], "sslmode maybe is not known"),
            (
                ["--store", "postgres://concur:secret@db/jobs"],
                "cannot be used (postgres://concur:***@db/jobs): it holds a password"
            ),
            (["--store", "postgres://concur@db/jobs", "--ephemeral"], "contradict each other"),
            (
                ["--store-password-file", "pgpass"],
                "--store-password-file (config key 'store_password_file') must be an absolute path"
            ),
            (["--node", ""], "--node (config key 'node') must be 1 to 63 of"),
            (["--node", "two words"], "--node (config key 'node') must be 1 to 63 of"),
            (["--node", String(repeating: "n", count: 64)], "--node"),
            (["--lease-timeout", "1"], "--lease-timeout (config key 'lease_timeout') must be between 2 and 3600 seconds"),
            (["--lease-timeout", "4000"], "--lease-timeout"),
        ])
    func outOfRange(arguments: [String], message: String) {
        #expect {
            try serve(arguments)
        } throws: { error in
            (error as? ConfigurationError)?.message.contains(message) == true
        }
    }

    @Test(
        "the argument parser refuses malformed flags",
        arguments: [["--workers", "four"], ["--model", "fibers"], ["--drain-timeout", "soon"], ["--max-queue"], ["--bogus"]])
    func malformedFlags(arguments: [String]) {
        #expect(throws: (any Error).self) { try ConcurdCommand.Serve.parse(arguments) }
    }

    @Test(
        "concurd compare refuses wrong arguments, saying what is allowed",
        arguments: [
            (["--jobs", "0"], "--jobs must be between 1 and 1000000, not 0"),
            (["--workers", "65"], "--workers must be between 1 and 64, not 65"),
            (["--scale=-1"], "--scale must be between 0 and 100, not -1"),
            (["--models", "threads,fibers"], "'fibers' is not one of them"),
            (["--models", "threads,,tasks"], "'' is not one of them"),
            (["--models", "tasks,tasks"], "--models names a model twice: tasks,tasks"),
            (["--plot", ""], "--plot needs a file name"),
            (["--plot", "chart.png"], "give a file name ending in .svg, not chart.png"),
            (["--repeat", "0"], "--repeat must be between 1 and 20, not 0"),
            (["--repeat", "21"], "--repeat must be between 1 and 20, not 21"),
            (["--sizes", "1,x"], "--sizes takes pool sizes from 1 to 1024"),
            (["--sizes", "0,4"], "--sizes takes pool sizes from 1 to 1024"),
            (["--sizes", "1,2000"], "--sizes takes pool sizes from 1 to 1024"),
            (["--sizes", ""], "--sizes takes pool sizes from 1 to 1024"),
            (["--sizes", "4,2"], "--sizes must be ascending, each once: 4,2"),
            (["--sizes", "2,2"], "--sizes must be ascending, each once: 2,2"),
            (["--python", "--kind", "prime"], "--python runs cpu and sleep jobs"),
            (["--python", "--kind", "mixed"], "use --kind cpu or --kind sleep"),
        ])
    func compareArguments(arguments: [String], message: String) {
        #expect {
            try ConcurdCommand.Compare.parse(arguments)
        } throws: { error in
            ConcurdCommand.Compare.message(for: error).contains(message)
        }
        #expect(throws: (any Error).self) { try ConcurdCommand.Compare.parse(["--kind", "quantum"]) }
    }

    @Test("reports an unreadable config file with its path")
    func unreadable() {
        #expect {
            try ConcurdCommand.Serve.parse(["--config", "/nonexistent/concurd.toml"]).resolvedConfiguration()
        } throws: { error in
            (error as? ConfigurationError)?.message.contains("cannot read /nonexistent/concurd.toml") == true
        }
    }

    @Test("a config file others may write is not read; one of ours is")
    func untrustedConfigFile() throws {
        let directory = NSTemporaryDirectory() + "concur-config-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        chmod(directory, 0o700)
        let path = directory + "/concurd.toml"
        try "workers = 3\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o620)
        #expect {
            try ConcurdCommand.Serve.parse(["--config", path]).resolvedConfiguration()
        } throws: { error in
            let message = (error as? ConfigurationError)?.message ?? ""
            return message.contains("concurd does not trust its config file: \(path) is writable by its group or by others")
                && message.contains("chmod go-w \(path)")
        }
        chmod(path, 0o600)
        #expect(try ConcurdCommand.Serve.parse(["--config", path]).resolvedConfiguration().workers == 3)
        // A FIFO (ours) would hold the reading for ever: refused at once.
        let fifo = directory + "/fifo.toml"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect {
            try ConcurdCommand.Serve.parse(["--config", fifo]).resolvedConfiguration()
        } throws: { error in
            (error as? ConfigurationError)?.message.contains("\(fifo) is not a regular file") == true
        }
    }

    @Test(
        "concurd run refuses wrong values",
        arguments: [
            ["--jobs", "0"], ["--workers", "0"], ["--time", "0"], ["--time", "-3"], ["--scale", "101"], ["--model", "fibers"],
            ["--kind", "quantum"], ["--seed", "-1"], ["--jobs", "x"],
        ])
    func runRefuses(arguments: [String]) {
        #expect(throws: (any Error).self) { try ConcurdCommand.Run.parse(arguments) }
    }

    @Test("concurd run takes the seed demo's flags")
    func runParses() throws {
        let run = try ConcurdCommand.Run.parse([
            "--model", "threads", "--jobs", "20", "--workers", "4", "--seed", "1", "--time", "10",
        ])
        #expect(run.foregroundRun.workload == WorkloadRequest(count: 20, kind: .cpu, seed: 1, scale: 1))
        #expect(run.foregroundRun.workers == 4 && run.foregroundRun.timeLimit == 10)
    }
}

@Suite("The shipped example config")
struct ExampleConfigTests {
    @Test("systemd/concurd.toml parses and passes validation")
    func exampleConfig() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("systemd/concurd.toml").path
        var configuration = DaemonConfiguration()
        try configuration.apply(toml: TextFile.read(path), file: path)
        try configuration.validate()
        #expect(configuration.workers == 4 && configuration.maxWorkers == 256 && configuration.drainTimeout == 30)
    }
}
