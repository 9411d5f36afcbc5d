import ConcurProtocol
import ConcurTestSupport
import Foundation
import Testing
import Varlink

/// What concurd recovers from by itself, and races it must not lose.
@Suite("Recovery and races", .serialized)
struct RecoveryTests {
    @Test("kill -9 of the forkserver: its workers die, a new helper starts, and the pool serves again by itself")
    func forkServerComesBack() throws {
        let daemon = try TestDaemon(["--model", "processes", "--start-method", "forkserver", "--workers", "2", "--ephemeral"])
        let field = try #require(
            daemon.log().split(separator: " ").first { $0.hasPrefix("forkserver_pid=") }, "no forkserver pid in\n\(daemon.log())")
        let helper = try #require(Int32(field.dropFirst("forkserver_pid=".count)))
        #expect(try eventually { try daemon.status().workers.idle == 2 })
        #expect(kill(helper, SIGKILL) == 0)
        #expect(eventually(10) { daemon.log().contains("the forkserver (pid \(helper)) killed by SIGKILL") }, "\(daemon.log())")
        let waited = try daemon.ctl(["submit", "--jobs", "20", "--kind", "sleep", "--scale", "0.01", "--wait"], timeout: 60)
        #expect(waited.status == 0, "\(waited)\n\(daemon.log())")
        #expect(daemon.log().contains("started a new forkserver (pid "), "\(daemon.log())")
        let status = try daemon.status()
        #expect(status.workers.live == 2 && status.totals.done == 20, "\(status)")
        #expect(status.warnings.isEmpty, "\(status.warnings)")
    }

    @Test("a command that finished as a preempting switch came is not run again: its result wins")
    func preemptedCommandsRunOnce() throws {
        let folder = try DurabilityTests.Folder()
        let runs = folder.path + "/runs"
        let daemon = try TestDaemon(["--allow-exec", "--workers", "2", "--ephemeral"])
        let count = 120
        let connection = try VarlinkConnection(unixPath: daemon.socket, receiveTimeout: 30)
        // Half of the commands let a SIGTERM be and finish all the same; the others stop at one
        // until they have written their line (after which nothing can stop them).
        let jobs: [JSON] = (1...count).map { index in
            let script =
                index % 2 == 0
                ? "trap '' TERM; sleep 0.05; echo \(index) >> \(runs)" : "sleep 0.05; trap '' TERM; echo \(index) >> \(runs)"
            return .object(["kind": "exec", "argv": ["/bin/sh", "-c", .string(script)]])
        }
        _ = try connection.call(SupervisorInterface.method(.submit), ["jobs": .array(jobs)])
        // Preempting switches while the commands run, until they are all done.
        let models = ["tasks", "threads", "processes"]
        var switches = 0
        while try daemon.status().totals.finished < count && switches < 200 {
            _ = try daemon.ctl(["model", models[switches % models.count], "--preempt"])
            switches += 1
        }
        #expect(try eventually(60) { try daemon.status().totals.finished == count })
        let lines = try String(contentsOfFile: runs, encoding: .utf8).split(separator: "\n")
        var seen: [Substring: Int] = [:]
        for line in lines { seen[line, default: 0] += 1 }
        let twice = seen.filter { $0.value > 1 }
        #expect(twice.isEmpty, "\(twice.count) commands that had finished ran again: \(twice.keys.prefix(10))")
        #expect(seen.count == count, "\(seen.count) of \(count) commands ran to the end")
        #expect(try daemon.status().totals.done == count)
        print("preempting switches: \(switches) while \(count) commands ran; none ran twice")
    }

    @Test("SIGTERM during a switch: the waiting concurctl model says the switch did not complete, not 'submit again'")
    func shutdownDuringSwitch() throws {
        let gate = Gate()
        let daemon = try TestDaemon(["--allow-exec", "--workers", "1", "--ephemeral"])
        #expect(try daemon.ctl(gate.job).status == 0)
        #expect(try eventually { try daemon.status().running == 1 })
        // The one worker is busy until the gate opens: the new model cannot serve before.
        let switching = try daemon.startCtl(["model", "processes"])
        #expect(eventually(10) { daemon.log().contains("switch threads -> processes") || (try? daemon.status().switches) == 1 })
        daemon.signal(SIGTERM)
        let ended = try #require(switching.finish(timeout: 30), "concurctl model did not return")
        let stderr = switching.output().stderr
        #expect(ended.status == 1, "\(stderr)")
        #expect(stderr.contains("the switch did not complete"), "\(stderr)")
        #expect(!stderr.contains("submit again"), "\(stderr)")
        gate.open()
        #expect(daemon.waitForExit() == 0, "\(daemon.log())")
    }
}
