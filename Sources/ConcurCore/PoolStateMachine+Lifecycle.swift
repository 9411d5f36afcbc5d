package import ConcurProtocol

// Reload and pause, and the event log.
extension PoolStateMachine {
    /// Applies new limits while the pool runs: jobs already accepted stay even above a lower
    /// queue limit, the retention prunes on the next finished job, and new attempts and time
    /// limits apply to jobs that start from now on. A `maxWorkers` below the current target is
    /// refused (resize first).
    package mutating func updateConfiguration(_ new: Configuration) throws(ResizeError) {
        guard new.maxWorkers >= target else { throw .invalidWorkers(min: 1, max: new.maxWorkers) }
        configuration = new
        queue.limit = new.maxQueue
        table.retainFinished = new.retainFinished
    }

    /// Pauses (`true`) or resumes the workers; returns whether that changed anything and who to
    /// wake. Paused workers finish what they run (and what they already hold) and take nothing
    /// new; submits are still accepted. Once a drain began nothing changes: the workers retire.
    package mutating func setPaused(_ paused: Bool, now: UInt64) -> (changed: Bool, actions: [PoolAction]) {
        switch (lifecycle, paused) {
        case (.serving, true): lifecycle = .paused
        case (.paused, false): lifecycle = .serving
        default: return (false, [])
        }
        if paused {
            record(.paused, "paused: workers take no new jobs (\(queue.count) queued)", now: now)
            return (true, [])
        }
        record(.resumed, "resumed (\(queue.count) queued)", now: now)
        return (true, wakeWaiting(upTo: queue.count))
    }

    /// Remembers an event for `Stats` and for the watches that follow events.
    mutating func record(
        _ kind: PoolEventKind, _ message: String, worker: WorkerID? = nil, model: ConcurrencyModel? = nil, now: UInt64
    ) {
        if recentEvents.count == Self.eventMemory { recentEvents.removeFirst() }
        recentEvents.append(
            PoolEvent(time: clock.unixTime(now), kind: kind, message: message, worker: worker, model: model))
        eventCount += 1
    }

    /// The events recorded after the first `count` (as many as are still remembered).
    package func events(after count: Int) -> ArraySlice<PoolEvent> {
        let new = min(eventCount - count, recentEvents.count)
        return lastEvents.suffix(max(0, new))
    }
}
