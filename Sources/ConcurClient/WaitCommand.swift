package import ArgumentParser
import ConcurProtocol
import Varlink

extension ConcurctlCommand {
    /// `concurctl wait`: block until jobs have ended.
    package struct Wait: ParsableCommand {
        /// The command's name, help text and subcommands.
        package static let configuration = CommandConfiguration(
            abstract: "Wait until jobs have ended (the ids given, or with --all every job queued or running now), printing each.",
            discussion: """
                Jobs that already ended are printed at once. Exit status: 0 if every job ended done, 1 if \
                some failed or were cancelled, 124 if --timeout passed first (the jobs go on).
                """)

        @Argument(help: ArgumentHelp("Ids of the jobs to wait for: 12 15, 12,15 or 10-20.", valueName: "ids"))
        var words: [JobIDWord] = []

        /// The ids the words give.
        var ids: [Int64] { words.ids }

        @Flag(help: "Wait for every job not ended at the call: queued, scheduled, waiting for others, or running.")
        var all = false

        @Option(help: "With --all: only the jobs of this pool (default: every pool).")
        var pool: String?

        @Option(help: "Give up after this many seconds (0.001 to 31536000; default: as long as it takes).")
        var timeout: Double?

        @OptionGroup var common: CommonOptions

        /// An empty command, filled in by the argument parser.
        package init() {}

        /// Checks the options together before the command runs.
        package func validate() throws {
            if all && !ids.isEmpty { throw ValidationError("give job ids or --all, not both") }
            if !all && ids.isEmpty { throw ValidationError("nothing to wait for: give job ids (concurctl wait 12 13) or --all") }
            if let bad = ids.first(where: { $0 < 1 }) { throw ValidationError("job ids start at 1, not \(bad)") }
            if Set(ids).count > 10_000 {
                throw ValidationError("at most 10000 job ids at once; wait for several sets, or use --all (--pool for one pool)")
            }
            if let pool, let problem = PoolName.problem(with: pool) { throw ValidationError("--pool: \(problem)") }
            if pool != nil && !all {
                throw ValidationError("--pool goes with --all: an id names its job in whichever pool holds it")
            }
            if let timeout, !(0.001...31_536_000).contains(timeout) {
                throw ValidationError("--timeout must be between 0.001 and 31536000 seconds, not \(formatDecimal(timeout))")
            }
        }

        /// Runs the command.
        package func run() throws {
            var parameters: JSONObject =
                all ? ["unfinished": .bool(true), "events": .bool(false)] : ["ids": .array(ids.map { .int($0) })]
            if let pool { parameters["pool"] = .string(pool) }
            try perform { () throws(ClientFailure) in
                var tally = (done: 0, failed: 0, cancelled: 0)
                var pending = Set(ids.map { UInt64($0) })
                let end = try common.connect().follow(.watchJobs, parameters, timeout: timeout) { reply throws(ClientFailure) in
                    if let skipped = Rendering.skipped(in: reply) {
                        tally = (tally.done + skipped.done, tally.failed + skipped.failed, tally.cancelled + skipped.cancelled)
                        if common.json {
                            printJSON(["skipped": reply["skipped"]!])
                        } else {
                            StandardStreams.printLine(Rendering.skippedLine(skipped))
                        }
                        return true
                    }
                    // `--all` with nothing unfinished: one empty reply.
                    guard reply["job"] != nil else { return true }
                    let job = try ControlClient.decode(JobInfo.self, "job", in: reply)
                    pending.remove(job.id)
                    switch job.state {
                    case .done: tally.done += 1
                    case .failed: tally.failed += 1
                    default: tally.cancelled += 1
                    }
                    if common.json {
                        printJSON(["job": job.json])
                    } else {
                        StandardStreams.printLine(Rendering.finishedJob(job))
                    }
                    return true
                }
                let total = tally.done + tally.failed + tally.cancelled
                let counts = "\(tally.done) done, \(tally.failed) failed, \(tally.cancelled) cancelled"
                switch end {
                case .finished:
                    if !common.json {
                        StandardStreams.printLine(
                            total == 0 ? "no job was queued or running" : "\(total) job\(total == 1 ? "" : "s") ended: \(counts)")
                    }
                    if tally.failed + tally.cancelled > 0 {
                        throw ExitCodeFailure.notAllDone(failed: tally.failed, cancelled: tally.cancelled)
                    }
                case .timedOut:
                    let left = all ? "the others" : "jobs \(Rendering.idRange(pending.sorted()))"
                    throw ClientFailure(
                        "timed out after \(formatDecimal(timeout ?? 0)) s with \(left) not ended yet (\(total) ended: \(counts)); they go on",
                        exitCode: ClientFailure.ExitStatus.timedOut)
                case .closedByDaemon:
                    throw ClientFailure(
                        "concurd closed the connection before the jobs ended (\(total) ended: \(counts)); is it shutting down?",
                        exitCode: ClientFailure.ExitStatus.unavailable)
                case .lost(let why):
                    throw ClientFailure(why, exitCode: ClientFailure.ExitStatus.unavailable)
                }
            }
        }
    }
}
