import ConcurProtocol

// Shutdown: draining and cancelling.
extension PoolStateMachine {
    /// The reason recorded for queued jobs cancelled by a shutdown.
    package static let notStartedReason = "not started before the daemon shut down"

    /// Begins a graceful shutdown: intake closes, queued jobs are cancelled with `reason` (they
    /// never started) or, with a journal, stay queued in it for the next start, and every
    /// worker retires after its running job.
    package mutating func beginDrain(now: UInt64, reason: String = notStartedReason) -> [PoolAction] {
        guard intakeOpen else { return [] }
        lifecycle = .draining
        target = 0
        record(.draining, "draining: intake closed, \(runningCount) running jobs finishing", now: now)
        var actions: [PoolAction] = []
        if table.isJournaled {
            // They stay queued in the journal for the next start; those waiting for their time
            // or for other jobs keep waiting (and showing) as such, and a cancel still cascades.
            keptForRestart += queue.removeAll().count + timetable.count + dependencies.count
        } else {
            for jobID in queue.removeAll() + timetable.removeAll() + dependencies.removeAll() {
                actions += complete(jobID, outcome: .cancelled(reason), startedAt: nil, now: now)
            }
        }
        waiting.removeAll()
        for id in workers.keys.sorted() { retire(id, into: &actions) }
        return actions
    }

    /// Interrupts every running job; each ends `cancelled` with `reason` (queued ones, if the
    /// drain had not begun, with `queuedReason`).
    package mutating func cancelRunning(reason: String, queuedReason: String = notStartedReason, now: UInt64) -> [PoolAction] {
        var actions = beginDrain(now: now, reason: queuedReason)
        lifecycle = .stopping
        for (id, worker) in workers where worker.job != nil {
            if case .shutdown = worker.interrupt?.cause { continue }
            // Whatever else was pending (a time limit, a preemption) is overtaken: every job
            // running now ends cancelled.
            workers[id]?.interrupt = Interrupt(job: nil, cause: .shutdown(reason: reason))
            actions.append(.interrupt(id, job: nil))
        }
        return actions
    }

    /// Whether shutdown began and every worker has left.
    package var isDrained: Bool { !intakeOpen && workers.isEmpty }
}
