package import ArgumentParser
import ConcurProtocol
import Varlink

extension ConcurctlCommand {
    /// `concurctl jobs`: jobs by id or state.
    package struct Jobs: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
            abstract: "List jobs: the ids given, or the most recent ones (optionally in one state).")

        @Argument(help: ArgumentHelp("Job ids to show: 12 15, 12,15 or 10-20.", valueName: "ids"))
        var words: [JobIDWord] = []

        /// The ids the words give.
        var ids: [Int64] { words.ids }

        @Option(help: "Only jobs in this state: queued, scheduled, waiting, running, done, failed or cancelled.")
        var state: JobState?

        @Option(help: "At most this many jobs, 1 to 10000.")
        var limit: Int = 20

        @Option(help: "Only jobs of this pool (default: every pool).")
        var pool: String?

        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Checks the options together before the command runs.
        package func validate() throws {
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 10000, not \(limit)") }
            if let bad = ids.first(where: { $0 < 1 }) { throw ValidationError("job ids start at 1, not \(bad)") }
            if let pool, let problem = PoolName.problem(with: pool) { throw ValidationError("--pool: \(problem)") }
        }

        /// Runs the command.
        package func run() throws {
            var parameters: JSONObject = ["limit": limit.json]
            if !ids.isEmpty { parameters["ids"] = .array(ids.map { .int($0) }) }
            parameters.set("state", state)
            if let pool { parameters["pool"] = .string(pool) }
            try perform { () throws(ClientFailure) in
                // In parts: a long list does not fit one message.
                var jobs: [JSON] = []
                for part in try common.connect().collect(.listJobs, parameters) {
                    guard case .array(let some) = part["jobs"] else {
                        throw ClientFailure(
                            "concurd sent a reply this concurctl does not understand (field 'jobs'); are they different versions?"
                        )
                    }
                    jobs += some
                }
                try common.present(["jobs": .array(jobs)]) { reply throws(ClientFailure) in
                    let listed = try ControlClient.decode([JobInfo].self, "jobs", in: reply)
                    // Asked for by id: what each run did, too.
                    let width = TerminalWidth.current()
                    return Rendering.jobs(listed, width: width)
                        + (ids.isEmpty ? [] : Rendering.jobDetails(listed, width: width))
                }
            }
        }
    }
}
