import ConcurProtocol

// The clock: timeouts, stuck hand-overs, throughput samples.
extension PoolStateMachine {
    /// Queues the jobs whose time came (``releaseDue(now:)``), interrupts jobs past their time limit, and asks a worker to release the jobs it holds
    /// behind a long-running one while others are idle. A worker that has served past the start
    /// grace proves its model starts (the count of failed starts is reset). Called about every
    /// 100 ms.
    package mutating func tick(now: UInt64, running known: [WorkerID: ProgressReport] = [:]) -> [PoolAction] {
        var actions: [PoolAction] = timetable.isEmpty ? [] : releaseDue(now: now)
        let someoneIdle = queue.isEmpty && workers.values.contains { $0.waiting }
        for (id, worker) in workers {
            if worker.ready, Self.elapsed(since: worker.createdAt, now) >= Self.startGraceNanoseconds,
                events.consecutiveStartFailures[worker.model] != nil
            {
                events.consecutiveStartFailures[worker.model] = nil
            }
            // What runs: the worker's own word when it has one (a child's progress page), else
            // the pool's guess (the first job it handed over).
            let running: (job: Job, since: UInt64)?
            if let report = known[id] {
                running = report.running.flatMap { jobID in
                    worker.outstanding.first { $0.id == jobID }.map { ($0, report.since ?? worker.runningSince ?? now) }
                }
            } else if let job = worker.outstanding.first, let since = worker.runningSince {
                running = (job, since)
            } else {
                running = nil
            }
            guard let (job, since) = running else { continue }
            if !cancelling.isEmpty, let reason = cancelling[job.id],
                let action = interruptForCancel(id, job: job.id, reason: reason)
            {
                // A cancel that reached the worker before the job started there, or while the
                // pool thought another job ran: told again now that the job runs.
                actions.append(action)
                continue
            }
            // An exec job's runner stops its own command at the limit; the worker is stopped only
            // if that failed, after the runner's grace.
            let grace: UInt64 = if case .exec = job.kind { 3_000_000_000 } else { 0 }
            if worker.interrupt == nil, let limit = job.spec.timeout, now >= since + UInt64(limit * 1e9) + grace {
                workers[id]?.interrupt = Interrupt(job: job.id, cause: .timeLimit(seconds: limit))
                actions.append(.interrupt(id, job: job.id))
            }
            if someoneIdle, worker.outstanding.count > 1, !worker.releaseRequested,
                Self.elapsed(since: since, now) >= Self.releaseAfterNanoseconds
            {
                workers[id]?.releaseRequested = true
                actions.append(.release(id))
            }
        }
        return actions
    }

    /// Samples the finished total for the throughput windows (about once a second).
    package mutating func sampleThroughput(now: UInt64) {
        throughput.sample(at: now, total: totals.finished)
    }
}
