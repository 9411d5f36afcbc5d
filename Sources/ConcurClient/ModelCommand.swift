package import ArgumentParser
import ConcurProtocol

extension ConcurctlCommand {
    /// `concurctl model`: switch the concurrency model while the pool runs.
    package struct Model: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
            abstract: "Switch the concurrency model (threads, processes or tasks) while jobs keep flowing.",
            discussion: """
                The queue stays. By default the handover is graceful: workers of the old model take no \
                more jobs and retire after their running job (idle ones at once), and a worker of the \
                new model starts in each place one leaves, so the pool never has more workers than \
                asked for. With --preempt, running jobs are interrupted instead and go back to the head \
                of the queue, to run again from the start. concurctl returns once a worker of the new \
                model serves; interrupting it does not undo the switch.
                """)

        @Argument(help: "The model to switch to: threads, processes or tasks.")
        var model: ConcurrencyModel

        @Flag(help: "Interrupt running jobs and queue them again instead of waiting for them.")
        var preempt = false

        @OptionGroup var pool: PoolOption
        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Runs the command.
        package func run() throws {
            try perform { () throws(ClientFailure) in
                // A graceful handover may wait for a long job: no reply timeout.
                let reply = try common.connect().call(
                    .setModel, pool.adding(to: ["model": model.json, "preempt": .bool(preempt)]), timeout: 0)
                if common.json {
                    printJSON(reply)
                    return
                }
                let previous = try ControlClient.decode(ConcurrencyModel.self, "previous", in: reply)
                guard try ControlClient.decode(Bool.self, "changed", in: reply) else {
                    StandardStreams.printLine("\(pool.prefix)model: already \(model.rawValue)")
                    return
                }
                let seconds = try ControlClient.decode(Double.self, "servingAfter", in: reply)
                StandardStreams.printLine(
                    "\(pool.prefix)model: \(previous.rawValue) -> \(model.rawValue) (serving after \(formatDuration(seconds)))")
            }
        }
    }
}
