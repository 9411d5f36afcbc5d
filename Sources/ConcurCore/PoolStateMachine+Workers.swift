import ConcurProtocol
import DequeModule

// Workers: resizing, hand-overs, finishes, exits.
extension PoolStateMachine {
    /// Sets the number of workers. Growing keeps retiring workers of the current model first,
    /// then starts new ones; shrinking retires idle workers first, then busy ones after their job.
    /// A model that had stopped being restarted (it kept dying at start) gets a new chance.
    package mutating func resize(to count: Int, now: UInt64) throws(ResizeError)
        -> (previous: Int, actions: [PoolAction])
    {
        guard intakeOpen else { throw .shuttingDown }
        guard (1...configuration.maxWorkers).contains(count) else {
            throw .invalidWorkers(min: 1, max: configuration.maxWorkers)
        }
        let previous = target
        target = count
        if previous != 0 && previous != count {
            resizes += 1
            record(.resized, "resized from \(previous) to \(count) workers", now: now)
        }
        events.fatal[model] = nil
        events.consecutiveStartFailures[model] = nil
        return (previous, reconcile(now: now))
    }

    /// Retires every worker after its running job and starts none, leaving queued, scheduled
    /// and waiting jobs where they are (what workers held goes back to the queue): a pool that a
    /// reload removed, whose jobs are kept until it is added back. A resize brings workers back.
    ///
    /// A switch under way ends here: its callers are told the pool was removed, and the pool
    /// keeps the model it was switching to for when it comes back.
    package mutating func retireAll(now: UInt64) -> [PoolAction] {
        guard target != 0 else { return [] }
        record(.resized, "removed from the configuration: \(target) workers retire, unfinished jobs are kept", now: now)
        target = 0
        var actions: [PoolAction] = []
        if let record = lastSwitch, record.firstServingAt == nil {
            lastSwitch?.firstServingAt = now
            let reason =
                "the pool was removed from the configuration before a \(record.to.rawValue) worker served; it runs the \(record.to.rawValue) model once added back"
            actions = switchWaiters.map { .settleSwitch(ticket: $0.ticket, .failed(reason: reason)) }
            switchWaiters.removeAll()
        }
        return actions + reconcile(now: now)
    }

    /// Brings the workers in line with the model and the target: workers of another model retire
    /// (idle ones at once, busy ones after their job); extra workers retire, idle ones first; and
    /// missing ones start, but never more live workers than the target: during a handover a
    /// new-model worker starts in each place an old one leaves.
    mutating func reconcile(now: UInt64, startDelay: Double = 0) -> [PoolAction] {
        var actions: [PoolAction] = []
        for id in workers.keys.sorted() where workers[id]!.model != model && !workers[id]!.retiring {
            retire(id, into: &actions)
        }
        var active = workers.values.filter { !$0.retiring }.count
        if active > target {
            let candidates = workers.values.filter { !$0.retiring }.sorted { lhs, rhs in
                // Idle (and starting) workers before busy ones; the newest first.
                (lhs.outstanding.isEmpty ? 0 : 1, -lhs.id) < (rhs.outstanding.isEmpty ? 0 : 1, -rhs.id)
            }
            for worker in candidates.prefix(active - target) { retire(worker.id, into: &actions) }
        } else if active < target {
            for id in workers.keys.sorted() where active < target {
                // A worker whose job is being interrupted keeps leaving: the job expects it.
                guard let worker = workers[id], worker.retiring, worker.model == model, worker.interrupt == nil else { continue }
                workers[id]?.retiring = false
                active += 1
            }
            guard events.fatal[model] == nil else { return actions }
            var taken = Set(workers.values.map(\.slot))
            while active < target && workers.count < target {
                let id = nextWorkerID
                nextWorkerID += 1
                // Fewer workers than the target: a place up to it is free.
                let slot = (1...target).first { !taken.contains($0) } ?? workers.count + 1
                taken.insert(slot)
                workers[id] = Worker(id: id, model: model, createdAt: now, slot: slot)
                actions.append(.startWorker(id, model, delay: startDelay))
                active += 1
            }
        }
        return actions
    }

    /// Marks a worker retiring: idle, it leaves at once; busy, after its running job, giving
    /// back the jobs it holds but has not started. An in-process worker's are taken back at
    /// once (`.release`), without waiting for its running job; a child gives its own back when
    /// it learns it retires.
    mutating func retire(_ id: WorkerID, into actions: inout [PoolAction]) {
        workers[id]?.retiring = true
        workers[id]?.waiting = false
        actions.append(.wake(id))
        if let worker = workers[id], worker.model.runsInProcess, !worker.outstanding.isEmpty { actions.append(.release(id)) }
    }

    /// Where the last switch stands for its caller, who waits until the new model serves.
    package var switchProgress: SwitchProgress {
        guard let record = lastSwitch else { return .serving }
        if !intakeOpen { return .shuttingDown }
        if record.firstServingAt != nil { return .serving }
        if let reason = events.fatal[record.to] { return .failed(reason: reason) }
        // Workers of the new model start as those of the old one leave; none of either left
        // means none could be started.
        if workers.isEmpty { return .failed(reason: "no \(record.to.rawValue) worker could be started") }
        return .starting
    }

    /// Notes that a worker started and serves (its thread id or process id).
    package mutating func workerReady(_ id: WorkerID, osID: Int?, now: UInt64) {
        workers[id]?.osID = osID
        workers[id]?.ready = true
        workers[id]?.readyAt = now
        if let record = lastSwitch, workers[id]?.model == record.to, record.firstServingAt == nil {
            lastSwitch?.firstServingAt = now
            let seconds = Double(Self.elapsed(since: record.requestedAt, now)) / 1e9
            self.record(
                .switchServing, "\(record.to.rawValue) serving, \(formatDuration(seconds)) after the switch", worker: id,
                model: record.to, now: now)
        }
    }

    /// The next thing `worker` should do: up to `limit` jobs (no more than its fair share of
    /// the queue), waiting, or retiring. A worker may ask while it still holds jobs (a child
    /// prefetching); a worker told `.retire` finishes its running job, gives back the others,
    /// and calls ``workerExited(_:exit:now:)``.
    package mutating func nextAssignment(for id: WorkerID, limit: Int = 1, now: UInt64) -> Assignment {
        guard let index = workers.index(forKey: id) else { return .retire }
        let (retiring, wasIdle) = withWorker(at: index) { worker in
            worker.waiting = false
            return (worker.retiring, worker.outstanding.isEmpty)
        }
        if retiring { return .retire }
        // A batch never takes more than an even split of the queue among the workers; paused
        // workers take nothing, nor do workers while the journal cannot record their start:
        // they wait like workers of an empty queue.
        let sharers = max(1, target)
        let limit = paused || journalFailure != nil ? 0 : min(limit, max(1, (queue.count + sharers - 1) / sharers))
        var taken: [Job] = []
        taken.reserveCapacity(min(limit, queue.count))
        while taken.count < limit, let jobID = queue.first {
            guard let job = table.job(jobID) else {
                _ = queue.popFirst()
                continue
            }
            if case .exec = job.kind {
                // Whether a command may run is decided now, not only when it was accepted.
                guard configuration.allowExec else {
                    _ = queue.popFirst()
                    deferredActions += complete(
                        jobID, outcome: .failed(Self.execNotAllowedReason), startedAt: nil, now: now)
                    continue
                }
                // A command goes to an idle worker, alone: its start is recorded before it runs,
                // and its end is reported at once, never behind another job's.
                guard wasIdle && taken.isEmpty else { break }
                _ = queue.popFirst()
                taken.append(job)
                break
            }
            _ = queue.popFirst()
            taken.append(job)
        }
        guard !taken.isEmpty else {
            guard wasIdle else { return .run([]) }
            withWorker(at: index) { $0.waiting = true }
            waiting.append(id)
            return .wait
        }
        withWorker(at: index) { $0.outstanding.append(contentsOf: taken) }
        if table.isJournaled {
            for job in taken.dropFirst(wasIdle ? 1 : 0) { table.markClaimed(job.id, by: id) }
        }
        if wasIdle {
            // The first job starts now and counts an attempt; the others count theirs when they
            // start (the pool's record is the authority, not the worker's copy).
            startRunning(at: index, now: now)
            taken[0].attempts += 1
        }
        return .run(taken)
    }

    /// The reason an `exec` job fails when it is to be handed to a worker while exec jobs are
    /// not allowed (it was queued while they were, before a restart or a reload).
    package static let execNotAllowedReason =
        "exec jobs are not allowed: concurd now runs without --allow-exec (allow_exec = false), and this one was queued while they were"

    /// Whether ``nextAssignment(for:limit:now:)`` decided actions for the caller to perform.
    package var hasDeferredActions: Bool { !deferredActions.isEmpty }

    /// The actions ``nextAssignment(for:limit:now:)`` decided, to perform now.
    package mutating func takeDeferredActions() -> [PoolAction] {
        defer { deferredActions.removeAll() }
        return deferredActions
    }

    /// Runs `body` on the worker at `index` in place. Reading `workers.values[index]` would copy
    /// the worker (and every job it holds); every `workers[id]` would hash the id again.
    @inline(__always)
    mutating func withWorker<R>(at index: Dictionary<WorkerID, Worker>.Index, _ body: (inout Worker) -> R) -> R {
        body(&workers.values[index])
    }

    /// The first outstanding job of the worker at `index` starts now (as far as the pool can tell).
    mutating func startRunning(at index: Dictionary<WorkerID, Worker>.Index, now: UInt64) {
        let started = withWorker(at: index) { worker -> (JobID, Int, ConcurrencyModel)? in
            guard !worker.outstanding.isEmpty else { return nil }
            worker.outstanding[0].attempts += 1
            worker.runningSince = now
            return (worker.outstanding[0].id, worker.outstanding[0].attempts, worker.model)
        }
        guard let (jobID, attempts, model) = started else { return }
        if attempts > 1 { totals.retried += 1 }
        if model == lastSwitch?.to, lastSwitch?.firstJobAt == nil { lastSwitch?.firstJobAt = now }
        table.markRunning(jobID, attempts: attempts, worker: workers.keys[index], model: model, at: now)
    }

    /// Records the outcomes of jobs `worker` ran, in the order they ran (one look-up of the
    /// worker for the batch).
    package mutating func finish(worker id: WorkerID, reports: [JobReport]) -> [PoolAction] {
        guard var index = workers.index(forKey: id) else { return [] }
        var actions: [PoolAction] = []
        for report in reports {
            let (more, stillValid) = finish(
                at: index, job: report.id, outcome: report.outcome, startedAt: report.startedAt, now: report.finishedAt)
            if !more.isEmpty { actions += more }
            if !stillValid {
                guard let again = workers.index(forKey: id) else { break }
                index = again
            }
        }
        return actions
    }

    /// Records the outcome of a job `worker` ran; `startedAt` is when it really started, when the
    /// worker knows better than the pool (a child reports its own times). Returns notifications.
    package mutating func finish(
        worker id: WorkerID, job jobID: JobID, outcome: JobOutcome, startedAt: UInt64? = nil, now: UInt64
    )
        -> [PoolAction]
    {
        guard let index = workers.index(forKey: id) else { return [] }
        return finish(at: index, job: jobID, outcome: outcome, startedAt: startedAt, now: now).actions
    }

    /// ``finish(worker:job:outcome:startedAt:now:)`` for the worker at `index`; also says whether
    /// `index` is still valid afterwards.
    mutating func finish(
        at index: Dictionary<WorkerID, Worker>.Index, job jobID: JobID, outcome: JobOutcome, startedAt: UInt64?, now: UInt64
    ) -> (actions: [PoolAction], indexValid: Bool) {
        // Plain values out of the closure: a `Job` in the tuple would be copied through the
        // runtime's generic tuple witness on every job.
        let found = withWorker(at: index) {
            worker -> (wasRunning: Bool, since: UInt64, cause: InterruptCause?, more: Bool, retries: Bool)? in
            guard let position = worker.outstanding.firstIndex(where: { $0.id == jobID }) else { return nil }
            let retries = worker.outstanding[position].spec.retry != nil
            let wasRunning = position == 0
            let since = startedAt ?? (wasRunning ? worker.runningSince : nil) ?? now
            var cause: InterruptCause?
            if let interrupt = worker.interrupt, interrupt.matches(jobID, outcome: outcome) {
                cause = interrupt.cause
                worker.interrupt = nil
            }
            if wasRunning {
                worker.outstanding.removeFirst()
                worker.runningSince = nil
            } else {
                worker.outstanding.remove(at: position)
            }
            worker.jobsDone += 1
            worker.busyNanoseconds += now > since ? now - since : 0
            if wasRunning { worker.recentBusy.record(from: since, to: now) }
            return (wasRunning, since, cause, !worker.outstanding.isEmpty, retries)
        }
        guard let found else { return ([], true) }
        var outcome = outcome
        if let cause = found.cause {
            switch (cause, outcome) {
            case (.preempt, .cancelled):
                // Interrupted by a switch: back to the head of the queue, to run again.
                let id = workers.keys[index]
                table.markRequeued(jobID, preempted: true)
                let actions = putBack(table.job(jobID).map { [$0] } ?? [], now: now)
                if found.wasRunning && found.more, let index = workers.index(forKey: id) { startRunning(at: index, now: now) }
                return (actions, false)
            case (_, .cancelled): outcome = cause.outcome(output: nil) ?? outcome
            case (.timeLimit, .failed(_, let output)): outcome = cause.outcome(output: output) ?? outcome
            default: break
            }
        }
        // `complete` changes no worker, so `index` stays valid; neither does a retry.
        var actions: [PoolAction] = []
        if !found.retries || !retryIfPolicyAllows(jobID, outcome: outcome, startedAt: found.since, now: now) {
            actions = complete(jobID, outcome: outcome, startedAt: found.since, now: now)
        }
        if found.wasRunning && found.more {
            startRunning(at: index, now: now)
            if !cancelling.isEmpty { actions += interruptIfCancelled(at: index) }
        }
        return (actions, true)
    }

    /// Puts jobs back at the head of the queue, in their order, and wakes waiting workers. Once
    /// a shutdown began no worker would take them: they are cancelled instead, or, with a
    /// journal, stay queued in it for the next start.
    mutating func putBack(_ jobs: [Job], now: UInt64) -> [PoolAction] {
        var actions: [PoolAction] = []
        var jobs = jobs
        if !cancelling.isEmpty {
            // Cancelled while their worker held them: they end here instead.
            var kept: [Job] = []
            for job in jobs {
                if let reason = cancelling[job.id] {
                    actions += complete(job.id, outcome: .cancelled(reason), startedAt: nil, now: now)
                } else {
                    kept.append(job)
                }
            }
            jobs = kept
        }
        guard intakeOpen else {
            if table.isJournaled {
                keptForRestart += jobs.count
                return actions
            }
            return actions
                + jobs.flatMap { complete($0.id, outcome: .cancelled(Self.unfinishedReason), startedAt: nil, now: now) }
        }
        for job in jobs.reversed() { queue.pushFront(job.id, priority: job.spec.priority) }
        return actions + wakeWaiting(upTo: jobs.count)
    }

    /// The reason recorded for jobs given back, or left by their worker, during a shutdown.
    package static let unfinishedReason = "not run to the end before the daemon shut down"

    /// Takes back jobs a worker held but had not started (after a release or a retire); they go
    /// to the head of the queue, in their order, and waiting workers are woken.
    package mutating func returnJobs(worker id: WorkerID, ids: [JobID], now: UInt64) -> [PoolAction] {
        // Rare (a release or a retire), so a copy of the worker is fine here.
        guard var worker = workers.removeValue(forKey: id) else { return [] }
        let returning = Set(ids)
        var returned: [Job] = []
        var kept: Deque<Job> = []
        for (index, job) in worker.outstanding.enumerated() {
            if returning.contains(job.id) {
                var job = job
                if index == 0 {
                    // The pool thought it running; it had not started.
                    job.attempts -= 1
                    if job.attempts >= 1 { totals.retried -= 1 }
                    worker.runningSince = nil
                }
                table.markRequeued(job.id, attempts: job.attempts)
                returned.append(job)
            } else {
                kept.append(job)
            }
        }
        let runningReturned = worker.outstanding.first.map { returning.contains($0.id) } ?? false
        worker.outstanding = kept
        worker.releaseRequested = false
        workers[id] = worker
        var actions: [PoolAction] = []
        if runningReturned && !kept.isEmpty, let index = workers.index(forKey: id) {
            startRunning(at: index, now: now)
            actions = interruptIfCancelled(at: index)
        }
        return actions + putBack(returned, now: now)
    }

    /// Forgets a worker that left. The job it was running is retried (up to the attempt limit,
    /// then failed with the reason of the death) or, if interrupted, ends as its interruption
    /// says; jobs it had finished without reporting run again (at least once across crashes);
    /// jobs it had not started go back to the head of the queue. A dead worker is replaced, after
    /// a backoff; a model that keeps dying at start is not restarted any more.
    package mutating func workerExited(_ id: WorkerID, exit: WorkerExit, now: UInt64) -> [PoolAction] {
        guard let worker = workers.removeValue(forKey: id) else { return [] }
        var died: String?
        var progress: ProgressReport?
        switch exit {
        case .retired:
            // A worker that retired reported every job it ran: any it still held never started.
            progress = ProgressReport(running: nil, lastFinished: nil)
        case .died(let reason, let report):
            died = reason
            progress = report
        case .stopped(_, let report):
            progress = report
        }
        let settled = settleOutstanding(of: worker, id: id, progress: progress, died: died, now: now)
        var actions = settled.actions
        if let record = lastSwitch, record.oldRetiredAt == nil, !workers.values.contains(where: { $0.model != model }) {
            lastSwitch?.oldRetiredAt = now
        }
        let delay = died.map { countDeath(of: worker, startedThrough: settled.startedThrough, reason: $0, now: now) } ?? 0
        var replacements: [WorkerID] = []
        if intakeOpen {
            let starts = reconcile(now: now, startDelay: delay)
            for case .startWorker(let newID, _, _) in starts { replacements.append(newID) }
            if died != nil { events.restarts += replacements.count }
            actions += starts
        }
        if let died {
            let next: String
            if let replacement = replacements.first {
                next = "worker \(replacement) replaces it" + (delay > 0 ? " in \(formatDecimal(delay)) s" : "")
            } else if events.fatal[worker.model] != nil {
                next = "\(worker.model.rawValue) workers keep dying at start and are no longer restarted"
            } else {
                next = "not replaced"
            }
            record(.workerDied, "\(died); \(next)", worker: id, model: worker.model, now: now)
        }
        return actions
    }

    /// What becomes of the jobs a leaving worker held: the running one retried, failed or
    /// ended as its interruption says, the rest requeued at the head (their attempts corrected
    /// from what the progress report says ran). Returns the actions and the index of the last
    /// job that started (-1: none).
    mutating func settleOutstanding(
        of worker: Worker, id: WorkerID, progress: ProgressReport?, died: String?, now: UInt64
    ) -> (actions: [PoolAction], startedThrough: Int) {
        let outstanding = Array(worker.outstanding)
        // Which of its jobs ran: without a report, the pool's own guess (the first one runs).
        let runningIndex: Int?
        let startedThrough: Int
        if let progress {
            runningIndex = progress.running.flatMap { job in outstanding.firstIndex { $0.id == job } }
            let finishedIndex = progress.lastFinished.flatMap { job in outstanding.firstIndex { $0.id == job } } ?? -1
            startedThrough = max(runningIndex ?? -1, finishedIndex)
        } else {
            runningIndex = outstanding.isEmpty ? nil : 0
            startedThrough = runningIndex ?? -1
        }
        var actions: [PoolAction] = []
        var requeue: [Job] = []
        for (index, original) in outstanding.enumerated() {
            var job = original
            // The pool counted an attempt for the first job only; correct that from what ran.
            if index == 0 && startedThrough < 0 {
                job.attempts -= 1
                if job.attempts >= 1 { totals.retried -= 1 }
            } else if index > 0 && index <= startedThrough {
                job.attempts += 1
                if job.attempts > 1 { totals.retried += 1 }
            }
            if index == runningIndex {
                let since = index == 0 ? worker.runningSince : nil
                if let interrupt = worker.interrupt, interrupt.applies(to: job.id) {
                    if let outcome = interrupt.cause.outcome(output: nil) {
                        table.markRunning(job.id, attempts: job.attempts, worker: id, model: worker.model, at: since ?? now)
                        actions += complete(job.id, outcome: outcome, startedAt: since, now: now)
                        continue
                    }
                    // Preempted: it goes back to the queue like the rest, blaming nobody.
                    table.markRequeued(job.id, attempts: job.attempts, preempted: true)
                    requeue.append(job)
                    continue
                }
                if let died, job.countedAttempts >= configuration.maxAttempts || job.spec.delivery == .atMostOnce {
                    table.markRunning(job.id, attempts: job.attempts, worker: id, model: worker.model, at: since ?? now)
                    let reason =
                        job.spec.delivery == .atMostOnce
                        ? "\(died) while it ran; it is at-most-once, so it is not run again"
                        : "\(died) (attempt \(job.countedAttempts) of \(configuration.maxAttempts))"
                    actions += complete(job.id, outcome: .failed(reason), startedAt: since, now: now)
                    continue
                }
            }
            if index < (runningIndex ?? startedThrough + 1), index <= startedThrough, job.spec.delivery == .atMostOnce {
                // It ran to an end the worker did not report: whether it did its work is unknown.
                let reason =
                    "\(died ?? "its worker left") before reporting how it ended; it is at-most-once, so it is not run again"
                actions += complete(job.id, outcome: .failed(reason), startedAt: nil, now: now)
                continue
            }
            table.markRequeued(job.id, attempts: job.attempts)
            requeue.append(job)
        }
        actions += putBack(requeue, now: now)
        return (actions, startedThrough)
    }

    /// Counts a death: a death before serving is a failed start, and enough of them in a row
    /// give the model up. Returns the backoff before the replacement starts (seconds).
    mutating func countDeath(of worker: Worker, startedThrough: Int, reason died: String, now: UInt64) -> Double {
        events.deaths += 1
        // A worker its job killed did start; one that died before serving anything did not.
        let servedNothing = worker.jobsDone == 0 && startedThrough < 0
        let startFailure =
            !worker.ready || (servedNothing && Self.elapsed(since: worker.createdAt, now) < Self.startGraceNanoseconds)
        let failures = (events.consecutiveStartFailures[worker.model] ?? 0) + (startFailure ? 1 : 0)
        events.consecutiveStartFailures[worker.model] = startFailure ? failures : nil
        if failures >= configuration.startFailureLimit {
            events.fatal[worker.model] = died
        }
        return min(configuration.maxBackoff, configuration.initialBackoff * Double(1 << min(max(failures, 1) - 1, 16)))
    }

    /// Forgets a worker that never started (its thread or process could not be created) and
    /// lowers the target by one, so the failure is not retried in a loop; the next resize tries
    /// again.
    package mutating func abandonWorker(_ id: WorkerID, now: UInt64) -> [PoolAction] {
        guard let worker = workers[id] else { return [] }
        if !worker.retiring && target > 0 { target -= 1 }
        return workerExited(id, exit: .retired, now: now)
    }
}
