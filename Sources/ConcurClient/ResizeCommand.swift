package import ArgumentParser
import ConcurProtocol

extension ConcurctlCommand {
    /// `concurctl resize`: set the number of workers.
    package struct Resize: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
            abstract:
                "Set the number of workers: growing starts workers at once; shrinking retires idle workers first, busy ones after their job."
        )

        @Option(help: "The new number of workers.")
        var workers: Int

        @OptionGroup var pool: PoolOption
        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Checks the options together before the command runs.
        package func validate() throws {
            guard workers >= 1 else { throw ValidationError("--workers must be at least 1, not \(workers)") }
        }

        /// Runs the command.
        package func run() throws {
            try common.show(.resize, pool.adding(to: ["workers": workers.json])) { reply throws(ClientFailure) in
                ["\(pool.prefix)workers: \(try ControlClient.decode(Int.self, "previous", in: reply)) -> \(workers)"]
            }
        }
    }
}
