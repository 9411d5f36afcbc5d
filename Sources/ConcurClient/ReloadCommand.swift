package import ArgumentParser
import ConcurProtocol

extension ConcurctlCommand {
    /// `concurctl reload`: the daemon reads its configuration file again and applies it.
    package struct Reload: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
            abstract: "Make concurd read its configuration file again and apply it; returns once it is applied.",
            discussion: """
                Workers, model (a graceful switch), queue limit, drain timeout, retention, attempts, job \
                timeout, exec permission and log level change live. The unit's ExecReload= uses it, so that \
                `systemctl reload concurd` returns after the change. A file that does not pass its checks \
                changes nothing and the reason is printed.
                """)

        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Runs the command.
        package func run() throws {
            try perform { () throws(ClientFailure) in
                let reply = try common.connect().call(.reload, timeout: 0)
                if common.json {
                    printJSON(reply)
                    return
                }
                let applied = (try? ControlClient.decode([String].self, "applied", in: reply)) ?? []
                let later = (try? ControlClient.decode([String].self, "restartNeeded", in: reply)) ?? []
                StandardStreams.printLine(
                    applied.isEmpty ? "reloaded: nothing changed" : "reloaded: " + applied.joined(separator: ", "))
                if !later.isEmpty {
                    StandardStreams.printLine("at the next start (restart concurd to apply): " + later.joined(separator: ", "))
                }
            }
        }
    }
}
