package import ArgumentParser
import ConcurProtocol
import Varlink

extension ConcurctlCommand {
    /// `concurctl shutdown`: stop the daemon, as SIGTERM does.
    package struct Shutdown: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
            abstract: "Stop concurd as SIGTERM does: intake closes and running jobs finish (--now: they are interrupted).",
            discussion: """
                Queued jobs stay in the journal for the next start. Without --now the daemon waits for \
                running jobs up to its drain_timeout; call it again with --now to interrupt them. \
                Under systemd, `systemctl stop concurd` does the same and keeps the unit stopped.
                """)

        @Flag(help: "Interrupt running jobs too (they end cancelled), as a second SIGTERM does.")
        var now = false

        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Runs the command.
        package func run() throws {
            let mode: ShutdownMode = now ? .interrupt : .drain
            try common.show(.shutdown, ["mode": mode.json]) { reply throws(ClientFailure) in
                let reached = try ControlClient.decode(ShutdownMode.self, "mode", in: reply)
                let changed = reply["changed"] == .bool(true)
                switch (reached, changed) {
                case (.drain, true):
                    return ["concurd is draining: running jobs finish, then it exits (shutdown --now interrupts them)"]
                case (.drain, false): return ["concurd was already draining (shutdown --now interrupts the running jobs)"]
                case (.interrupt, true): return ["concurd is stopping: running jobs are being interrupted"]
                case (.interrupt, false): return ["concurd was already interrupting its running jobs"]
                }
            }
        }
    }
}
