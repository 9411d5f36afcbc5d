import ConcurProtocol

// Claims: jobs a store shared by several nodes hands this pool, in place of submits.
extension PoolStateMachine {
    /// Queues jobs this node claimed from a shared store (``JobTable/admit(_:)``): each at its
    /// priority, behind the jobs already buffered, with the attempts and failed runs the store
    /// recorded. Returns who to wake, and the ids refused because the pool already holds them
    /// (a store must never hand a job out twice; the caller logs it).
    ///
    /// The checks a submit makes (exec allowed, the start time, the dependencies) were made by
    /// the node that queued the job; the time limit of a job that set none is this pool's.
    package mutating func admitClaimed(_ records: [JobRecord], now: UInt64) -> (actions: [PoolAction], refused: [JobID]) {
        var refused: [JobID] = []
        var admitted = 0
        var highest = JobLimits.priority.lowerBound
        for var record in records {
            if record.spec.timeout == nil, let timeout = configuration.defaultTimeout {
                var spec = record.spec
                spec.timeout = timeout
                record = JobRecord(
                    id: record.id, spec: spec, state: .queued, attempts: record.attempts, preemptions: record.preemptions,
                    submittedAt: record.submittedAt, history: record.history)
            }
            guard table.admit(record) else {
                refused.append(record.id)
                continue
            }
            nextJobID = max(nextJobID, record.id + 1)
            queue.append(record.id, priority: record.spec.priority)
            if record.spec.priority != 0 { prioritiesInUse = true }
            highest = max(highest, record.spec.priority)
            admitted += 1
        }
        totals.submitted += admitted
        var actions = wakeWaiting(upTo: admitted)
        if admitted > 0 && prioritiesInUse { actions += reclaimHeld(below: highest) }
        return (actions, refused)
    }

    /// Gives back to a shared store the buffered jobs beyond `keeping` (those that would run
    /// last), so that other nodes can run them: they leave the pool as if never claimed. Workers
    /// holding unstarted jobs beyond their running one are asked to put those back in the queue
    /// (the returned actions), for the next give-back. Returns the ids given back; the caller
    /// hands them to the store.
    package mutating func giveBackBuffered(keeping: Int) -> (given: [JobID], actions: [PoolAction]) {
        let actions = askToRelease { _ in true }
        guard queue.count > keeping else { return ([], actions) }
        let given = queue.popLast(queue.count - max(0, keeping))
        for id in given { table.giveBack(id) }
        totals.submitted -= given.count
        return (given, actions)
    }

    /// Jobs in the queue that no worker holds yet: what a shared store's claims keep topped up.
    package var bufferedCount: Int { queue.count }
}
