import ConcurProtocol
import Testing
import Varlink

@Suite("Job kinds on the command line and the wire")
struct JobKindTests {
    @Test(
        "parses the command-line forms",
        arguments: [
            ("cpu:1.5", JobKind.cpu(size: 1.5)), ("cpu:0", .cpu(size: 0)), ("prime:97", .prime(n: 97)),
            ("prime:9223372036854775807", .prime(n: 9_223_372_036_854_775_807)), ("sleep:250", .sleep(milliseconds: 250)),
            ("fail", .fail),
        ])
    func commandLine(text: String, kind: JobKind) throws {
        #expect(try JobKind(commandLine: text) == kind)
    }

    @Test(
        "refuses wrong command-line forms with what was expected",
        arguments: [
            ("cpu", "cpu:SIZE"), ("cpu:-1", "cpu:SIZE"), ("cpu:1001", "between 0 and 1000"), ("cpu:abc", "cpu:SIZE"),
            ("prime:0", "prime:N"), ("prime:-5", "prime:N"), ("prime:9223372036854775808", "prime:N"), ("prime:", "prime:N"),
            ("sleep:3600001", "sleep:MS"), ("sleep:1.5", "sleep:MS"), ("fail:1", "no argument"), ("crash:now", "no argument"),
            ("exec", "unknown job kind"), ("", "unknown job kind"),
        ])
    func wrongCommandLine(text: String, hint: String) {
        #expect {
            try JobKind(commandLine: text)
        } throws: { error in
            (error as? JobSpecParseError)?.description.contains(hint) == true
        }
    }

    @Test(
        "round-trips through JSON",
        arguments: [
            JobSpec(.cpu(size: 0.25)), JobSpec(.prime(n: 3_333_333_333_333_301), timeout: 2), JobSpec(.sleep(milliseconds: 0)),
            JobSpec(.fail), JobSpec(.crash(forced: false)), JobSpec(.crash(forced: true)),
            JobSpec(.exec(argv: ["sh", "-c", "echo 'a b'"]), timeout: 0.5),
            JobSpec(
                .exec(argv: ["make"]), command: CommandContext(directory: "/srv/build", environment: ["CC=clang", "V=1"]),
                delivery: .atMostOnce),
            JobSpec(.exec(argv: ["env"]), command: CommandContext(clearsEnvironment: true)),
            JobSpec(.fail, delivery: .atMostOnce),
        ])
    func json(spec: JobSpec) throws {
        #expect(try JobSpec(json: spec.json, path: "job") == spec)
    }

    @Test(
        "refuses wrong JSON job specs, naming the parameter",
        arguments: [
            (#"{"kind":"cpu"}"#, "org.varlink.service.InvalidParameter", "jobs[0].size"),
            (#"{"kind":"cpu","size":"big"}"#, "org.varlink.service.InvalidParameter", "jobs[0].size"),
            (#"{"kind":"cpu","size":-1}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].size"),
            (#"{"kind":"prime","n":0}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].n"),
            (#"{"kind":"sleep","ms":99999999}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].ms"),
            (#"{"kind":"teleport"}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].kind"),
            (#"{"kind":"fail","n":3}"#, "org.varlink.service.InvalidParameter", "jobs[0].n"),
            (#"{"kind":"prime","n":7,"size":1}"#, "org.varlink.service.InvalidParameter", "jobs[0].size"),
            (#"{"n":7}"#, "org.varlink.service.InvalidParameter", "jobs[0].kind"),
            (#"7"#, "org.varlink.service.InvalidParameter", "jobs[0]"),
            (#"{"kind":"crash","force":"yes"}"#, "org.varlink.service.InvalidParameter", "jobs[0].force"),
            (#"{"kind":"exec"}"#, "org.varlink.service.InvalidParameter", "jobs[0].argv"),
            (#"{"kind":"exec","argv":[]}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].argv"),
            (#"{"kind":"exec","argv":[""]}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].argv"),
            (#"{"kind":"exec","argv":"ls -l"}"#, "org.varlink.service.InvalidParameter", "jobs[0].argv"),
            (#"{"kind":"fail","timeout":0}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].timeout"),
            (#"{"kind":"fail","timeout":100000}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].timeout"),
            (#"{"kind":"fail","timeout":"soon"}"#, "org.varlink.service.InvalidParameter", "jobs[0].timeout"),
            (#"{"kind":"exec","argv":["ls"],"cwd":"tmp"}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].cwd"),
            (#"{"kind":"exec","argv":["ls"],"cwd":7}"#, "org.varlink.service.InvalidParameter", "jobs[0].cwd"),
            (#"{"kind":"exec","argv":["ls"],"env":["NOEQUALS"]}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].env"),
            (#"{"kind":"exec","argv":["ls"],"env":["=x"]}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].env"),
            (#"{"kind":"exec","argv":["ls"],"env":"A=1"}"#, "org.varlink.service.InvalidParameter", "jobs[0].env"),
            (#"{"kind":"exec","argv":["ls"],"clearEnv":1}"#, "org.varlink.service.InvalidParameter", "jobs[0].clearEnv"),
            (#"{"kind":"prime","n":7,"cwd":"/tmp"}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].cwd"),
            (#"{"kind":"sleep","ms":1,"env":["A=1"]}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].env"),
            (#"{"kind":"fail","delivery":"exactlyOnce"}"#, "org.varlink.service.InvalidParameter", "jobs[0].delivery"),
            (#"{"kind":"fail","retries":-1}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].retries"),
            (#"{"kind":"fail","retries":101}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].retries"),
            (#"{"kind":"fail","retries":"3"}"#, "org.varlink.service.InvalidParameter", "jobs[0].retries"),
            (#"{"kind":"fail","retryDelay":2}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].retryDelay"),
            (#"{"kind":"fail","retries":2,"retryDelay":3601}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].retryDelay"),
            (#"{"kind":"fail","retries":2,"retryDelay":-1}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].retryDelay"),
            (#"{"kind":"fail","priority":11}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].priority"),
            (#"{"kind":"fail","priority":-11}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].priority"),
            (#"{"kind":"fail","priority":1.5}"#, "org.varlink.service.InvalidParameter", "jobs[0].priority"),
            (#"{"kind":"fail","startAt":5}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].startAt"),
            (#"{"kind":"fail","startAt":1e300}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].startAt"),
            (#"{"kind":"fail","startAt":"tomorrow"}"#, "org.varlink.service.InvalidParameter", "jobs[0].startAt"),
            (#"{"kind":"fail","after":[0]}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].after"),
            (#"{"kind":"fail","after":[3,3]}"#, "io.concur.Supervisor.InvalidValue", "jobs[0].after"),
            (#"{"kind":"fail","after":[-2]}"#, "org.varlink.service.InvalidParameter", "jobs[0].after[0]"),
            (#"{"kind":"fail","after":7}"#, "org.varlink.service.InvalidParameter", "jobs[0].after"),
            (
                "{\"kind\":\"fail\",\"after\":[\((1...1001).map(String.init).joined(separator: ","))]}",
                "io.concur.Supervisor.InvalidValue", "jobs[0].after"
            ),
        ])
    func wrongJSON(text: String, error name: String, parameter: String) throws {
        #expect {
            try JobSpec(json: JSON.parse(text), path: "jobs[0]")
        } throws: { error in
            guard let error = error as? VarlinkError, error.name == name else { return false }
            return error.parameters["parameter"] == .string(parameter)
        }
    }

    @Test("a priority, a start time and the jobs to run after go through JSON and back, and only when set")
    func placementRoundTrip() throws {
        let placement = JobPlacement(priority: -4, startAt: 1_800_000_000.5, after: [3, 1])
        let spec = JobSpec(.sleep(milliseconds: 5), placement: placement)
        #expect(try JobSpec(json: spec.json, path: "job") == spec)
        #expect(spec.priority == -4 && spec.startAt == 1_800_000_000.5 && spec.after == [3, 1])
        guard case .object(let plain) = JobSpec(.sleep(milliseconds: 5)).json else { return }
        #expect(plain["priority"] == nil && plain["startAt"] == nil && plain["after"] == nil)
        // Set to the defaults again, a spec equals one never set.
        var reset = spec
        reset.placement = JobPlacement()
        #expect(reset == JobSpec(.sleep(milliseconds: 5)))
    }

    @Test("the primes preset holds the classic 20 numbers")
    func preset() {
        #expect(JobKind.primesPreset.count == 20)
        #expect(JobKind.primesPreset.first == .prime(n: 2))
        #expect(JobKind.primesPreset.last == .prime(n: 9_999_999_999_999_999))
    }

    @Test("labels jobs for people")
    func labels() {
        #expect(JobKind.cpu(size: 1.25).label == "cpu(1.25)")
        #expect(JobKind.cpu(size: 2).label == "cpu(2)")
        #expect(JobKind.sleep(milliseconds: 5).label == "sleep(5ms)")
        #expect(JobKind.exec(argv: ["make", "test"]).label == "exec(make test)")
        #expect(JobKind.crash(forced: true).label == "crash(forced)")
    }

    @Test("bounds exec command lines", arguments: [257, 0])
    func execBounds(count: Int) {
        #expect(JobKind.problem(withArguments: Array(repeating: "x", count: count)) != nil)
        #expect(JobKind.problem(withArguments: [String(repeating: "x", count: 4097)]) != nil)
        #expect(JobKind.problem(withArguments: Array(repeating: String(repeating: "x", count: 4000), count: 20)) != nil)
        #expect(JobKind.problem(withArguments: ["ls", "-l"]) == nil)
    }
}

@Suite("Generate's parameters")
struct WorkloadRequestTests {
    @Test("reads them with defaults")
    func defaults() throws {
        let request = try WorkloadRequest(parameters: ["count": 5])
        #expect(request == WorkloadRequest(count: 5, kind: .cpu, seed: nil, scale: 1))
        #expect(try WorkloadRequest(parameters: request.parameters) == request)
        var placed = request
        placed.placement = JobPlacement(priority: 3, startAt: 1_800_000_000, after: [2])
        #expect(try WorkloadRequest(parameters: placed.parameters) == placed)
    }

    @Test(
        "refuses wrong values, naming the parameter",
        arguments: [
            (["count": 0], "count"), (["count": 10_000_001], "count"), (["count": 1, "scale": 101], "scale"),
            (["count": 1, "scale": -0.5], "scale"), (["count": 1, "kind": "quantum"], "kind"),
            (["count": 1, "seed": -1], "seed"),
            (["count": "5"], "count"), (["count": 1, "colour": "red"], "colour"), (["count": 1, "timeout": 0], "timeout"),
            (["count": 1, "timeout": "1s"], "timeout"), (["count": 1, "priority": 20], "priority"),
            (["count": 1, "startAt": -1], "startAt"), (["count": 1, "after": [0]], "after"),
        ] as [(JSONObject, String)])
    func wrongValues(parameters: JSONObject, parameter: String) {
        #expect {
            try WorkloadRequest(parameters: parameters)
        } throws: { error in
            (error as? VarlinkError)?.parameters["parameter"] == .string(parameter)
        }
    }
}

@Suite("The socket path rule")
struct SocketPathTests {
    @Test("prefers --socket, then CONCUR_SOCKET, then the default for the user")
    func rule() throws {
        let environment = ["CONCUR_SOCKET": "/env.sock", "XDG_RUNTIME_DIR": "/run/user/1000"]
        #expect(try SocketPath.resolve(explicit: "/x.sock", uid: 1000) { environment[$0] } == "/x.sock")
        #expect(try SocketPath.resolve(explicit: nil, uid: 1000) { environment[$0] } == "/env.sock")
        #expect(try SocketPath.resolve(explicit: nil, uid: 0) { _ in nil } == "/run/concurd/control.sock")
        #expect(
            try SocketPath.resolve(explicit: nil, uid: 1000) { $0 == "XDG_RUNTIME_DIR" ? "/run/user/1000" : nil }
                == "/run/user/1000/concurd/control.sock")
        #expect(throws: SocketPathError.self) { try SocketPath.resolve(explicit: nil, uid: 1000) { _ in nil } }
    }
}

@Suite("Formatting for people")
struct FormattingTests {
    @Test(
        "formats durations",
        arguments: [
            (0.000_000_5, "0.5 us"), (0.000_85, "850 us"), (0.0125, "12.5 ms"), (0.005, "5 ms"), (1.25, "1.25 s"), (192, "3m12s"),
            (7500, "2h05m"),
        ]
    )
    func durations(seconds: Double, text: String) {
        #expect(formatDuration(seconds) == text)
    }

    @Test("formats decimals without trailing zeros and fixed ones with them")
    func decimals() {
        #expect(formatDecimal(1.5) == "1.5")
        #expect(formatDecimal(2) == "2")
        #expect(formatDecimal(0.125, places: 2) == "0.13")
        #expect(formatDecimal(-0.001) == "0")
        #expect(formatFixed(1.5, places: 2) == "1.50")
        #expect(formatFixed(-2.25, places: 1) == "-2.3")
        #expect(formatBytes(15_000_000) == "14.3 MiB")
    }
}

@Suite("Base64, as Logs carries bytes")
struct Base64Tests {
    @Test("round-trips every length and every byte, and refuses what is not Base64")
    func roundTrip() {
        for length in 0..<70 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37 + 255) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        }
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy" && Base64.encode(Array("fo".utf8)) == "Zm8=")
        for wrong in ["Zm9", "Zm9v!", "=Zm9v", "Zm=9v", "Zm9vY==="] { #expect(Base64.decode(wrong) == nil, "\(wrong)") }
    }
}
