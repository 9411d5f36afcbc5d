import ConcurProtocol
import ConcurTestSupport
import Foundation
import Testing
import Varlink

/// Exec jobs' output: kept per stream in files, bounded, pruned with the job, streamed by `logs`.
@Suite("exec output: files, bounds, logs", .serialized)
struct OutputTests {
    @Test(
        "stdout and stderr are kept apart and come back byte for byte (not UTF-8, NUL), in every model",
        arguments: ConcurrencyModel.allCases)
    func streamsApart(model: ConcurrencyModel) throws {
        let daemon = try TestDaemon(["--workers", "1", "--model", model.rawValue, "--allow-exec"])
        let waited = try daemon.ctl([
            "submit", "--exec", "--wait", "--", "sh", "-c", #"printf 'a\000b\377\n'; printf 'to err\n' >&2"#,
        ])
        #expect(waited.status == 0, "\(waited)")
        let out = try runCommand(
            URL(fileURLWithPath: "/bin/sh"),
            ["-c", "\(Binaries.concurctl.path) logs 1 --stdout --socket \(daemon.socket) | od -An -tx1"])
        #expect(out.stdout.split(whereSeparator: \.isWhitespace) == ["61", "00", "62", "ff", "0a"], "\(out)")
        let err = try daemon.ctl(["logs", "1", "--stderr"])
        // A stream goes to the same stream of concurctl.
        #expect(err.status == 0 && err.stderr == "to err\n" && err.stdout.isEmpty, "\(err)")
        let both = try daemon.ctl(["logs", "1"])
        #expect(both.stderr == "to err\n" && both.stdout.hasPrefix("a"), "\(both)")
        // The journal keeps the NUL of the result's tail too.
        let job = try #require(try [JobInfo](json: daemon.ctlJSON(["jobs", "1"])["jobs"] ?? .null, path: "jobs").first)
        #expect(job.result?.output?.utf8.contains(0) == true, "\(job.result?.output ?? "nil")")
    }

    @Test("logs --follow streams a running command's output on both streams as it comes, and returns once the job ended")
    func follow() throws {
        let gate = Gate()
        let daemon = try TestDaemon(["--workers", "1", "--allow-exec"])
        let script =
            "echo first; echo first-err >&2; until [ -e \(gate.path) ]; do sleep 0.05; done; echo last; echo last-err >&2"
        _ = try daemon.ctl(["submit", "--exec", "--", "sh", "-c", script])
        let outFile = daemon.directory.appendingPathComponent("follow.out").path
        let errFile = daemon.directory.appendingPathComponent("follow.err").path
        let follower = try ChildProcess(
            Binaries.concurctl.path, ["logs", "1", "--follow", "--socket", daemon.socket], stdout: .file(outFile),
            stderr: .file(errFile))
        // Live: what the command wrote is there while it still runs.
        #expect(eventually { ((try? String(contentsOfFile: outFile, encoding: .utf8)) ?? "") == "first\n" })
        #expect(eventually { ((try? String(contentsOfFile: errFile, encoding: .utf8)) ?? "") == "first-err\n" })
        #expect(follower.wait(timeout: 0.3) == nil, "logs --follow returned while the job ran")
        gate.open()
        #expect(follower.wait(timeout: 30) == 0)
        #expect(try String(contentsOfFile: outFile, encoding: .utf8) == "first\nlast\n")
        #expect(try String(contentsOfFile: errFile, encoding: .utf8) == "first-err\nlast-err\n")
    }

    @Test("past max_output a stream keeps its head and its tail, and logs marks the cut")
    func bounded() throws {
        let daemon = try TestDaemon(["--workers", "1", "--allow-exec", "--max-output", "8192"])
        _ = try daemon.ctl(["submit", "--exec", "--wait", "--", "seq", "1", "20000"])
        let logs = try daemon.ctl(["logs", "1"])
        #expect(logs.stdout.hasPrefix("1\n2\n3\n") && logs.stdout.hasSuffix("19999\n20000\n"), "\(logs.stdout.prefix(40))")
        #expect(logs.stdout.utf8.count <= 8192 && logs.stdout.utf8.count >= 8192 / 2)
        let cut = try #require(logs.stderr.split(separator: " ").dropFirst().first.flatMap { Int($0) }, "\(logs.stderr)")
        #expect(logs.stderr.contains("bytes of stdout cut here"))
        // Head, cut and tail add up to all that seq wrote.
        let total = (1...20000).reduce(0) { $0 + String($1).utf8.count + 1 }
        #expect(logs.stdout.utf8.count + cut == total, "kept \(logs.stdout.utf8.count) + cut \(cut) != \(total)")
    }

    @Test("a job's output goes with its record, and the oldest finished jobs' go first past max_output_total")
    func pruned() throws {
        let daemon = try TestDaemon(["--workers", "1", "--allow-exec", "--retain-jobs", "1", "--max-output-total", "1048576"])
        let output = daemon.directory.appendingPathComponent("state/output").path
        _ = try daemon.ctl(["submit", "--exec", "--wait", "--", "echo", "one"])
        #expect(FileManager.default.fileExists(atPath: output + "/1"))
        _ = try daemon.ctl(["submit", "--exec", "--wait", "--", "echo", "two"])
        _ = try daemon.ctl(["submit", "--exec", "--wait", "--", "echo", "three"])
        #expect(eventually(20) { !FileManager.default.fileExists(atPath: output + "/1") }, "job 1's output outlived its record")
        let big = try TestDaemon(["--workers", "1", "--allow-exec", "--max-output-total", "1048576"])
        let bigOutput = big.directory.appendingPathComponent("state/output").path
        for _ in 0..<2 { _ = try big.ctl(["submit", "--exec", "--wait", "--", "head", "-c", "700000", "/dev/zero"]) }
        #expect(
            eventually(20) { !FileManager.default.fileExists(atPath: bigOutput + "/1") }, "over the total, job 1's output stayed")
        #expect(FileManager.default.fileExists(atPath: bigOutput + "/2"))
        #expect(eventually(20) { big.log().contains("to stay under max_output_total") })
    }

    @Test("Logs and concurctl logs refuse wrong values with what to do")
    func wrongValues() throws {
        let daemon = try TestDaemon(["--workers", "1", "--allow-exec"])
        _ = try daemon.ctl(["submit", "prime:7", "--wait"])
        for (arguments, status, message) in [
            (["logs", "1"], Int32(1), "only exec jobs have output"), (["logs", "9"], 1, "no job 9"),
            (["logs", "0"], 64, "start at 1"), (["logs", "x"], 64, "x"), (["logs", "1", "--stdout", "--stderr"], 64, "not both"),
            (["logs"], 64, "id"),
        ] {
            let result = try daemon.ctl(arguments)
            #expect(result.status == status && result.stderr.contains(message), "\(arguments): \(result)")
        }
        for (arguments, message) in [
            (["--max-output", "100"], "max_output"), (["--max-output", "many"], "max-output"),
            (["--max-output-total", "5"], "max_output_total"),
        ] {
            let refused = try runCommand(
                Binaries.concurd, ["serve", "--ephemeral", "--socket", "/tmp/concur-never.sock"] + arguments)
            #expect(refused.status != 0 && (refused.stderr + refused.stdout).contains(message), "\(arguments): \(refused)")
        }
    }
}
