// concur-bench: measurements that need a client faster than Python, driven by bench/run.
//
//   concur-bench status-rtt SOCKET CALLS   Status round trips on one connection, one at a time
//   concur-bench state-machine JOBS BATCH  the pool's bookkeeping alone: ns per no-op job
//   concur-bench noop SOCKET JOBS          no-op jobs end to end: Generate, then every job done
//   concur-bench switch SOCKET MODEL [preempt] [probe]
//                                          one model switch, timed by the daemon; probe submits a
//                                          job at once (for an idle pool's first job)
//
// Prints one JSON object per run. Not installed; a harness for the benchmark script.
import ConcurCore
import ConcurRuntime
import ConcurProtocol
@preconcurrency import Glibc
import Varlink

func now() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

func cpuSeconds() -> (user: Double, system: Double) {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return (
        Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6,
        Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    )
}

func fail(_ message: String) -> Never {
    fputs("concur-bench: \(message)\n", stderr)
    exit(2)
}

/// Blocking Status calls, each waiting for its reply before the next: latency, not throughput.
func statusRoundTrips(socket: String, calls: Int) {
    let connection: VarlinkConnection
    do {
        connection = try VarlinkConnection(unixPath: socket)
    } catch {
        fail("cannot connect to \(socket): \(error)")
    }
    for _ in 0..<min(1000, calls) { _ = try? connection.call("io.concur.Supervisor.Status") }  // warm-up
    var samples = [UInt64](repeating: 0, count: calls)
    let cpuBefore = cpuSeconds()
    let start = now()
    for index in 0..<calls {
        let begin = now()
        do {
            _ = try connection.call("io.concur.Supervisor.Status")
        } catch {
            fail("call \(index) failed: \(error)")
        }
        samples[index] = now() - begin
    }
    let wall = Double(now() - start) / 1e9
    let cpuAfter = cpuSeconds()
    samples.sort()
    func percentile(_ p: Double) -> Double {
        Double(samples[min(samples.count - 1, Int((p / 100 * Double(samples.count)).rounded(.up)) - 1)]) / 1000
    }
    print(
        """
        {"calls": \(calls), "p50_us": \(percentile(50)), "p90_us": \(percentile(90)), "p99_us": \(percentile(99)), \
        "max_us": \(Double(samples.last ?? 0) / 1000), "wall_s": \(wall), "client_user_s": \(cpuAfter.user - cpuBefore.user), \
        "client_sys_s": \(cpuAfter.system - cpuBefore.system)}
        """)
}

/// The finished total and the daemon's CPU seconds, from one Stats call.
func finishedAndCPU(_ connection: VarlinkConnection) -> (finished: Int64, cpu: Double) {
    do {
        let stats = try connection.call("io.concur.Supervisor.Stats")
        guard case .object(let status) = stats["status"], case .object(let totals) = status["totals"],
            case .object(let process) = stats["process"]
        else { fail("unexpected Stats reply") }
        var finished: Int64 = 0
        for key in ["done", "failed", "cancelled"] {
            if case .int(let value) = totals[key] { finished += value }
        }
        var cpu = 0.0
        for key in ["cpuUserSeconds", "cpuSystemSeconds"] {
            switch process[key] {
            case .double(let value): cpu += value
            case .int(let value): cpu += Double(value)
            default: break
            }
        }
        return (finished, cpu)
    } catch {
        fail("Stats failed: \(error)")
    }
}

/// No-op jobs end to end: from the Generate call until the daemon reports them all finished
/// (polled every millisecond with Status, which costs the daemon little).
func noop(socket: String, jobs: Int) {
    let connection: VarlinkConnection
    do {
        connection = try VarlinkConnection(unixPath: socket)
    } catch {
        fail("cannot connect to \(socket): \(error)")
    }
    let before = finishedAndCPU(connection)
    let clientBefore = cpuSeconds()
    let start = now()
    do {
        _ = try connection.call("io.concur.Supervisor.Generate", ["count": .int(Int64(jobs)), "kind": "cpu", "scale": 0])
    } catch {
        fail("Generate failed: \(error)")
    }
    let target = before.finished + Int64(jobs)
    while true {
        guard case .object(let status) = try? connection.call("io.concur.Supervisor.Status")["status"],
            case .object(let totals) = status["totals"]
        else { fail("Status failed") }
        var finished: Int64 = 0
        for key in ["done", "failed", "cancelled"] {
            if case .int(let value) = totals[key] { finished += value }
        }
        if finished >= target { break }
        usleep(1_000)
    }
    let wall = Double(now() - start) / 1e9
    let clientAfter = cpuSeconds()
    let after = finishedAndCPU(connection)
    print(
        """
        {"jobs": \(jobs), "wall_s": \(wall), "jobs_per_s": \(Double(jobs) / wall), "daemon_cpu_s": \(after.cpu - before.cpu), \
        "client_cpu_s": \(clientAfter.user + clientAfter.system - clientBefore.user - clientBefore.system)}
        """)
}

/// The pool's per-job bookkeeping without threads: submit, hand out in batches, finish.
func stateMachine(jobs: Int, batch: Int) {
    var pool = PoolStateMachine(
        model: .threads, configuration: .init(maxQueue: jobs, maxWorkers: 2, retainFinished: 10_000), clock: MonotonicClock())
    _ = try? pool.resize(to: 2, now: now())
    for id in 1...2 { pool.workerReady(id, osID: nil, now: now()) }
    let start = now()
    _ = try? pool.submit(Array(repeating: JobSpec(.cpu(size: 0)), count: jobs), now: start)
    let submitted = now()
    var worker = 1
    var finished = 0
    var reports: [JobReport] = []
    while finished < jobs {
        guard case .run(let taken) = pool.nextAssignment(for: worker, limit: batch, now: now()), !taken.isEmpty else { break }
        // As an in-process worker does: run the batch, then report it in one step.
        var time = now()
        for job in taken {
            let end = now()
            reports.append(JobReport(id: job.id, outcome: .done(.checksum(1)), startedAt: time, finishedAt: end))
            time = end
        }
        _ = pool.finish(worker: worker, reports: reports)
        reports.removeAll(keepingCapacity: true)
        finished += taken.count
        worker = 3 - worker
    }
    let end = now()
    print(
        """
        {"jobs": \(jobs), "batch": \(batch), "submit_ns_per_job": \(Double(submitted - start) / Double(jobs)), \
        "run_ns_per_job": \(Double(end - submitted) / Double(jobs)), "done": \(pool.totals.done), \
        "record_bytes": \(MemoryLayout<JobRecord?>.stride), "job_bytes": \(MemoryLayout<Job>.stride), \
        "outcome_bytes": \(MemoryLayout<JobOutcome>.stride), "info_bytes": \(MemoryLayout<JobInfo>.stride)}
        """)
}

/// One model switch: the SetModel round trip, then the daemon's own timings (from the call to
/// the first worker serving, its first job, the last old worker gone), polled from Stats.
func modelSwitch(socket: String, model: String, preempt: Bool, probe: Bool) {
    let control: VarlinkConnection
    let prober: VarlinkConnection
    do {
        control = try VarlinkConnection(unixPath: socket)
        prober = try VarlinkConnection(unixPath: socket)
    } catch {
        fail("cannot connect to \(socket): \(error)")
    }
    let start = now()
    do {
        try control.send(
            VarlinkCall(method: "io.concur.Supervisor.SetModel", parameters: ["model": .string(model), "preempt": .bool(preempt)]))
        if probe {
            _ = try prober.call("io.concur.Supervisor.Submit", ["jobs": [["kind": "sleep", "ms": 0]]])
        }
        let reply = try control.receive()
        if let error = reply.varlinkError { fail("SetModel failed: \(error)") }
    } catch {
        fail("SetModel failed: \(error)")
    }
    let replied = Double(now() - start) / 1e6
    let deadline = now() + 60_000_000_000
    while now() < deadline {
        guard case .object(let record) = try? prober.call("io.concur.Supervisor.Stats")["lastSwitch"] else {
            fail("no lastSwitch in Stats")
        }
        func milliseconds(_ key: String) -> Double? {
            if case .double(let value) = record[key] { return value * 1000 }
            if case .int(let value) = record[key] { return Double(value) * 1000 }
            return nil
        }
        if let serving = milliseconds("servingAfter"), let firstJob = milliseconds("firstJobAfter"),
            let retired = milliseconds("oldRetiredAfter")
        {
            print(
                """
                {"reply_ms": \(replied), "serving_ms": \(serving), "first_job_ms": \(firstJob), "old_retired_ms": \(retired)}
                """)
            return
        }
        usleep(1_000)
    }
    fail("the switch did not complete within 60 s")
}

let arguments = CommandLine.arguments
switch arguments.count > 1 ? arguments[1] : "" {
case "status-rtt":
    guard arguments.count == 4, let calls = Int(arguments[3]), calls > 0 else { fail("usage: concur-bench status-rtt SOCKET CALLS") }
    statusRoundTrips(socket: arguments[2], calls: calls)
case "noop":
    guard arguments.count == 4, let jobs = Int(arguments[3]), jobs > 0 else { fail("usage: concur-bench noop SOCKET JOBS") }
    noop(socket: arguments[2], jobs: jobs)
case "state-machine":
    guard arguments.count == 4, let jobs = Int(arguments[2]), let batch = Int(arguments[3]), jobs > 0, batch > 0 else {
        fail("usage: concur-bench state-machine JOBS BATCH")
    }
    stateMachine(jobs: jobs, batch: batch)
case "switch":
    let flags = Set(arguments.dropFirst(4))
    guard arguments.count >= 4, flags.isSubset(of: ["preempt", "probe"]) else {
        fail("usage: concur-bench switch SOCKET MODEL [preempt] [probe]")
    }
    modelSwitch(socket: arguments[2], model: arguments[3], preempt: flags.contains("preempt"), probe: flags.contains("probe"))
default:
    fail("usage: concur-bench status-rtt SOCKET CALLS | noop SOCKET JOBS | state-machine JOBS BATCH | switch SOCKET MODEL")
}
