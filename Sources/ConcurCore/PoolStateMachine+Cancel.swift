package import ConcurProtocol

/// What a cancel did to the jobs it named.
package struct CancelOutcome: Sendable, Equatable {
    /// Jobs that ended `cancelled` at once (they had not started).
    package var cancelled: [JobID] = []
    /// Running jobs being interrupted (and held ones being taken back from their worker): each
    /// ends `cancelled` once it stops, or as it ended if it ended first.
    package var stopping: [JobID] = []

    /// Nothing cancelled yet.
    package init() {}
}

/// Why a cancel was refused; nothing was cancelled.
package enum CancelError: Error, Sendable, Equatable {
    /// No job has this id (never accepted, or finished and no longer kept).
    case noSuchJob(JobID)
    /// The job had already ended, in this state.
    case alreadyFinished(JobID, JobState)
}

// Cancelling jobs by id, or every queued one.
extension PoolStateMachine {
    /// Cancels `ids`, all or none: an unknown id or a job that already ended refuses the whole
    /// call. A queued job ends `cancelled` with `reason` at once; a running one is interrupted
    /// (its worker's flag raised, a child told, an exec command's group signalled) and ends
    /// `cancelled` when it stops; one a worker holds and has not started is taken back from
    /// it. A job cancelled again while it stops is reported stopping again.
    package mutating func cancel(_ ids: [JobID], reason: String, now: UInt64) throws(CancelError) -> (
        CancelOutcome, [PoolAction]
    ) {
        let wanted = Set(ids)
        for id in wanted.sorted() {
            guard let state = table[id]?.state else { throw .noSuchJob(id) }
            if state.isFinal { throw .alreadyFinished(id, state) }
        }
        return cancel(wanted, reason: reason, now: now)
    }

    /// Cancels every job waiting to run: those in the queue, those scheduled or waiting out a
    /// retry's delay, those waiting for other jobs, those workers hold and have not started, and
    /// (after a drain began) those kept in the journal for the next start. Running jobs are
    /// left alone.
    package mutating func cancelQueued(reason: String, now: UInt64) -> (CancelOutcome, [PoolAction]) {
        var wanted = Set(queue.prefix(queue.count)).union(timetable.ids(reason: nil)).union(dependencies.ids)
        for worker in workers.values {
            for job in worker.outstanding.dropFirst() { wanted.insert(job.id) }
        }
        if keptForRestart > 0 { wanted.formUnion(table.unfinished()) }
        for worker in workers.values {
            if let running = worker.outstanding.first?.id { wanted.remove(running) }
        }
        wanted.subtract(cancelling.keys)
        return cancel(wanted, reason: reason, now: now)
    }

    /// Cancels jobs known to be unfinished.
    private mutating func cancel(_ wanted: Set<JobID>, reason: String, now: UInt64) -> (CancelOutcome, [PoolAction]) {
        var outcome = CancelOutcome()
        var actions: [PoolAction] = []
        // Where each is: with a worker (and at which place), or not.
        var held: [JobID: (worker: WorkerID, running: Bool)] = [:]
        for (workerID, worker) in workers {
            for (position, job) in worker.outstanding.enumerated() where wanted.contains(job.id) {
                held[job.id] = (workerID, position == 0)
            }
        }
        // During a drain the queue is empty: every job not held is one kept in the journal.
        let fromQueue = queue.remove(wanted.subtracting(held.keys))
        removeFromWaits(wanted)
        var released = Set<WorkerID>()
        for id in wanted.sorted() {
            guard let (workerID, running) = held[id] else {
                // In the queue, or (after a drain began) kept in the journal for the next start.
                if !fromQueue.contains(id) && !intakeOpen && table.isJournaled { keptForRestart -= 1 }
                actions += endCancelled(id, reason: reason, now: now)
                outcome.cancelled.append(id)
                continue
            }
            outcome.stopping.append(id)
            if cancelling.updateValue(reason, forKey: id) == nil { table.markCancelRequested(id, reason: reason) }
            if running {
                if let action = interruptForCancel(workerID, job: id, reason: reason) { actions.append(action) }
            } else if released.insert(workerID).inserted {
                workers[workerID]?.releaseRequested = true
                actions.append(.release(workerID))
            }
        }
        return (outcome, actions)
    }

    /// Ends a job no worker holds `cancelled` with `reason`, for good: the reason set as a
    /// cancel's makes it final even during a drain (see `settleCancel`).
    mutating func endCancelled(_ id: JobID, reason: String, now: UInt64) -> [PoolAction] {
        cancelling[id] = reason
        return complete(id, outcome: .cancelled(reason), startedAt: nil, now: now)
    }

    /// Points the worker's interrupt at its running job `job`, cancelled with `reason`, unless
    /// an interrupt that ends it anyway is pending (a shutdown cancels it; a preemption puts it
    /// back, where the cancel ends it) or this one already is. A time limit is overtaken.
    func interruptForCancelNeeded(_ worker: Worker, job: JobID) -> Bool {
        switch worker.interrupt?.cause {
        case .shutdown?, .preempt?: false
        case .cancel?: worker.interrupt?.job != job
        case .timeLimit?, nil: true
        }
    }

    /// Sets the interrupt of ``interruptForCancelNeeded(_:job:)``; the action to tell the worker,
    /// or nil when nothing changed.
    mutating func interruptForCancel(_ workerID: WorkerID, job: JobID, reason: String) -> PoolAction? {
        guard let worker = workers[workerID], interruptForCancelNeeded(worker, job: job) else { return nil }
        workers[workerID]?.interrupt = Interrupt(job: job, cause: .cancel(reason: reason))
        return .interrupt(workerID, job: job)
    }

    /// After the worker at `index` started its next job: interrupts it if it was cancelled
    /// while the worker held it.
    mutating func interruptIfCancelled(at index: Dictionary<WorkerID, Worker>.Index) -> [PoolAction] {
        let (workerID, job) = (workers.keys[index], workers.values[index].job)
        guard let job, let reason = cancelling[job] else { return [] }
        return interruptForCancel(workerID, job: job, reason: reason).map { [$0] } ?? []
    }

    /// Jobs cancelled and still stopping.
    package var cancellingCount: Int { cancelling.count }

    /// Whether a cancel of job `id` is under way (it is stopping).
    package func isCancelling(_ id: JobID) -> Bool { cancelling[id] != nil }
}
