import ConcurDaemon
import ConcurProtocol
import ConcurRuntime
import Testing

/// `[pools.NAME]` in the config file and `--pool NAME=MODEL:WORKERS` on the command line.
@Suite("Named pools in the configuration")
struct PoolConfigurationTests {
    func serve(_ arguments: [String], file: String? = nil) throws -> DaemonConfiguration {
        let command = try ConcurdCommand.Serve.parse(arguments + (file == nil ? [] : ["--config", "/etc/concurd.toml"]))
        return try command.resolvedConfiguration { _ throws(ConfigurationError) in file ?? "" }
    }

    func message(_ arguments: [String], file: String? = nil) -> String {
        do {
            _ = try serve(arguments, file: file)
            return "accepted"
        } catch let error as ConfigurationError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    @Test("none configured: one pool, default, from the top-level settings")
    func defaultOnly() throws {
        let configuration = try serve(["--workers", "3", "--model", "tasks"])
        #expect(configuration.pools.isEmpty)
        #expect(configuration.supervisorPools.map(\.name) == [.default])
        #expect(configuration.supervisorPools[0].configuration.workers == 3)
        #expect(configuration.supervisorPools[0].configuration.model == .tasks)
    }

    @Test("pools from the file, the flag over the file's model and workers, the file's max_queue kept")
    func fileAndFlag() throws {
        let file = """
            max_queue = 700
            [pools.io]
            model = "threads"
            workers = 8
            max_queue = 500
            [pools.cpu]
            model = "processes"
            """
        let configuration = try serve(["--pool", "io=tasks:64", "--pool", "batch=threads:2"], file: file)
        #expect(configuration.pools.map(\.name.rawValue) == ["batch", "cpu", "io"])
        let pools = Dictionary(uniqueKeysWithValues: configuration.supervisorPools.map { ($0.name.rawValue, $0.configuration) })
        #expect(pools["io"]?.model == .tasks && pools["io"]?.workers == 64 && pools["io"]?.limits.maxQueue == 500)
        #expect(pools["cpu"]?.model == .processes && pools["cpu"]?.workers == 4 && pools["cpu"]?.limits.maxQueue == 700)
        #expect(pools["batch"]?.workers == 2 && pools["batch"]?.limits.maxQueue == 700)
        #expect(configuration.supervisorPools.first?.name == .default)
    }

    @Test(
        "refuses wrong pools in the file, naming the file and the key",
        arguments: [
            ("pools = 3", "pools must be tables"),
            ("[pools.\"IO pool\"]", "not a pool name"),
            ("[pools.-x]\nworkers = 2", "not a pool name"),
            ("[pools.\(String(repeating: "a", count: 33))]", "longer than 32 characters"),
            (
                "[pools.io]\nwokers = 4",
                "unknown key 'pools.io.wokers'; did you mean 'workers'? a pool's keys: model, workers, max_queue"
            ),
            ("[pools.io]\nzzz = 4", "unknown key 'pools.io.zzz'; a pool's keys:"),
            ("[pools.io]\nworkers = \"8\"", "pools.io.workers must be an integer"),
            ("[pools.io]\nmodel = \"fibers\"", "pools.io.model: the model must be one of"),
            ("[pools.io]\nmodel = 3", "pools.io.model must be one of"),
            ("[pools.io]\nmax_queue = \"many\"", "pools.io.max_queue must be an integer"),
            ("[pools.default]\nworkers = 2", "the default pool is set by the top-level"),
            ("[pools]\nio = 4", "pools.io must be a table"),
        ])
    func wrongFile(text: String, expected: String) {
        let got = message([], file: text)
        #expect(got.contains(expected) && got.contains("/etc/concurd.toml"), "\(got)")
    }

    @Test(
        "refuses values out of range, in the file or the flag",
        arguments: [
            ("[pools.io]\nworkers = 0", [String](), "pool io: workers must be between 1 and 256"),
            ("[pools.io]\nworkers = 5000", [], "pool io: workers must be between 1 and 256"),
            ("[pools.io]\nworkers = 20", ["--max-workers", "10"], "between 1 and 10"),
            ("[pools.io]\nmax_queue = 0", [], "pool io: max_queue must be between 1 and"),
            ("", ["--pool", "io=tasks:0"], "pool io: workers must be between 1 and 256"),
        ])
    func outOfRange(text: String, arguments: [String], expected: String) {
        let got = message(arguments, file: text.isEmpty ? nil : text)
        #expect(got.contains(expected), "\(got)")
    }

    @Test(
        "refuses a malformed --pool, saying the form",
        arguments: [
            ("io", "--pool wants NAME=MODEL:WORKERS, such as io=tasks:64, not 'io'"),
            ("=tasks:4", "a pool's name cannot be empty"),
            ("io=tasks", "the workers are missing"),
            ("io=tasks:x", "the workers of pool io must be a whole number, not 'x'"),
            ("io=fibers:4", "the model must be one of"),
            ("IO=tasks:4", "is not a pool name"),
            ("default=tasks:8", "the default pool is set by --model and --workers"),
        ])
    func malformedFlag(text: String, expected: String) {
        let got = message(["--pool", text])
        #expect(got.contains(expected), "\(got)")
    }

    @Test("refuses a pool given twice, and more than 64 pools")
    func limits() {
        #expect(message(["--pool", "io=tasks:4", "--pool", "io=threads:2"]).contains("--pool io is given twice"))
        let many = (1...64).map { "[pools.p\($0)]" }.joined(separator: "\n")
        #expect(message([], file: many).contains("65 pools are configured (with default); concurd runs at most 64"))
        let most = (1...63).map { "[pools.p\($0)]" }.joined(separator: "\n")
        #expect(message([], file: most) == "accepted")
    }

    @Test("pool names: the rule, and default first in order")
    func names() {
        #expect(PoolName("io") != nil && PoolName("a-b_9") != nil && PoolName(String(repeating: "z", count: 32)) != nil)
        for bad in ["", "IO", "-x", "_x", "a b", "é", "a.b", "a/b", String(repeating: "z", count: 33)] {
            #expect(PoolName(bad) == nil, "\(bad)")
        }
        let sorted = ["zeta", "default", "alpha"].compactMap(PoolName.init).sorted()
        #expect(sorted.map(\.rawValue) == ["default", "alpha", "zeta"])
    }
}
