package import ConcurProtocol

// Switching the concurrency model while the pool runs.
extension PoolStateMachine {
    /// Switches the pool to `model` while it runs (a handover). The queue stays; workers of the
    /// old model stop taking jobs and retire after their running job (with `preempt`, that job
    /// is interrupted and goes back to the head of the queue, unless it is at-most-once); a worker of the new model starts
    /// in each place an old one leaves, so there are never more workers than the target. A
    /// switch asked for during another one just retargets it.
    package mutating func setModel(_ model: ConcurrencyModel, preempt: Bool, now: UInt64) throws(SwitchError)
        -> (previous: ConcurrencyModel, actions: [PoolAction])
    {
        guard intakeOpen else { throw .shuttingDown }
        let previous = self.model
        guard model != previous else { return (previous, []) }
        self.model = model
        switches += 1
        events.fatal[model] = nil
        events.consecutiveStartFailures[model] = nil
        lastSwitch = SwitchRecord(from: previous, to: model, preempt: preempt, requestedAt: now)
        record(
            .switchRequested, "switch \(previous.rawValue) -> \(model.rawValue)\(preempt ? " (preempting)" : "")",
            model: model, now: now)
        var actions: [PoolAction] = []
        if preempt {
            // An at-most-once job is never cut short to run again: it finishes where it runs.
            for (id, worker) in workers
            where worker.model != model && worker.job != nil && worker.interrupt == nil
                && worker.outstanding.first?.spec.delivery != .atMostOnce
            {
                workers[id]?.interrupt = Interrupt(job: nil, cause: .preempt)
                actions.append(.interrupt(id, job: nil))
            }
        }
        actions += reconcile(now: now)
        // Switching back during a handover: workers of the model that had not left yet serve. A
        // pool that runs no worker (a removed one) takes the model at once: its next workers
        // are of it.
        if workers.values.contains(where: { $0.model == model && $0.ready && !$0.retiring })
            || (workers.isEmpty && target == 0)
        {
            lastSwitch?.firstServingAt = now
        }
        if !workers.values.contains(where: { $0.model != model }) { lastSwitch?.oldRetiredAt = now }
        return (previous, actions)
    }
}
