package import ArgumentParser
import ConcurProtocol

extension ConcurctlCommand {
    /// `concurctl status`: the daemon at a glance.
    package struct Status: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(abstract: "Show the model, workers, queue and job totals.")

        @OptionGroup var pool: PoolOption

        @Flag(
            help: ArgumentHelp(
                "Show every node of the shared queue (--store) and the queue's jobs by pool.",
                discussion: "Read from the queue: other nodes' pools are as of their last heartbeat."))
        var cluster = false

        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Refuses `--cluster` with `--pool`: the cluster view has every pool.
        package func validate() throws {
            if cluster && pool.pool != nil {
                throw ValidationError("--cluster shows every pool of every node; leave out --pool")
            }
        }

        /// Runs the command.
        package func run() throws {
            if cluster {
                try common.show(.clusterStatus) { reply throws(ClientFailure) in
                    try Rendering.cluster(ControlClient.decode(ClusterStatus.self, in: reply), width: TerminalWidth.current())
                }
                return
            }
            try common.show(.status, pool.parameters) { reply throws(ClientFailure) in
                let status = try ControlClient.decode(PoolStatus.self, "status", in: reply)
                // Every pool, unless one was asked for (or the daemon predates pools).
                let width = TerminalWidth.current()
                guard pool.pool == nil, reply["pools"] != nil else { return Rendering.status(status, width: width) }
                return Rendering.status(pools: try ControlClient.decode([PoolStatus].self, "pools", in: reply), width: width)
            }
        }
    }
}
