package import ArgumentParser
import ConcurProtocol

extension ConcurctlCommand {
    /// `concurctl resume`: workers take jobs again.
    package struct Resume: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(abstract: "Hand out jobs again after `pause`.")

        @OptionGroup var pool: PoolOption
        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Runs the command.
        package func run() throws {
            try common.show(.resume, pool.parameters) { reply in
                [pool.prefix + (reply["changed"] == .bool(true) ? "resumed" : "not paused")]
            }
        }
    }
}
