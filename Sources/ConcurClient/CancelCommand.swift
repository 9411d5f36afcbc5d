package import ArgumentParser
import ConcurProtocol
import Varlink

extension ConcurctlCommand {
    /// `concurctl cancel`: cancel jobs by id, or every queued one.
    package struct Cancel: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
            abstract: "Cancel jobs: the ids given (all or none), or with --queued every job waiting to run.",
            discussion: """
                A job that has not started ends cancelled at once. A running one is interrupted (an exec \
                command's process group gets SIGTERM, then SIGKILL 2 s later) and ends cancelled once it \
                stops; `concurctl wait ID` waits for that. A cancelled job is never run again, even after \
                a restart.
                """)

        @Argument(help: ArgumentHelp("Ids of the jobs to cancel: 12 15, 12,15 or 10-20.", valueName: "ids"))
        var words: [JobIDWord] = []

        /// The ids the words give.
        var ids: [Int64] { words.ids }

        @Flag(help: "Cancel every job not started: queued, scheduled or waiting for others (running ones go on).")
        var queued = false

        @OptionGroup var pool: PoolOption
        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Checks the options together before the command runs.
        package func validate() throws {
            if queued && !ids.isEmpty { throw ValidationError("give job ids or --queued, not both") }
            if !queued && ids.isEmpty {
                throw ValidationError("nothing to cancel: give job ids (concurctl cancel 12 13) or --queued")
            }
            if let bad = ids.first(where: { $0 < 1 }) { throw ValidationError("job ids start at 1, not \(bad)") }
            if pool.pool != nil && !queued {
                throw ValidationError("--pool goes with --queued: an id names its job in whichever pool holds it")
            }
        }

        /// Runs the command.
        package func run() throws {
            let parameters: JSONObject =
                queued ? pool.adding(to: ["queued": .bool(true)]) : ["ids": .array(ids.map { .int($0) })]
            try common.show(.cancel, parameters) { reply throws(ClientFailure) in
                let cancelled = try ControlClient.decode([UInt64].self, "cancelled", in: reply)
                let stopping = try ControlClient.decode([UInt64].self, "stopping", in: reply)
                var lines: [String] = []
                if !cancelled.isEmpty {
                    lines.append(
                        "cancelled \(cancelled.count) job\(cancelled.count == 1 ? "" : "s"): \(Rendering.idRange(cancelled))")
                }
                if !stopping.isEmpty {
                    lines.append(
                        "stopping \(stopping.count) running job\(stopping.count == 1 ? "" : "s"): \(Rendering.idRange(stopping)) (concurctl wait \(stopping.map(String.init).joined(separator: " ")) waits for \(stopping.count == 1 ? "it" : "them"))"
                    )
                }
                return lines.isEmpty ? ["\(pool.prefix)no queued job to cancel"] : lines
            }
        }
    }
}
