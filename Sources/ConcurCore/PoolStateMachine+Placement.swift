import ConcurProtocol
import DequeModule

// Placement: where an accepted job waits before a worker takes it (for other jobs, for its
// time, or in the queue), and its moves from one to the next.
extension PoolStateMachine {
    /// Where ``place(_:spec:now:)`` put a job.
    enum Placement {
        /// In the queue: a worker may take it now.
        case queued
        /// Waiting for its time, or for other jobs.
        case waiting
        /// Cancelled at once: a job it runs after had already failed or been cancelled.
        case cancelled(reason: String)
    }

    /// Puts an accepted job where it waits: behind the jobs it runs after that have not ended,
    /// then until its `startAt`, then in the queue at its priority. A job it runs after that
    /// ended other than done cancels it (the reason is returned; the caller completes it).
    ///
    /// `foreign` gives the states of the jobs it runs after that other pools hold.
    mutating func place(_ id: JobID, spec: JobSpec, now: UInt64, foreign: [JobID: JobState] = [:]) -> Placement {
        if !spec.after.isEmpty {
            var pending = Set<JobID>()
            for other in spec.after {
                // A job no longer held ended long ago: it ended done, or it would have
                // cancelled this one then (in the same journal transaction).
                guard let state = table[other]?.state ?? foreign[other] else { continue }
                if !state.isFinal {
                    pending.insert(other)
                } else if state != .done {
                    return .cancelled(reason: Self.dependencyReason(other, state: state))
                }
            }
            if !pending.isEmpty {
                dependencies.add(id, waitingFor: pending)
                return .waiting
            }
        }
        return placeWhenFree(id, spec: spec, now: now)
    }

    /// ``place(_:spec:now:)`` for a job waiting for no other: scheduled, or queued.
    private mutating func placeWhenFree(_ id: JobID, spec: JobSpec, now: UInt64) -> Placement {
        if let startAt = spec.startAt {
            let at = clock.monotonic(unixTime: startAt)
            if at > now {
                timetable.add(id, at: at, reason: .scheduled)
                return .waiting
            }
        }
        queue.append(id, priority: spec.priority)
        return .queued
    }

    /// Asks every worker that holds, unstarted, a job of lower priority than `priority` (one
    /// just queued) to give its unstarted jobs back, so that the new job runs before them: a
    /// prefetch must not overtake a priority. Only once priorities other than 0 were used.
    mutating func reclaimHeld(below priority: Int) -> [PoolAction] {
        guard prioritiesInUse else { return [] }
        return askToRelease { held in held.contains { $0.spec.priority < priority } }
    }

    /// Asks every worker that holds unstarted jobs for which `wanted` (given them) is true to
    /// give them back to the queue (``PoolAction/release(_:)``), once per request.
    mutating func askToRelease(_ wanted: (Deque<Job>.SubSequence) -> Bool) -> [PoolAction] {
        var actions: [PoolAction] = []
        for (id, worker) in workers where worker.outstanding.count > 1 && !worker.releaseRequested {
            guard wanted(worker.outstanding.dropFirst()) else { continue }
            workers[id]?.releaseRequested = true
            actions.append(.release(id))
        }
        return actions
    }

    /// Why a job is cancelled when one it runs after ended in `state`.
    static func dependencyReason(_ other: JobID, state: JobState) -> String {
        "job \(other), which it runs after, \(state == .failed ? "failed" : "was cancelled")"
    }

    /// Queues the jobs whose time came (their `startAt`, or a retry's delay), the earliest
    /// first, and wakes waiting workers for them: at most ``releaseBatch`` in one step, so that
    /// a hundred thousand due at once do not hold the pool for long before the first runs
    /// (``nextDue()`` is then already due: the caller calls again).
    package mutating func releaseDue(now: UInt64) -> [PoolAction] {
        // During a drain they wait in the journal for the next start.
        guard intakeOpen else { return [] }
        let due = timetable.takeDue(now: now, limit: Self.releaseBatch)
        guard !due.isEmpty else { return [] }
        var highest = JobLimits.priority.lowerBound
        for id in due {
            let priority = table.job(id)?.spec.priority ?? 0
            highest = max(highest, priority)
            queue.append(id, priority: priority)
        }
        return wakeWaiting(upTo: due.count) + reclaimHeld(below: highest)
    }

    /// The most jobs ``releaseDue(now:)`` queues in one step.
    package static let releaseBatch = 1024

    /// The earliest monotonic instant a scheduled or retrying job is due, if one waits (none
    /// during a drain: they wait for the next start): the runtime's loop wakes then rather
    /// than at its next step.
    package mutating func nextDue() -> UInt64? { intakeOpen ? timetable.nextDue() : nil }

    /// After job `id` ended in `outcome`: those that waited for it go on (all their jobs done)
    /// or are cancelled (this one failed or was cancelled), which may end jobs waiting for them
    /// in turn. The chain is walked with a work list, not by recursion: a chain of any length
    /// is settled in one call without growing the stack (``complete(_:outcome:startedAt:now:)``
    /// of a cancelled dependent only adds it to the list). During a drain a job released stays
    /// queued in the journal, where the drain left it.
    @inline(never)
    mutating func settleDependents(of id: JobID, outcome: JobOutcome, now: UInt64) -> [PoolAction] {
        settleDependents(of: id, state: outcome.state, now: now)
    }

    /// ``settleDependents(of:outcome:now:)`` by the state `id` ended in.
    mutating func settleDependents(of id: JobID, state: JobState, now: UInt64) -> [PoolAction] {
        guard settling == nil else {
            settling?.append((id, state))
            return []
        }
        settling = [(id, state)]
        var actions: [PoolAction] = []
        var queued = 0
        var next = 0
        // Read in place: a copy held across the loop would make each append copy the list.
        while next < settling?.count ?? 0, let (ended, state) = settling?[next] {
            next += 1
            let (released, cancelled) = dependencies.settle(ended, done: state == .done)
            for other in released where intakeOpen {
                guard let spec = table.job(other)?.spec else { continue }
                if case .queued = placeWhenFree(other, spec: spec, now: now) { queued += 1 }
            }
            for other in cancelled {
                let reason = Self.dependencyReason(ended, state: state)
                // Kept in the journal by a drain, it ends now instead.
                if !intakeOpen && table.isJournaled { keptForRestart -= 1 }
                actions += endCancelled(other, reason: reason, now: now)
            }
        }
        settling = nil
        if queued > 0 { actions += wakeWaiting(upTo: queued) }
        return actions
    }

    /// Takes those of `ids` that wait for their time or for other jobs off their wait.
    mutating func removeFromWaits(_ ids: Set<JobID>) {
        guard !timetable.isEmpty || !dependencies.isEmpty else { return }
        for id in ids where !timetable.remove(id) { dependencies.remove(id) }
    }

    /// Jobs waiting for their `startAt`.
    package var scheduledCount: Int { timetable.scheduledCount }

    /// Jobs waiting for the jobs they run after.
    package var waitingCount: Int { dependencies.count }

    /// Jobs waiting out a retry's delay.
    package var retryingCount: Int { timetable.retryCount }

    /// Jobs accepted and not yet with a worker, wherever they wait (what the queue's limit bounds).
    package var acceptedWaiting: Int { queue.count + timetable.count + dependencies.count }

    /// The record of `id` as the control interface shows it, with what the pool knows and the
    /// record does not: when it waits until, or what for.
    func info(_ record: JobRecord) -> JobInfo {
        let wait = timetable[record.id]
        var info = record.info(clock: clock, retryAt: wait?.reason == .retry ? wait?.at : nil)
        if wait?.reason == .scheduled {
            info.state = .scheduled
        } else if let others = dependencies.waitingFor(record.id) {
            info.state = .waiting
            info.waitingFor = others.sorted()
        }
        return info
    }
}
