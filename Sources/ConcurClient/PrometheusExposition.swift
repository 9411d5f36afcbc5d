package import ConcurProtocol

/// `concurctl stats --format prometheus`: a `Stats` snapshot in the Prometheus text exposition
/// format, as node_exporter's textfile collector reads it and `promtool check metrics` passes.
///
/// Totals are counters; everything that goes up and down is a gauge; each latency is a summary
/// (the daemon keeps HdrHistograms, whose percentiles are exact to 0.1%, not Prometheus
/// buckets) with a `window` label: `10s` for the last 10 seconds, `all` since start. Per-worker
/// series are labelled by the worker's place (`slot`), which a replacement takes over.
/// Written here rather than with swift-prometheus, whose registry emits families in hash order
/// and has no summary of quantiles computed elsewhere.
package enum PrometheusExposition {
    /// The exposition text of one pool's `stats`.
    package static func text(_ stats: PoolStats) -> String {
        text([stats])
    }

    /// The exposition text of several pools' `stats` (the first one's process figures are the
    /// daemon's): every figure of a pool carries a `pool` label. The same figures give the same
    /// text: families in a fixed order, each pool's samples in the order of `pools`.
    package static func text(_ pools: [PoolStats]) -> String {
        var text = PrometheusText()
        for (index, stats) in pools.enumerated() { add(stats, daemon: index == 0, to: &text) }
        return text.text
    }

    private static func add(_ stats: PoolStats, daemon: Bool, to text: inout PrometheusText) {
        let status = stats.status
        let pool = ("pool", status.pool)
        // A pool's figures carry its name; the daemon's own (uptime, process) do not.
        func gauge(_ metric: String, _ help: String, _ value: Double, _ labels: [(String, String)] = [], daemonWide: Bool = false)
        {
            text.add("concur_\(metric)", .gauge, help: help, labels: daemonWide ? labels : [pool] + labels, value: value)
        }
        func counter(
            _ metric: String, _ help: String, _ value: Double, _ labels: [(String, String)] = [], daemonWide: Bool = false
        ) {
            text.add("concur_\(metric)", .counter, help: help, labels: daemonWide ? labels : [pool] + labels, value: value)
        }
        func counter(_ metric: String, _ help: String, _ value: Int, _ labels: [(String, String)] = []) {
            counter(metric, help, Double(value), labels)
        }
        if daemon { gauge("up_seconds", "Seconds since concurd started", status.uptimeSeconds, daemonWide: true) }
        for model in ConcurrencyModel.allCases {
            gauge(
                "model", "1 for the model the pool runs, 0 for the others", model == status.model ? 1 : 0,
                [("model", model.rawValue)])
        }
        gauge("pool_removed", "1 for a pool a reload removed (its unfinished jobs are kept)", status.removed ? 1 : 0)
        gauge("paused", "1 while workers take no new jobs", status.paused ? 1 : 0)
        gauge("draining", "1 once shutdown began", status.phase == .draining || status.phase == .stopping ? 1 : 0)
        gauge(
            "degraded", "1 while the job journal cannot record (new jobs refused, none started)",
            status.phase == .degraded ? 1 : 0)
        gauge("workers_target", "Workers asked for", Double(status.workers.target))
        for (state, count) in [
            ("busy", status.workers.busy), ("idle", status.workers.idle), ("retiring", status.workers.retiring),
        ] {
            gauge("workers", "Live workers by state", Double(count), [("state", state)])
        }
        gauge("queue_jobs", "Jobs waiting in the queue", Double(status.queued))
        gauge("scheduled_jobs", "Jobs waiting for their start time", Double(status.scheduled))
        gauge("waiting_jobs", "Jobs waiting for the jobs they run after", Double(status.waiting))
        gauge("queue_limit_jobs", "The queue's limit", Double(status.maxQueue))
        gauge("running_jobs", "Jobs running now", Double(status.running))
        let totals = status.totals
        counter(
            "jobs_submitted_total", "Jobs accepted (on a node of a shared queue: claimed from it)", totals.submitted)
        for (outcome, count) in [("done", totals.done), ("failed", totals.failed), ("cancelled", totals.cancelled)] {
            counter("jobs_finished_total", "Jobs that reached a final state, by outcome", count, [("outcome", outcome)])
        }
        counter("jobs_retried_total", "Attempts beyond a job's first", totals.retried)
        counter("model_switches_total", "Model switches since start", status.switches)
        counter("resizes_total", "Resizes since start", stats.resizes)
        counter("worker_deaths_total", "Workers that died unexpectedly", stats.workerDeaths)
        counter("worker_restarts_total", "Workers started to replace dead ones", stats.workerRestarts)
        for (window, rate) in [
            ("1s", stats.throughput.last1s), ("10s", stats.throughput.last10s), ("60s", stats.throughput.last60s),
        ] {
            gauge("throughput_jobs_per_second", "Jobs finished per second", rate, [("window", window)])
        }
        for (name, help, pick) in latencies {
            for (window, latency) in [("10s", stats.recentLatency), ("all", stats.latency)] {
                let percentiles = pick(latency)
                text.addSummary(
                    "concur_job_\(name)_seconds", help: help, labels: [pool, ("window", window)],
                    quantiles: [
                        ("0.5", percentiles.p50), ("0.9", percentiles.p90), ("0.99", percentiles.p99), ("1", percentiles.max),
                    ],
                    sum: percentiles.sum ?? 0, count: percentiles.count)
            }
        }
        let process = stats.process
        if daemon {
            counter(
                "process_cpu_seconds_total", "CPU time of the daemon process", process.cpuUserSeconds + process.cpuSystemSeconds,
                daemonWide: true)
            gauge(
                "cpu_percent", "CPU of the daemon and its child workers over the last second, percent of one core",
                process.cpuPercent, daemonWide: true)
            gauge(
                "process_resident_memory_bytes", "Resident memory of the daemon process", Double(process.rssBytes),
                daemonWide: true)
            gauge("process_threads", "Threads of the daemon process", Double(process.threads), daemonWide: true)
        }
        // By place, not by worker id: a replacement takes its place's series over, so the
        // series stay as many as the workers however often they are replaced.
        for worker in stats.workers.sorted(by: { ($0.slot ?? $0.id, $0.id) < ($1.slot ?? $1.id, $1.id) }) {
            let labels = [("slot", String(worker.slot ?? worker.id))]
            gauge(
                "worker_busy_ratio", "Share of the life of the worker in this place spent running jobs", worker.busyFraction,
                labels)
            if let recent = worker.recentBusyFraction {
                gauge(
                    "worker_recent_busy_ratio", "Share of the last 10 s the worker in this place spent running jobs", recent,
                    labels)
            }
            counter(
                "worker_jobs_done_total", "Jobs the worker in this place finished (from 0 when it is replaced)",
                worker.jobsDone, labels)
            if let rss = worker.rssBytes {
                gauge("worker_resident_memory_bytes", "Resident memory of the child worker in this place", Double(rss), labels)
            }
        }
    }

    /// The three latencies, each a summary: its name, its help, and where a `Latency` holds it.
    private static let latencies: [(String, String, @Sendable (LatencySummary) -> Percentiles)] = [
        ("queue_wait", "Seconds from a job's submission to the start of its last attempt", { $0.queueWait }),
        ("run", "Seconds a job's last attempt ran", { $0.run }),
        ("end_to_end", "Seconds from a job's submission to its end", { $0.endToEnd }),
    ]
}
