package import ArgumentParser
import ConcurProtocol
import Varlink

extension ConcurctlCommand {
    /// `concurctl logs`: an exec job's output, as its command wrote it.
    package struct Logs: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
            abstract: "Print an exec job's output as its command wrote it: stdout to stdout, stderr to stderr.",
            discussion: """
                Bytes come as they were written (not UTF-8, NUL: intact). Past max_output a stream keeps \
                its head and tail; the cut is marked on stderr. With --follow, it goes on while the job \
                runs and returns when it has ended.
                """)

        @Argument(help: "The job's id.")
        var id: Int64

        @Flag(help: "Keep printing while the job runs.")
        var follow = false

        @Flag(help: "Only its standard output.")
        var stdout = false

        @Flag(help: "Only its standard error.")
        var stderr = false

        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Checks the options together before the command runs.
        package func validate() throws {
            guard id >= 1 else { throw ValidationError("job ids start at 1, not \(id)") }
            if stdout && stderr { throw ValidationError("give --stdout or --stderr, not both (without either: both)") }
        }

        /// Runs the command.
        package func run() throws {
            var parameters: JSONObject = ["id": .int(id), "follow": .bool(follow)]
            if stdout { parameters["stream"] = LogStream.stdout.json }
            if stderr { parameters["stream"] = LogStream.stderr.json }
            try perform { () throws(ClientFailure) in
                let end = try common.connect().follow(.logs, parameters) { reply throws(ClientFailure) in
                    if common.json {
                        printJSON(reply)
                        return true
                    }
                    guard case .string(let text) = reply["data"] else { return true }
                    guard let bytes = Base64.decode(text) else {
                        throw ClientFailure(
                            "concurd sent output this concurctl cannot read (not Base64); are they different versions?")
                    }
                    let fd: Int32 = reply["stream"] == .string(LogStream.stderr.rawValue) ? 2 : 1
                    if case .int(let cut) = reply["cut"] {
                        StandardStreams.printError(
                            "[concurctl: \(cut) bytes of \(fd == 1 ? "stdout" : "stderr") cut here, past max_output]")
                    }
                    StandardStreams.writeBytes(bytes, to: fd)
                    return true
                }
                switch end {
                case .finished: return
                case .closedByDaemon:
                    throw ClientFailure(
                        "concurd closed the connection before the output ended (is it shutting down?)",
                        exitCode: ClientFailure.ExitStatus.unavailable)
                case .lost(let why): throw ClientFailure(why, exitCode: ClientFailure.ExitStatus.unavailable)
                case .timedOut: return
                }
            }
        }
    }
}
