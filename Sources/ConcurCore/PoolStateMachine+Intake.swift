package import ConcurProtocol

// Intake: accepting jobs into the queue.
extension PoolStateMachine {
    /// Accepts a batch of jobs, all or none; returns their ids and who to wake.
    ///
    /// With `watch`, a watch of exactly these jobs starts in the same step, so not even a job
    /// that finishes at once can be missed; its id is returned.
    package mutating func submit(_ specs: [JobSpec], now: UInt64, watch: Bool = false) throws(SubmitError)
        -> (ids: Range<JobID>, watch: Int?, actions: [PoolAction])
    {
        guard intakeOpen else { throw .shuttingDown }
        for spec in specs {
            switch spec.kind {
            case .exec where !configuration.allowExec: throw .execDisabled
            case .crash(forced: false) where model != .processes: throw .crashRefused(model: model)
            default: continue
            }
        }
        guard queue.canAccept(specs.count) else { throw .queueFull(limit: queue.limit, queued: queue.count) }
        let first = nextJobID
        let defaultTimeout = configuration.defaultTimeout
        table.reserve(specs.count)
        for (offset, spec) in specs.enumerated() {
            var spec = spec
            if spec.timeout == nil { spec.timeout = defaultTimeout }
            table.insert(id: first + JobID(offset), spec: spec, submittedAt: now)
        }
        nextJobID += JobID(specs.count)
        queue.append(contentsOf: first..<nextJobID)
        totals.submitted += specs.count
        var watchID: Int?
        if watch && !specs.isEmpty {
            watchID = nextWatchID
            nextWatchID += 1
            watches[watchID!] = Watch(ids: [], range: first...(nextJobID - 1), remaining: specs.count)
        }
        return (first..<nextJobID, watchID, wakeWaiting(upTo: specs.count))
    }

    /// Wake-ups for up to `count` waiting workers.
    mutating func wakeWaiting(upTo count: Int) -> [PoolAction] {
        var actions: [PoolAction] = []
        while actions.count < count, let id = waiting.popFirst() {
            guard workers[id]?.waiting == true else { continue }
            workers[id]?.waiting = false
            actions.append(.wake(id))
        }
        return actions
    }
}
