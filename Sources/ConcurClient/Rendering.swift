package import ConcurProtocol
import Varlink

/// Human output of `concurctl`: plain text lines, aligned, for a terminal.
///
/// Pure functions of the replies, so tests can check exactly what a person sees.
package enum Rendering {
    /// `status`: the daemon at a glance; sentences wrap at `width` under their label.
    package static func status(_ status: PoolStatus, width: Int? = nil) -> [String] {
        let workers = status.workers
        let totals = status.totals
        let named = status.pool == PoolName.default.rawValue ? "" : ", pool \(TerminalText.escaped(status.pool))"
        let removed = status.removed ? " (removed from the configuration: it takes no work; its unfinished jobs are kept)" : ""
        return wrapped(
            [
                "concurd \(status.version), pid \(status.pid), up \(formatDuration(status.uptimeSeconds)): \(status.phase.rawValue)\(named)\(removed)",
                "model     \(status.model.rawValue)" + switches(status),
                "workers   \(workers.live) live (\(workers.busy) busy, \(workers.idle) idle, \(workers.retiring) retiring), target \(workers.target)",
                "queue     \(status.queued) queued, \(status.running) running (limit \(status.maxQueue))"
                    + (status.scheduled + status.waiting > 0
                        ? "; \(status.scheduled) scheduled, \(status.waiting) waiting for other jobs" : ""),
                "jobs      \(taken(totals, node: status.node)): \(totals.done) done, \(totals.failed) failed, \(totals.cancelled) cancelled; \(totals.retried) retried",
            ] + status.warnings.map { "warning   \(TerminalText.escaped($0))" }, width: width)
    }

    /// The column under the labels of `status` and `stats` (`model     `), where a sentence
    /// that wraps goes on.
    static let labelColumn = 10

    /// `lines`, each wrapped at `width` with what follows the first line under the labels.
    static func wrapped(_ lines: [String], width: Int?) -> [String] {
        lines.flatMap { TerminalText.wrap($0, width: width, indent: labelColumn) }
    }

    /// How the jobs a pool took are counted: submitted to it, or, on node `node` of a shared
    /// queue, claimed from the queue (the jobs submitted there may run on any node).
    private static func taken(_ totals: JobTotals, node: String?) -> String {
        guard let node else { return "\(totals.submitted) submitted" }
        return "\(totals.submitted) claimed by node \(TerminalText.escaped(node)) from the shared queue"
    }

    /// `status` of a daemon with several pools: the daemon's line, one row per pool, the totals
    /// of all. With one pool, ``status(_:width:)`` of it. The scheduled and waiting columns show
    /// only when a pool has such jobs; names give up room to fit `width`.
    package static func status(pools: [PoolStatus], width: Int? = nil) -> [String] {
        guard pools.count > 1, let first = pools.first else { return pools.first.map { status($0, width: width) } ?? [] }
        let later = pools.contains { $0.scheduled + $0.waiting > 0 }
        var columns: [TextTable.Column] = [.left("POOL", 12, shrinksTo: 8), .left("MODEL", 10), .right("WORKERS", 7)]
        columns += [.right("BUSY", 5), .right("QUEUED", 8)]
        if later { columns += [.right("SCHED", 7), .right("WAITING", 8)] }
        columns += [.right("RUNNING", 8), .right("DONE", 9), .right("FAILED", 7)]
        let table = TextTable(columns: columns, last: "STATE")
        let rows = pools.map { pool in
            let state =
                pool.removed
                ? "removed: takes no work, \(pool.queued + pool.scheduled + pool.waiting) unfinished kept"
                : pool.paused ? "paused" : (pool.handingOver > 0 ? "switching" : "serving")
            var cells = [
                TerminalText.escaped(pool.pool), pool.model.rawValue, String(pool.workers.live), String(pool.workers.busy),
                String(pool.queued),
            ]
            if later { cells += [String(pool.scheduled), String(pool.waiting)] }
            return cells + [String(pool.running), String(pool.totals.done), String(pool.totals.failed), state]
        }
        let totals = pools.reduce(JobTotals()) { $0 + $1.totals }
        return wrapped(
            [
                "concurd \(first.version), pid \(first.pid), up \(formatDuration(first.uptimeSeconds)): \(first.phase.rawValue), \(pools.count) pools"
            ], width: width) + table.lines(rows, width: width)
            + wrapped(
                [
                    "jobs      \(taken(totals, node: first.node)): \(totals.done) done, \(totals.failed) failed, \(totals.cancelled) cancelled; \(totals.retried) retried (all pools; --pool NAME for one)"
                ]
                    + pools.flatMap { pool in
                        pool.warnings.map { "warning   pool \(TerminalText.escaped(pool.pool)): \(TerminalText.escaped($0))" }
                    }, width: width)
    }

    /// The jobs a stream's reply counts instead of sending them (the client was too far behind),
    /// if it is such a reply.
    static func skipped(in reply: JSONObject) -> JobTotals? {
        guard case .object(let counts)? = reply["skipped"] else { return nil }
        func count(_ key: String) -> Int {
            if case .int(let value)? = counts[key] { return Int(value) }
            return 0
        }
        return JobTotals(done: count("done"), failed: count("failed"), cancelled: count("cancelled"))
    }

    /// The line for jobs counted instead of shown.
    static func skippedLine(_ totals: JobTotals) -> String {
        let count = totals.done + totals.failed + totals.cancelled
        return "(\(count) more job\(count == 1 ? "" : "s") ended while this client was too far behind to be sent each: "
            + "\(totals.done) done, \(totals.failed) failed, \(totals.cancelled) cancelled)"
    }

    /// What follows the model: the switches so far and a handover under way.
    static func switches(_ status: PoolStatus) -> String {
        var text = ""
        if status.switches > 0 { text += ", \(status.switches) switch\(status.switches == 1 ? "" : "es") since start" }
        if status.handingOver > 0 {
            text += "; \(status.handingOver) worker\(status.handingOver == 1 ? "" : "s") of the old model finishing"
        }
        return text
    }

    /// The last switch and how long its handover took.
    package static func lastSwitch(_ record: ModelSwitch) -> String {
        func after(_ seconds: Double?, _ done: String, _ pending: String) -> String {
            seconds.map { "\(done) after \(formatDuration($0))" } ?? pending
        }
        return "switch    \(record.from.rawValue) -> \(record.to.rawValue) (\(record.preempt ? "preempting" : "graceful")): "
            + [
                after(record.servingAfter, "serving", "not serving yet"), after(record.firstJobAfter, "first job", "no job yet"),
                after(record.oldRetiredAfter, "old workers gone", "old workers still finishing"),
            ].joined(separator: ", ")
    }

    /// `stats`: the status, then throughput, latency percentiles, the process and one row per
    /// worker; sentences wrap at `width`.
    package static func stats(_ stats: PoolStats, width: Int? = nil) -> [String] {
        var lines = status(stats.status)
        let rate = stats.throughput
        lines.append(
            "throughput \(formatDecimal(rate.last1s, places: 1))/s over 1 s, \(formatDecimal(rate.last10s, places: 1))/s over 10 s, \(formatDecimal(rate.last60s, places: 1))/s over 60 s"
        )
        lines.append("latency      " + ["count", "p50", "p90", "p99", "max"].map { leftPad($0, 10) }.joined())
        for (name, percentiles) in [
            ("queue wait", stats.latency.queueWait), ("run", stats.latency.run), ("end to end", stats.latency.endToEnd),
        ] {
            let values = [percentiles.p50, percentiles.p90, percentiles.p99, percentiles.max].map {
                leftPad(percentiles.count == 0 ? "-" : formatDuration($0), 10)
            }
            lines.append("  " + rightPad(name, 11) + leftPad(String(percentiles.count), 10) + values.joined())
        }
        let process = stats.process
        lines.append(
            "process   CPU \(formatDecimal(process.cpuUserSeconds)) s user + \(formatDecimal(process.cpuSystemSeconds)) s system; RSS \(formatBytes(process.rssBytes)), \(process.threads) threads; \(stats.resizes) resize\(stats.resizes == 1 ? "" : "s"); \(stats.workerDeaths) worker death\(stats.workerDeaths == 1 ? "" : "s"), \(stats.workerRestarts) restart\(stats.workerRestarts == 1 ? "" : "s")"
        )
        if let record = stats.lastSwitch { lines.append(lastSwitch(record)) }
        return wrapped(lines, width: width) + workers(stats.workers).map { TerminalText.cut($0, to: width) }
    }

    /// The worker table; BUSY is the share of the last 10 s spent running jobs.
    package static func workers(_ workers: [WorkerInfo]) -> [String] {
        var lines = [
            "  " + leftPad("ID", 4) + "  " + rightPad("MODEL", 10) + rightPad("STATE", 10) + leftPad("TID/PID", 8)
                + leftPad("JOB", 9) + leftPad("FOR", 10) + leftPad("DONE", 9) + leftPad("BUSY", 6) + leftPad("RSS", 10)
        ]
        for worker in workers {
            let osID = worker.pid ?? worker.thread
            lines.append(
                "  " + leftPad(String(worker.id), 4) + "  " + rightPad(worker.model.rawValue, 10)
                    + rightPad(worker.state.rawValue, 10)
                    + leftPad(osID.map(String.init) ?? "-", 8) + leftPad(worker.job.map(String.init) ?? "-", 9)
                    + leftPad(worker.jobSeconds.map(formatDuration) ?? "-", 10) + leftPad(String(worker.jobsDone), 9)
                    + leftPad("\(Int(((worker.recentBusyFraction ?? worker.busyFraction) * 100).rounded()))%", 6)
                    + leftPad(worker.rssBytes.map(formatBytes) ?? "-", 10))
        }
        return lines
    }

    /// `jobs`: one row per job, fitted to `width` (the command line, pool and node give up
    /// room first, then the result is cut; `--json` has them whole).
    package static func jobs(_ jobs: [JobInfo], width: Int? = nil) -> [String] {
        guard !jobs.isEmpty else { return ["no jobs"] }
        // A priority column only when one of them has a priority, a pool column only when one
        // is not in the default pool, a node column only in a shared queue.
        let priorities = jobs.contains { $0.spec.priority != 0 }
        let pools = jobs.contains { $0.pool != PoolName.default.rawValue }
        let nodes = jobs.contains { $0.node != nil }
        var columns: [TextTable.Column] = [.right("ID", 7)]
        if pools { columns.append(.left("POOL", 12, shrinksTo: 8)) }
        if nodes { columns.append(.left("NODE", 12, shrinksTo: 8)) }
        columns += [.left("STATE", 10), .left("JOB", 26, shrinksTo: 12)]
        if priorities { columns.append(.right("PRI", 5)) }
        columns += [.right("TRIES", 6), .right("WORKER", 7), .right("WAIT", 8), .right("RUN", 8)]
        let table = TextTable(columns: columns, last: "RESULT")
        return table.lines(
            jobs.map { job in
                var cells = [String(job.id)]
                if pools { cells.append(TerminalText.escaped(job.pool)) }
                if nodes { cells.append(job.node.map(TerminalText.escaped) ?? "-") }
                cells += [job.state.rawValue, label(job)]
                if priorities { cells.append(String(job.spec.priority)) }
                cells += [
                    String(job.attempts), job.worker.map(String.init) ?? "-", job.waitSeconds.map(formatDuration) ?? "-",
                    job.runSeconds.map(formatDuration) ?? "-", outcome(job),
                ]
                return cells
            }, width: width)
    }

    /// What the table leaves out of the jobs asked for by id: each run that failed and was
    /// retried, when the next one may start, and a command's last lines of output. Times are
    /// seconds after the job was submitted. Sentences wrap at `width`; lines of output are cut
    /// there (`jobs ID --json` has them whole).
    package static func jobDetails(_ jobs: [JobInfo], outputLines: Int = 5, width: Int? = nil) -> [String] {
        var lines: [String] = []
        for job in jobs {
            for attempt in job.history {
                let ran = attempt.startedAt.map { ", ran \(formatDuration(attempt.finishedAt - $0))" } ?? ""
                let status = attempt.exitCode.map { "exit \($0): " } ?? attempt.signal.map { "signal \($0): " } ?? ""
                lines.append(
                    "job \(job.id) attempt \(attempt.attempt) (ended at +\(formatDuration(attempt.finishedAt - job.submittedAt))\(ran)): \(status)\(TerminalText.escaped(attempt.error))"
                )
            }
            if job.spec.priority != 0 { lines.append("job \(job.id) has priority \(job.spec.priority)") }
            if job.state == .scheduled, let startAt = job.spec.startAt {
                lines.append("job \(job.id) is scheduled to start at \(StartTime.localText(startAt))")
            }
            if !job.spec.after.isEmpty {
                let waits =
                    job.waitingFor.isEmpty ? "" : "; it waits for \(job.waitingFor.map(String.init).joined(separator: ", "))"
                lines.append("job \(job.id) runs after \(job.spec.after.map(String.init).joined(separator: ", "))\(waits)")
            }
            if let retryAt = job.retryAt, let policy = job.spec.retry {
                lines.append(
                    "job \(job.id) runs again at +\(formatDuration(max(0, retryAt - job.submittedAt))) (retry \(job.history.count) of \(policy.retries))"
                )
            }
            if let output = job.result?.output, !output.isEmpty {
                let last = output.split(separator: "\n", omittingEmptySubsequences: false).suffix(outputLines + 1)
                    .drop { $0.isEmpty }
                lines.append("job \(job.id) output, last lines:")
                for line in last.reversed().drop(while: { $0.isEmpty }).reversed() {
                    lines.append(TerminalText.cut("  | " + TerminalText.escaped(String(line)), to: width))
                }
            }
        }
        return lines.flatMap { $0.hasPrefix("  | ") ? [$0] : TerminalText.wrap($0, width: width, indent: 4) }
    }

    /// One finished job, as `submit --wait` prints it.
    package static func finishedJob(_ job: JobInfo) -> String {
        let worker = job.worker.map { " on worker \($0)" } ?? ""
        let took = job.runSeconds.map { " in \(formatDuration($0))" } ?? ""
        return "job \(job.id) \(label(job)): \(job.state.rawValue)\(took)\(worker): \(outcome(job))"
    }

    /// A job's label (its command line, for an exec job), escaped for the terminal.
    static func label(_ job: JobInfo) -> String {
        TerminalText.escaped(job.kind.label)
    }

    /// A job's result, or for a job that did not end `done`, why (and its result, if any),
    /// escaped for the terminal.
    static func outcome(_ job: JobInfo) -> String {
        if job.state == .scheduled, let startAt = job.spec.startAt { return "starts \(StartTime.localText(startAt))" }
        if job.state == .waiting { return "after \(idRange(job.waitingFor))" }
        guard job.state != .done, let error = job.error else {
            return TerminalText.escaped(job.result?.summary ?? job.error ?? "")
        }
        return TerminalText.escaped(job.result.map { "\(error) (\($0.summary))" } ?? error)
    }

    /// The last line of `submit --wait`.
    package static func waitSummary(done: Int, failed: Int, cancelled: Int, seconds: Double) -> String {
        let total = done + failed + cancelled
        return
            "\(total) job\(total == 1 ? "" : "s") finished in \(formatDuration(seconds)): \(done) done, \(failed) failed, \(cancelled) cancelled"
    }

    /// `1-20` or `3-5, 8, 11-14`: ids, sorted, with runs of consecutive ones collapsed; past
    /// ten runs, the rest is counted (`3-5, 8, ... (1000 jobs)`).
    package static func idRange(_ ids: [UInt64]) -> String {
        guard !ids.isEmpty else { return "none" }
        var runs: [ClosedRange<UInt64>] = []
        for id in ids.sorted() {
            if let last = runs.last, id <= last.upperBound + 1 {
                runs[runs.count - 1] = last.lowerBound...max(last.upperBound, id)
            } else {
                runs.append(id...id)
            }
        }
        let text = runs.prefix(10).map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
            .joined(separator: ", ")
        return runs.count > 10 ? "\(text), ... (\(ids.count) jobs)" : text
    }
}
