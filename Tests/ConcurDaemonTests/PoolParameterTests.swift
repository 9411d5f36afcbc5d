import ConcurCore
import ConcurDaemon
import ConcurProtocol
import ConcurRuntime
import Testing
import Varlink

/// The `pool` parameter of every method that takes one: a wrong type, a name that is not a
/// pool's name, a pool the daemon does not run, and what reads and changes address.
@Suite("The pool parameter of each call")
struct PoolParameterTests {
    static let methods: [(String, JSONObject, Bool)] = [
        ("Submit", ["jobs": [["kind": "cpu", "size": 0]]], false),
        ("Generate", ["count": 1, "scale": 0], false),
        ("Status", [:], false), ("Stats", [:], false), ("WatchStats", ["interval": 1], true),
        ("Resize", ["workers": 2], false), ("SetModel", ["model": "threads"], false),
        ("Pause", [:], false), ("Resume", [:], false), ("Cancel", ["queued": true], false),
        ("ListJobs", [:], false), ("WatchJobs", ["unfinished": true, "events": false], true),
    ]

    @Test("a pool that is not a string, or not a pool's name, is refused naming the parameter", arguments: methods)
    func wrongName(method: String, parameters: JSONObject, more: Bool) throws {
        let harness = try ServiceHarness()
        var typed = parameters
        typed["pool"] = 3
        let wrongType = harness.error(method, typed, more: more)
        #expect(wrongType?.name == VarlinkError.invalidParameter("").name && wrongType?.parameters["parameter"] == "pool")
        for bad in ["", "IO", "a b", "-x", String(repeating: "a", count: 33), "io\n"] {
            var named = parameters
            named["pool"] = .string(bad)
            let error = harness.error(method, named, more: more)
            #expect(error?.name == "io.concur.Supervisor.InvalidValue", "\(method) \(bad): \(String(describing: error))")
            #expect(error?.parameters["parameter"] == "pool")
        }
    }

    @Test("a pool the daemon does not run is UnknownPool, listing the pools", arguments: methods)
    func unknown(method: String, parameters: JSONObject, more: Bool) throws {
        let harness = try ServiceHarness()
        var named = parameters
        named["pool"] = "nope"
        let error = harness.error(method, named, more: more)
        #expect(error == SupervisorError.unknownPool("nope", pools: ["default"]), "\(method): \(String(describing: error))")
    }

    @Test("naming the default pool is the same as naming none")
    func defaultByName() throws {
        let harness = try ServiceHarness()
        let named = harness.call("Status", ["pool": "default"]).last?.parameters
        let status = try PoolStatus(json: named?["status"] ?? .null, path: "status")
        #expect(status.pool == "default" && status.workers.target == 2)
        #expect(try [PoolStatus](json: named?["pools"] ?? .null, path: "pools").map(\.pool) == ["default"])
        #expect(harness.call("Resize", ["workers": 3, "pool": "default"]).last?.varlinkError == nil)
        #expect(harness.supervisor.pool.read { $0.target } == 3)
    }

    @Test("ids name jobs in every pool: ids with a pool are refused")
    func idsWithPool() throws {
        let harness = try ServiceHarness()
        for (method, more) in [("Cancel", false), ("WatchJobs", true)] {
            let error = harness.error(method, ["ids": [1], "pool": "default"], more: more)
            #expect(error?.name == "io.concur.Supervisor.InvalidValue" && error?.parameters["parameter"] == "pool", "\(method)")
        }
    }
}
