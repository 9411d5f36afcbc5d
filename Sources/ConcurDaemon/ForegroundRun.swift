package import ConcurCore
package import ConcurProtocol
import ConcurRuntime
import Glibc
import Synchronization

/// `concurd run`: one seeded workload in the foreground, without a socket, like the seed's
/// `python -m demo.threads`: a line per job, then a summary that, unlike the seed, names every
/// job that did not run when time ran out or the user pressed Ctrl-C.
package struct ForegroundRun: Sendable {
    /// The pool's model.
    package var model: ConcurrencyModel
    /// Workers.
    package var workers: Int
    /// The workload.
    package var workload: WorkloadRequest
    /// Seconds before running jobs are interrupted and queued ones abandoned.
    package var timeLimit: Double

    /// A run with the given parameters.
    package init(model: ConcurrencyModel, workers: Int, workload: WorkloadRequest, timeLimit: Double) {
        self.model = model
        self.workers = workers
        self.workload = workload
        self.timeLimit = timeLimit
    }

    /// What happened to the jobs, for the summary (and tests).
    package struct Report: Sendable, Equatable {
        /// Jobs that ran to the end.
        package var done: [JobID] = []
        /// Jobs that failed.
        package var failed: [JobID] = []
        /// Jobs interrupted while running.
        package var interrupted: [JobID] = []
        /// Jobs that never started.
        package var neverStarted: [JobID] = []
        /// Why the run stopped early, if it did.
        package var stopReason: String?
    }

    /// Runs the workload, printing as it goes; returns the exit status (0 when every job was
    /// done, 1 otherwise).
    package func run() -> Int32 {
        let report = execute(print: StandardStreams.printLine)
        return report.done.count == workload.count ? 0 : 1
    }

    /// Runs the workload and returns what happened, handing each output line to `print`.
    package func execute(print: @escaping @Sendable (String) -> Void) -> Report {
        let seed = workload.seed ?? WorkloadGenerator.randomSeed()
        let doorbell = ConditionLock()
        let rung = Atomic<Bool>(false)
        let sink = JobWatchSink(capacity: max(workload.count, 1)) {
            doorbell.withLock {
                rung.store(true, ordering: .relaxed)
                doorbell.broadcast()
            }
        }
        let stopReason = Mutex<String?>(nil)
        let shutdown = ShutdownEvent()
        // Signals are blocked before the first thread starts (the models start threads).
        let current = Mutex<Pool?>(nil)
        let signals = SignalWatcher(signals: [SIGINT, SIGTERM]) { number in
            guard let pool = current.withLock({ $0 }) else { return }
            let name = "SIG\(SignalWatcher.name(of: number))"
            if shutdown.escalate() == .cancel {
                stopReason.withLock { $0 = $0 ?? "interrupted by \(name)" }
                pool.cancelRunning(reason: "interrupted by a second \(name)", queuedReason: "never started: \(name)")
            } else {
                stopReason.withLock { $0 = "stopped by \(name)" }
                print("\(name): letting running jobs finish; press Ctrl-C again to interrupt them")
                pool.beginDrain(reason: "never started: \(name)")
            }
            doorbell.withLock { doorbell.broadcast() }
        }
        defer { signals.cancel() }
        let supervisor = makeSupervisor(print: print)
        let pool = supervisor.pool
        current.withLock { $0 = pool }

        let kinds = WorkloadGenerator.jobs(for: workload, seed: seed)
        print(
            "concurd run: \(workload.count) \(workload.kind.rawValue) jobs (seed \(seed)) on \(workers) \(model.rawValue), time limit \(formatDecimal(timeLimit)) s"
        )
        let start = MonotonicClock.now()
        let usageBefore = ProcessUsage.current()
        do {
            try supervisor.start(workers: workers)
            _ = try pool.submit(kinds, watch: sink)
        } catch {
            print("error: \(error)")
            return Report(neverStarted: Array(1...JobID(workload.count)), stopReason: "\(error)")
        }
        let clock = MonotonicClock()
        let deadline = start + UInt64(timeLimit * 1e9)
        var report = Report()
        var timedOut = false
        while true {
            doorbell.withLock {
                while !rung.load(ordering: .relaxed) && (timedOut || MonotonicClock.now() < deadline) {
                    _ = doorbell.wait(untilMonotonic: timedOut ? MonotonicClock.now() + 1_000_000_000 : deadline)
                }
                rung.store(false, ordering: .relaxed)
            }
            let (jobs, ended, _) = sink.takeJobs()
            for job in jobs {
                record(job, into: &report)
                print(line(for: job, since: clock.unixTime(start)))
            }
            if ended { break }
            if !timedOut && MonotonicClock.now() >= deadline {
                timedOut = true
                let reason = "the --time limit of \(formatDecimal(timeLimit)) s was reached"
                stopReason.withLock { $0 = $0 ?? reason }
                print("time limit reached after \(formatDecimal(timeLimit)) s: interrupting running jobs")
                pool.cancelRunning(reason: "interrupted: \(reason)", queuedReason: "never started: \(reason)")
            }
        }
        finish(pool, report: &report, start: start, usageBefore: usageBefore, print: print) {
            stopReason.withLock { $0 }
        }
        return report
    }

    /// The pool this run uses: room for the whole workload, its records kept to the end.
    private func makeSupervisor(print: @escaping @Sendable (String) -> Void) -> Supervisor {
        Supervisor(
            configuration: .init(
                model: model, workers: workers,
                limits: .init(maxQueue: max(workload.count, 1), maxWorkers: max(workers, 1), retainFinished: workload.count)),
            models: WorkerModels.all(nice: DaemonConfiguration().workerNice), version: Daemon.version,
            onEvent: { print("event: \($0)") })
    }

    /// Drains the pool (5 s at most), notes why the run stopped (asked once drained), and
    /// prints the summary: counts, wall and CPU time, latency.
    private func finish(
        _ pool: Pool, report: inout Report, start: UInt64, usageBefore: ProcessUsage, print: (String) -> Void,
        stopReason: () -> String?
    ) {
        pool.beginDrain()
        _ = pool.waitUntilDrained(deadline: MonotonicClock.now() + 5_000_000_000)
        report.stopReason = stopReason()
        let wall = Double(MonotonicClock.now() - start) / 1e9
        let usage = ProcessUsage.current()
        let cpu = usage.cpuUserSeconds + usage.cpuSystemSeconds - usageBefore.cpuUserSeconds - usageBefore.cpuSystemSeconds
        let latency = pool.read { $0.latency.summary }
        for text in summary(report, wall: wall, cpu: cpu, latency: latency) { print(text) }
    }

    private func record(_ job: JobInfo, into report: inout Report) {
        switch job.state {
        case .done: report.done.append(job.id)
        case .failed: report.failed.append(job.id)
        case .cancelled where job.startedAt != nil: report.interrupted.append(job.id)
        case .cancelled: report.neverStarted.append(job.id)
        case .queued, .scheduled, .waiting, .running: break
        }
    }

    private func line(for job: JobInfo, since start: Double) -> String {
        let at = "[\(leftPad(formatFixed((job.finishedAt ?? start) - start, places: 3), 8))s]"
        let worker = job.worker.map { "worker \(leftPad(String($0), 2))" } ?? "         "
        let head = "\(at) \(worker)  job \(leftPad(String(job.id), 4))  \(rightPad(job.kind.label, 26))"
        switch job.state {
        case .done:
            return "\(head) done in \(formatDuration(job.runSeconds ?? 0)): \(job.result?.summary ?? "")"
        case .failed:
            return "\(head) FAILED: \(job.error ?? "")"
        default:
            return "\(head) \(job.error ?? job.state.rawValue)"
        }
    }

    func summary(_ report: Report, wall: Double, cpu: Double, latency: LatencySummary) -> [String] {
        var lines = ["---"]
        if let reason = report.stopReason { lines.append("stopped early: \(reason)") }
        lines.append("\(workload.count) jobs: \(report.done.count) done, \(report.failed.count) failed")
        let notRun = report.interrupted.count + report.neverStarted.count
        if notRun == 0 {
            lines.append("every job ran to the end")
        } else {
            lines.append("not finished: \(notRun) job\(notRun == 1 ? "" : "s")")
            if !report.interrupted.isEmpty { lines.append("  interrupted while running: \(idList(report.interrupted))") }
            if !report.neverStarted.isEmpty { lines.append("  never started: \(idList(report.neverStarted))") }
        }
        if !report.failed.isEmpty { lines.append("failed: \(idList(report.failed))") }
        let finished = report.done.count + report.failed.count
        lines.append(
            "wall \(formatDecimal(wall)) s, CPU \(formatDecimal(cpu)) s (\(formatDecimal(wall > 0 ? cpu / wall : 0)) cores busy), throughput \(formatDecimal(wall > 0 ? Double(finished) / wall : 0, places: 1)) jobs/s"
        )
        if latency.run.count > 0 {
            lines.append(
                "run time p50 \(formatDuration(latency.run.p50)), p99 \(formatDuration(latency.run.p99)); queue wait p50 \(formatDuration(latency.queueWait.p50)), p99 \(formatDuration(latency.queueWait.p99))"
            )
        }
        return lines
    }

    /// `1-4, 7, 9-12`: ids with consecutive runs collapsed.
    func idList(_ ids: [JobID]) -> String {
        var parts: [String] = []
        var runStart: JobID?
        var previous: JobID?
        for id in ids.sorted() + [0] {
            if let last = previous, id == last + 1 {
                previous = id
                continue
            }
            if let first = runStart, let last = previous {
                parts.append(first == last ? "\(first)" : "\(first)-\(last)")
            }
            runStart = id
            previous = id
        }
        return parts.joined(separator: ", ")
    }
}
