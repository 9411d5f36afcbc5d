package import ArgumentParser
import ConcurProtocol

extension ConcurctlCommand {
    /// `concurctl status`: the daemon at a glance.
    package struct Status: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(abstract: "Show the model, workers, queue and job totals.")

        @OptionGroup var pool: PoolOption
        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Runs the command.
        package func run() throws {
            try common.show(.status, pool.parameters) { reply throws(ClientFailure) in
                let status = try ControlClient.decode(PoolStatus.self, "status", in: reply)
                // Every pool, unless one was asked for (or the daemon predates pools).
                guard pool.pool == nil, reply["pools"] != nil else { return Rendering.status(status) }
                return Rendering.status(pools: try ControlClient.decode([PoolStatus].self, "pools", in: reply))
            }
        }
    }
}
