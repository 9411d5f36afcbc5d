package import ConcurProtocol

// Watches of jobs.
extension PoolStateMachine {
    /// Starts watching `ids`, or every job when `ids` is empty.
    ///
    /// Returns the watch's id and the jobs that already finished (to send at once); the watch
    /// is already over when those are all that was asked for (`complete`).
    package mutating func addWatch(ids: [JobID]) throws(NoSuchJobError) -> (id: Int, finished: [JobInfo], complete: Bool) {
        let id = nextWatchID
        nextWatchID += 1
        guard !ids.isEmpty else {
            watches[id] = Watch(ids: [], range: nil, remaining: nil)
            return (id, [], false)
        }
        var pending = Set<JobID>()
        var finished: [JobInfo] = []
        for jobID in Set(ids).sorted() {
            guard let record = table[jobID] else { throw NoSuchJobError(id: jobID) }
            if record.state.isFinal {
                finished.append(record.info(clock: clock))
            } else {
                pending.insert(jobID)
            }
        }
        guard !pending.isEmpty else { return (id, finished, true) }
        watches[id] = Watch(ids: pending, range: nil, remaining: pending.count)
        return (id, finished, false)
    }

    /// Starts watching every job not finished now (queued or running), until the last of them
    /// ends; `complete` when there is none.
    package mutating func addWatchOfUnfinished() -> (id: Int, complete: Bool) {
        let id = nextWatchID
        nextWatchID += 1
        let pending = Set(table.unfinished())
        guard !pending.isEmpty else { return (id, true) }
        watches[id] = Watch(ids: pending, range: nil, remaining: pending.count)
        return (id, false)
    }

    /// Stops a watch (its client went away).
    package mutating func removeWatch(_ id: Int) {
        watches[id] = nil
    }
}
