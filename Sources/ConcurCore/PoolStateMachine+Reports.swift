package import ConcurProtocol

extension PoolStateMachine {
    /// Serving, degraded (the journal cannot record), draining or stopping.
    package var phase: DaemonPhase {
        switch lifecycle {
        case .serving, .paused: journalFailure == nil ? .serving : .degraded
        case .draining: .draining
        case .stopping: .stopping
        }
    }

    /// Jobs waiting in the queue, and those waiting out a retry's delay.
    package var queuedCount: Int { queue.count + timetable.retryCount }

    /// Jobs running now.
    package var runningCount: Int { workers.values.filter { $0.job != nil }.count }

    /// Worker counts for `Status`.
    package var workerCounts: WorkerCounts {
        var busy = 0
        var idle = 0
        var retiring = 0
        for worker in workers.values {
            if worker.retiring { retiring += 1 }
            if worker.job != nil {
                busy += 1
            } else if !worker.retiring {
                idle += 1
            }
        }
        return WorkerCounts(target: target, live: workers.count, busy: busy, idle: idle, retiring: retiring)
    }

    /// One row per worker, by id. `rss` gives a child process's resident memory.
    package func workerRows(now: UInt64, rss: (Int) -> Int? = { _ in nil }) -> [WorkerInfo] {
        workers.values.sorted { $0.id < $1.id }.map { worker in
            var state: WorkerState = worker.ready ? .idle : .starting
            var jobSeconds: Double?
            var busy = worker.busyNanoseconds
            if let since = worker.runningSince, worker.job != nil {
                // `now` may be a little older than a start recorded since it was read.
                let running = now > since ? now - since : 0
                state = .busy
                jobSeconds = Double(running) / 1e9
                busy += running
            }
            if worker.retiring { state = .retiring }
            let life = now > worker.createdAt ? now - worker.createdAt : 1
            let isProcess = worker.model == .processes
            return WorkerInfo(
                id: worker.id, model: worker.model, state: state, thread: isProcess ? nil : worker.osID,
                pid: isProcess ? worker.osID : nil, job: worker.job, jobSeconds: jobSeconds, jobsDone: worker.jobsDone,
                busyFraction: min(1, Double(busy) / Double(life)),
                recentBusyFraction: worker.recentBusy.fraction(
                    now: now, createdAt: worker.createdAt, runningSince: worker.job == nil ? nil : worker.runningSince),
                held: worker.outstanding.count,
                rssBytes: isProcess ? worker.osID.flatMap(rss) : nil,
                startupSeconds: worker.readyAt.map { Double(Self.elapsed(since: worker.createdAt, $0)) / 1e9 },
                slot: worker.slot)
        }
    }

    /// The records of `ids`, in the order asked.
    package func jobs(ids: [JobID]) throws(NoSuchJobError) -> [JobInfo] {
        var found: [JobInfo] = []
        for id in ids {
            guard let record = table[id] else { throw NoSuchJobError(id: id) }
            found.append(info(record))
        }
        return found
    }

    /// Up to `limit` jobs in `state` (or any state), oldest first: queued ones in the order
    /// they will run, scheduled ones the soonest first, waiting ones by id, running ones by id, finished ones the most recently finished.
    package func jobs(state: JobState?, limit: Int) -> [JobInfo] {
        jobs(heldOf: jobIDs(state: state, limit: limit)[...])
    }

    /// The ids of ``jobs(state:limit:)``, in the same order: what a long list holds while it is
    /// sent in parts, rather than the records.
    package func jobIDs(state: JobState?, limit: Int) -> [JobID] {
        switch state {
        case .queued:
            // First those workers took ahead (each runs next on its worker), then the queue,
            // then those waiting out a retry's delay, the soonest first.
            let held = workers.keys.sorted().flatMap { workers[$0]?.outstanding.dropFirst().map(\.id) ?? [] }
            return Array((held + queue.prefix(limit) + timetable.ids(reason: .retry)).prefix(limit))
        case .scheduled:
            return Array(timetable.ids(reason: .scheduled).prefix(limit))
        case .waiting:
            return Array(dependencies.ids.prefix(limit))
        case .running:
            return Array(workers.values.compactMap(\.job).sorted().prefix(limit))
        case .done, .failed, .cancelled:
            return table.recentlyFinished(state: state, limit: limit).reversed().map(\.id)
        case nil:
            return table.newest(limit: limit, below: nextJobID).reversed().map(\.id)
        }
    }

    /// The first of `ids` the pool holds no record of (never submitted, or pruned).
    package func firstUnknown(of ids: [JobID]) -> JobID? {
        ids.first { table[$0] == nil }
    }

    /// The record of `id`, if the pool still holds it.
    package func job(_ id: JobID) -> JobInfo? {
        table[id].map(info)
    }

    /// The records of those of `ids` still held, in the order given (a job pruned since the ids
    /// were taken is left out).
    package func jobs(heldOf ids: ArraySlice<JobID>) -> [JobInfo] {
        ids.compactMap(job)
    }
}

extension SwitchRecord {
    /// The record as the control interface shows it.
    package func modelSwitch(clock: MonotonicClock) -> ModelSwitch {
        func after(_ time: UInt64?) -> Double? {
            time.map { Double(PoolStateMachine.elapsed(since: requestedAt, $0)) / 1e9 }
        }
        return ModelSwitch(
            from: from, to: to, preempt: preempt, requestedAt: clock.unixTime(requestedAt), servingAfter: after(firstServingAt),
            firstJobAfter: after(firstJobAt), oldRetiredAfter: after(oldRetiredAt))
    }
}
