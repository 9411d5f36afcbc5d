import ConcurCore
import ConcurProtocol
import Glibc
import Varlink

/// One run of ``PythonPool/program`` under `python3` (found in `PATH`): writes the jobs to a
/// private temporary file, reads a JSON line per measurement from the program's standard
/// output, and waits for it. Blocks the calling thread; the program's standard error passes
/// through to concurd's.
struct PythonPoolRun {
    /// Why `python3` cannot run the pools (missing, or older than 3.11, which has
    /// `asyncio.TaskGroup`), with what to do; nil if it can.
    static func problem() -> String? {
        let check = "import sys, asyncio; sys.exit(0 if hasattr(asyncio, 'TaskGroup') else 3)"
        switch try? run(["python3", "-c", check], lines: { _ in }) {
        case 0?: return nil
        case 3?: return "--python needs Python 3.11 or later (asyncio.TaskGroup); python3 in PATH is older"
        default: return "--python needs python3 in PATH (apt-get install python3)"
        }
    }

    /// The measurements of `pools` at `sizes`, one round, on `jobs`; each with the xor of its
    /// jobs' checksums.
    static func measure(pools: [PythonPool], sizes: [Int], jobs: [JobSpec]) throws(ComparisonFailure) -> [(
        Comparison.Measurement, digest: UInt64
    )] {
        let specs: [JSON] = jobs.map { spec in
            switch spec.kind {
            case .cpu(let size): .array([.string("cpu"), .double(size)])
            case .sleep(let milliseconds): .array([.string("sleep"), .int(Int64(milliseconds))])
            default: .array([.string("sleep"), .int(0)])
            }
        }
        let request: JSON = .object([
            "jobs": .array(specs), "sizes": .array(sizes.map { .int(Int64($0)) }), "repeat": .int(1),
            "pools": .array(pools.map { .string($0.rawValue) }),
        ])
        var template = Array("/tmp/concur-compare-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else { throw ComparisonFailure("cannot write the jobs for Python: \(String(cString: strerror(errno)))") }
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(path) }
        let bytes = Array(request.serialized.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count else { throw ComparisonFailure("cannot write the jobs for Python to \(path)") }
        var results: [(Comparison.Measurement, digest: UInt64)] = []
        var malformed: String?
        let status: Int32
        do {
            status = try run(["python3", "-c", PythonPool.program, path]) { line in
                guard let parsed = try? Self.measurement(line) else {
                    malformed = malformed ?? line
                    return
                }
                results.append(parsed)
            }
        } catch {
            throw ComparisonFailure("cannot run python3: \(error)")
        }
        if let malformed {
            throw ComparisonFailure("the Python pools printed what is not a measurement: \(malformed.prefix(200))")
        }
        guard status == 0, results.count == pools.count * sizes.count else {
            throw ComparisonFailure(
                "the Python pools ended with status \(status) after \(results.count) runs (see its message above)")
        }
        return results
    }

    /// One line of the program's output.
    static func measurement(_ line: String) throws -> (Comparison.Measurement, digest: UInt64) {
        guard case .object(let object) = try JSON.parse(Array(line.utf8)), case .string(let name)? = object["pool"],
            let pool = PythonPool(rawValue: name), case .int(let workers)? = object["workers"],
            case .int(let finished)? = object["finished"], case .int(let peak)? = object["peakRSS"]
        else { throw ComparisonFailure("not a measurement") }
        func number(_ key: String) -> Double? {
            switch object[key] {
            case .double(let value)?: value
            case .int(let value)?: Double(value)
            default: nil
            }
        }
        // 64 bits in hexadecimal: a JSON number past Int64.max would come back as a double.
        guard case .string(let hex)? = object["digest"], hex.count == 16, let digest = UInt64(hex, radix: 16) else {
            throw ComparisonFailure("no digest")
        }
        guard let wall = number("wall"), let cpu = number("cpu"), wall >= 0, cpu >= 0 else {
            throw ComparisonFailure("no times")
        }
        let none = LatencySummary(queueWait: .empty, run: .empty, endToEnd: .empty)
        return (
            Comparison.Measurement(
                contender: .python(pool), workers: Int(workers), wall: wall, cpu: cpu, finished: Int(finished),
                latency: none, peakRSS: Int(peak)),
            digest
        )
    }

    /// Runs `argv` (its first word looked up in `PATH`) with standard output read line by line
    /// into `lines`; returns its exit status.
    private static func run(_ argv: [String], lines: (String) -> Void) throws(ComparisonFailure) -> Int32 {
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw ComparisonFailure("cannot make a pipe") }
        // Neither end leaks into other children this process starts meanwhile (the workers).
        for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, argv[0], &actions, nil, cArguments, environ)
        close(pipeEnds[1])
        guard spawned == 0 else {
            close(pipeEnds[0])
            throw ComparisonFailure("cannot run \(argv[0]): \(String(cString: strerror(spawned)))")
        }
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            pending += buffer[0..<count]
            while let newline = pending.firstIndex(of: 0x0A) {
                lines(String(decoding: pending[..<newline], as: UTF8.self))
                pending.removeSubrange(...newline)
            }
        }
        close(pipeEnds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }
}
