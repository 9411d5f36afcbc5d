package import ArgumentParser
import ConcurProtocol

extension ConcurctlCommand {
    /// `concurctl pause`: workers stop taking jobs.
    package struct Pause: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
            abstract: "Stop handing out jobs: running jobs finish, new ones wait in the queue until `resume`.")

        @OptionGroup var pool: PoolOption
        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Runs the command.
        package func run() throws {
            try common.show(.pause, pool.parameters) { reply in
                [pool.prefix + (reply["changed"] == .bool(true) ? "paused: workers take no new jobs" : "already paused")]
            }
        }
    }
}
