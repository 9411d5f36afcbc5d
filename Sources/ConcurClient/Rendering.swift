package import ConcurProtocol
import Varlink

/// Human output of `concurctl`: plain text lines, aligned, for a terminal.
///
/// Pure functions of the replies, so tests can check exactly what a person sees.
package enum Rendering {
    /// `status`: the daemon at a glance.
    package static func status(_ status: PoolStatus) -> [String] {
        let workers = status.workers
        let totals = status.totals
        let named = status.pool == PoolName.default.rawValue ? "" : ", pool \(TerminalText.escaped(status.pool))"
        let removed = status.removed ? " (removed from the configuration: it takes no work; its unfinished jobs are kept)" : ""
        return [
            "concurd \(status.version), pid \(status.pid), up \(formatDuration(status.uptimeSeconds)): \(status.phase.rawValue)\(named)\(removed)",
            "model     \(status.model.rawValue)" + switches(status),
            "workers   \(workers.live) live (\(workers.busy) busy, \(workers.idle) idle, \(workers.retiring) retiring), target \(workers.target)",
            "queue     \(status.queued) queued, \(status.running) running (limit \(status.maxQueue))"
                + (status.scheduled + status.waiting > 0
                    ? "; \(status.scheduled) scheduled, \(status.waiting) waiting for other jobs" : ""),
            "jobs      \(taken(totals, node: status.node)): \(totals.done) done, \(totals.failed) failed, \(totals.cancelled) cancelled; \(totals.retried) retried",
        ] + status.warnings.map { "warning   \(TerminalText.escaped($0))" }
    }

    /// How the jobs a pool took are counted: submitted to it, or, on node `node` of a shared
    /// queue, claimed from the queue (the jobs submitted there may run on any node).
    private static func taken(_ totals: JobTotals, node: String?) -> String {
        guard let node else { return "\(totals.submitted) submitted" }
        return "\(totals.submitted) claimed by node \(TerminalText.escaped(node)) from the shared queue"
    }

    /// `status` of a daemon with several pools: the daemon's line, one row per pool, the totals
    /// of all. With one pool, ``status(_:)`` of it.
    package static func status(pools: [PoolStatus]) -> [String] {
        guard pools.count > 1, let first = pools.first else { return pools.first.map { status($0) } ?? [] }
        let columns: [(String, Int)] = [
            ("POOL", 12), ("MODEL", 10), ("WORKERS", 8), ("BUSY", 6), ("QUEUED", 8), ("SCHED", 7), ("WAITING", 8),
            ("RUNNING", 8), ("DONE", 9), ("FAILED", 7), ("", 0),
        ]
        var lines = [
            "concurd \(first.version), pid \(first.pid), up \(formatDuration(first.uptimeSeconds)): \(first.phase.rawValue), \(pools.count) pools",
            columns.enumerated().map { index, column in index < 2 ? rightPad(column.0, column.1) : leftPad(column.0, column.1) }
                .joined() + "  STATE",
        ]
        for pool in pools {
            let state =
                pool.removed
                ? "removed: takes no work, \(pool.queued + pool.scheduled + pool.waiting) unfinished kept"
                : pool.paused ? "paused" : (pool.handingOver > 0 ? "switching" : "serving")
            let cells = [
                poolCell(pool.pool), rightPad(pool.model.rawValue, 10),
                leftPad(String(pool.workers.live), 8),
                leftPad(String(pool.workers.busy), 6), leftPad(String(pool.queued), 8), leftPad(String(pool.scheduled), 7),
                leftPad(String(pool.waiting), 8), leftPad(String(pool.running), 8), leftPad(String(pool.totals.done), 9),
                leftPad(String(pool.totals.failed), 7),
            ]
            lines.append(cells.joined() + "  " + state)
        }
        let totals = pools.reduce(JobTotals()) { $0 + $1.totals }
        lines.append(
            "jobs      \(taken(totals, node: first.node)): \(totals.done) done, \(totals.failed) failed, \(totals.cancelled) cancelled; \(totals.retried) retried (all pools; --pool NAME for one)"
        )
        for pool in pools {
            lines += pool.warnings.map { "warning   pool \(TerminalText.escaped(pool.pool)): \(TerminalText.escaped($0))" }
        }
        return lines
    }

    /// A pool's name in a table's 12-column POOL cell: escaped, and cut with an ellipsis past
    /// 11 characters so that the next column keeps its place (`status --pool NAME` shows it
    /// whole).
    static func poolCell(_ name: String) -> String { cell(name, 12) }

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

    /// `stats`: the status, then throughput, latency percentiles, the process and one row per worker.
    package static func stats(_ stats: PoolStats) -> [String] {
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
            "process   CPU \(formatDecimal(process.cpuUserSeconds)) s user + \(formatDecimal(process.cpuSystemSeconds)) s system, RSS \(formatBytes(process.rssBytes)), \(process.threads) threads; \(stats.resizes) resize\(stats.resizes == 1 ? "" : "s"); \(stats.workerDeaths) worker death\(stats.workerDeaths == 1 ? "" : "s"), \(stats.workerRestarts) restart\(stats.workerRestarts == 1 ? "" : "s")"
        )
        if let record = stats.lastSwitch { lines.append(lastSwitch(record)) }
        lines.append(contentsOf: workers(stats.workers))
        return lines
    }

    /// The worker table.
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
                    + leftPad("\(Int((worker.busyFraction * 100).rounded()))%", 6)
                    + leftPad(worker.rssBytes.map(formatBytes) ?? "-", 10))
        }
        return lines
    }

    /// `jobs`: one row per job.
    package static func jobs(_ jobs: [JobInfo]) -> [String] {
        guard !jobs.isEmpty else { return ["no jobs"] }
        // A priority column only when one of them has a priority, a pool column only when one
        // is not in the default pool, a node column only in a shared queue.
        let priorities = jobs.contains { $0.spec.priority != 0 }
        let pools = jobs.contains { $0.pool != PoolName.default.rawValue }
        let nodes = jobs.contains { $0.node != nil }
        var lines = [
            leftPad("ID", 8) + "  " + (pools ? rightPad("POOL", 12) : "") + (nodes ? rightPad("NODE", 12) : "")
                + rightPad("STATE", 10) + rightPad("JOB", 26)
                + (priorities ? leftPad("PRI", 4) : "")
                + leftPad("TRIES", 6) + leftPad("WORKER", 8) + leftPad("WAIT", 10) + leftPad("RUN", 10) + "  RESULT"
        ]
        for job in jobs {
            lines.append(
                leftPad(String(job.id), 8) + "  " + (pools ? poolCell(job.pool) : "")
                    + (nodes ? cell(job.node ?? "-", 12) : "") + rightPad(job.state.rawValue, 10) + rightPad(label(job), 26)
                    + (priorities ? leftPad(String(job.spec.priority), 4) : "")
                    + leftPad(String(job.attempts), 6) + leftPad(job.worker.map(String.init) ?? "-", 8)
                    + leftPad(job.waitSeconds.map(formatDuration) ?? "-", 10)
                    + leftPad(job.runSeconds.map(formatDuration) ?? "-", 10)
                    + "  " + outcome(job))
        }
        return lines
    }

    /// What the table leaves out of the jobs asked for by id: each run that failed and was
    /// retried, when the next one may start, and a command's last lines of output. Times are
    /// seconds after the job was submitted.
    package static func jobDetails(_ jobs: [JobInfo], outputLines: Int = 5) -> [String] {
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
                    lines.append("  | " + TerminalText.escaped(String(line)))
                }
            }
        }
        return lines
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
