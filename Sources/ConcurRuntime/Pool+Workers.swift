package import ConcurCore
import ConcurProtocol
import Glibc

// What workers call: thread workers block, task workers suspend, child proxies never wait.
extension Pool {
    /// Notes that a worker started and serves, with its OS id (thread id or pid).
    package func workerReady(_ id: WorkerID, osID: Int?) {
        let effects = lock.withLock {
            let now = MonotonicClock.now()
            state.workerReady(id, osID: osID, now: now)
            defer { publishEventsLocked() }
            startedCondition.broadcast()
            return performLocked(state.settleSwitches(now: now))
        }
        carryOut(effects)
    }

    /// For thread workers: records the reports the worker's handle holds, takes back the jobs
    /// of the last batch that were not started, and blocks until the worker has jobs to run: up
    /// to `limit` of them, held in its handle, once the journal holds their hand-over. False
    /// means retire, after which the worker calls ``workerExited(_:exit:)``. One lock
    /// acquisition per batch.
    package func nextBatch(for handle: WorkerHandle, limit: Int) -> Bool {
        while true {
            let (more, durable) = lock.withLock { () -> (Bool, UInt64?) in
                settleLocked(handle)
                while true {
                    switch nextAssignmentLocked(for: handle.id, limit: limit) {
                    case .run(let jobs):
                        if jobs.isEmpty { continue }
                        handle.hold(jobs)
                        return (true, durableCount(before: jobs))
                    case .retire:
                        return (false, nil)
                    case .wait:
                        // A request posted since (jobs arrived, retire) sets a bit before it signals.
                        while !handle.hasRequests { lock.wait(handle.condition) }
                        _ = handle.takeRequests()
                    }
                }
            }
            if !more || awaitDurable(durable) { return more }
            // The journal cannot record the hand-over: the jobs go back, unstarted.
            lock.withLock { settleLocked(handle) }
            pauseUntilJournalFailureKnown()
        }
    }

    /// For task workers: like ``nextBatch(for:limit:)``, suspending instead of blocking (the
    /// journal's commit is awaited through a callback, so no cooperative thread is parked);
    /// `.wait` registers the worker for a wake-up through its doorbell. The jobs of `.run` are
    /// held in the handle.
    package func exchange(for handle: WorkerHandle, limit: Int) async -> Assignment {
        while true {
            let (assignment, durable) = lock.withLock { () -> (Assignment, UInt64?) in
                settleLocked(handle)
                let assignment = nextAssignmentLocked(for: handle.id, limit: limit)
                guard case .run(let jobs) = assignment else { return (assignment, nil) }
                handle.hold(jobs)
                return (assignment, durableCount(before: jobs))
            }
            if await suspendUntilDurable(durable) { return assignment }
            lock.withLock { settleLocked(handle) }
            if lock.withLock({ state.journalFailure == nil }) { try? await Task.sleep(nanoseconds: 1_000_000) }
        }
    }

    /// Like ``awaitDurable(_:)``, suspending: the journal's writer resumes the caller.
    private func suspendUntilDurable(_ count: UInt64?) async -> Bool {
        guard let count, recordsChanges else { return true }
        return await withCheckedContinuation { continuation in
            store.whenDurable(count) { failure in continuation.resume(returning: failure == nil) }
        }
    }

    /// Takes back what an in-process worker did not start, then records the reports its handle
    /// holds: a job it reports interrupted by a switch goes back to the head of the queue,
    /// before those.
    private func settleLocked(_ handle: WorkerHandle) {
        _ = handle.takeRequests()
        let unstarted = handle.takeUnstarted()
        if !unstarted.isEmpty {
            _ = performLocked(state.returnJobs(worker: handle.id, ids: unstarted, now: MonotonicClock.now()))
        }
        handle.drainFinished { reports in _ = performLocked(state.finish(worker: handle.id, reports: reports)) }
    }

    /// The changes that must be durable before a worker runs `jobs` (all so far), or nil when
    /// the store lets them run at once (``JobStore/mustRecordBeforeRunning(_:)``). Lock held.
    private func durableCount(before jobs: [Job]) -> UInt64? {
        store.mustRecordBeforeRunning(jobs) ? state.journalChangeCount : nil
    }

    /// The state machine's next assignment for a worker, with what it decided on the way (jobs
    /// it failed instead of handing over, and their watches) performed.
    /// A worker told to wait tells the store too (``JobStore/workerFoundNothing()``): a store
    /// that claims jobs from elsewhere claims more now.
    private func nextAssignmentLocked(for id: WorkerID, limit: Int) -> Assignment {
        let assignment = state.nextAssignment(for: id, limit: limit, now: MonotonicClock.now())
        if state.hasDeferredActions { _ = performLocked(state.takeDeferredActions()) }
        if case .wait = assignment { store.workerFoundNothing() }
        return assignment
    }

    /// For proxies: up to `limit` more jobs for `worker`, without blocking (`.wait` registers
    /// the worker for a wake-up through its doorbell), once the journal holds their hand-over.
    package func assign(worker id: WorkerID, limit: Int) -> Assignment {
        while true {
            let (assignment, durable) = lock.withLock { () -> (Assignment, UInt64?) in
                let assignment = nextAssignmentLocked(for: id, limit: limit)
                guard case .run(let jobs) = assignment, !jobs.isEmpty else { return (assignment, nil) }
                return (assignment, durableCount(before: jobs))
            }
            if awaitDurable(durable) { return assignment }
            guard case .run(let jobs) = assignment else { return assignment }
            returnJobs(worker: id, ids: jobs.map(\.id))
            pauseUntilJournalFailureKnown()
        }
    }

    /// For proxies: records the outcomes of several jobs in one step.
    package func finish(worker id: WorkerID, reports: [JobReport]) {
        lock.withLock { _ = performLocked(state.finish(worker: id, reports: reports)) }
    }

    /// For proxies: jobs the worker gave back without starting them.
    package func returnJobs(worker id: WorkerID, ids: [JobID]) {
        perform { state, now in state.returnJobs(worker: id, ids: ids, now: now) }
    }

    /// Forgets a worker that has exited; its unfinished jobs go back to the queue (or fail
    /// after too many attempts), and a dead worker is replaced.
    package func workerExited(_ id: WorkerID, exit: WorkerExit) {
        switch exit {
        case .died(let reason, _), .stopped(let reason, _): onEvent(reason)
        case .retired: break
        }
        perform { state, now in
            handles[id] = nil
            return state.workerExited(id, exit: exit, now: now)
        }
    }

    /// The handle of a live worker.
    package func handle(for id: WorkerID) -> WorkerHandle? {
        lock.withLock { handles[id] }
    }
}
