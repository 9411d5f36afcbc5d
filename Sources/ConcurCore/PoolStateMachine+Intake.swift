package import ConcurProtocol

// Intake: accepting jobs into the queue.
extension PoolStateMachine {
    /// Accepts a batch of jobs, all or none; returns their ids and who to wake. Each job is
    /// queued at its priority, or waits for its time or for the jobs it runs after (a job
    /// waiting counts against the queue's limit).
    ///
    /// With `watch`, a watch of exactly these jobs starts in the same step, so not even a job
    /// that finishes at once can be missed; its id is returned.
    ///
    /// `allocate(count)` gives the first of `count` consecutive ids, once every check passed (a
    /// refused batch takes none); pools that share one id space pass their daemon's allocator,
    /// which must give ids above every id this pool holds. Without it ids continue from
    /// `nextJobID`.
    ///
    /// `foreign` gives the states of jobs other pools hold that these run after, as those pools
    /// gave them after ``expectForeign(_:)``; it takes that expectation back, accepted or not.
    package mutating func submit(
        _ specs: [JobSpec], now: UInt64, watch: Bool = false, allocate: ((Int) -> JobID)? = nil,
        foreign: [JobID: JobState] = [:]
    ) throws(SubmitError) -> (ids: Range<JobID>, watch: Int?, actions: [PoolAction]) {
        let foreign = foreign.isEmpty ? foreign : takeExpected(foreign)
        guard intakeOpen else { throw .shuttingDown }
        try JobAdmission.check(specs, allowExec: configuration.allowExec, model: model) { clock.unixTime(now) }
        var plain = true
        for (index, spec) in specs.enumerated() where spec.priority != 0 || spec.startAt != nil || !spec.after.isEmpty {
            plain = false
            try check(spec, index: index, foreign: foreign)
        }
        guard queue.canAccept(specs.count, others: timetable.count + dependencies.count) else {
            throw .queueFull(limit: queue.limit, queued: acceptedWaiting)
        }
        let first = allocate?(specs.count) ?? nextJobID
        precondition(first >= nextJobID, "job ids must rise within a pool")
        let defaultTimeout = configuration.defaultTimeout
        table.reserve(specs.count)
        for (offset, spec) in specs.enumerated() {
            var spec = spec
            if spec.timeout == nil { spec.timeout = defaultTimeout }
            table.insert(id: first + JobID(offset), spec: spec, submittedAt: now)
        }
        nextJobID = first + JobID(specs.count)
        var queued = specs.count
        var cancels: [(JobID, String)] = []
        var highest = 0
        if plain {
            queue.append(contentsOf: first..<nextJobID)
        } else {
            queued = 0
            highest = JobLimits.priority.lowerBound
            for (offset, spec) in specs.enumerated() {
                let id = first + JobID(offset)
                if spec.priority != 0 { prioritiesInUse = true }
                switch place(id, spec: spec, now: now, foreign: foreign) {
                case .queued:
                    queued += 1
                    highest = max(highest, spec.priority)
                case .waiting: break
                case .cancelled(let reason): cancels.append((id, reason))
                }
            }
        }
        totals.submitted += specs.count
        var watchID: Int?
        if watch && !specs.isEmpty {
            watchID = nextWatchID
            nextWatchID += 1
            watches[watchID!] = Watch(ids: [], range: first...(nextJobID - 1), remaining: specs.count)
        }
        var actions = wakeWaiting(upTo: queued)
        if queued > 0 && prioritiesInUse { actions += reclaimHeld(below: highest) }
        for (id, reason) in cancels {
            actions += endCancelled(id, reason: reason, now: now)
        }
        return (first..<nextJobID, watchID, actions)
    }

    /// Checks that the jobs a job runs after exist, for ``submit(_:now:watch:allocate:foreign:)``.
    private func check(_ spec: JobSpec, index: Int, foreign: [JobID: JobState]) throws(SubmitError) {
        for other in spec.after where table[other] == nil && foreign[other] == nil {
            throw other < nextJobID ? .forgottenDependency(index: index, other) : .unknownDependency(index: index, other)
        }
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
