package import ConcurCore
package import ConcurProtocol
import Synchronization

/// What the pool asks of a worker besides running jobs.
package struct WorkerRequests: OptionSet, Sendable {
    /// The raw bits.
    package let rawValue: UInt8
    /// Creates requests from raw bits.
    package init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Jobs arrived, or the worker must retire: ask the pool what to do.
    package static let wake = WorkerRequests(rawValue: 1)
    /// Stop the running job (its cancellation flag is raised too).
    package static let interrupt = WorkerRequests(rawValue: 2)
    /// Give back the jobs held but not started.
    package static let release = WorkerRequests(rawValue: 4)
}

/// A worker's line to the pool: its cancellation flag, the condition a thread worker waits on,
/// a doorbell for workers that wait elsewhere (a child's proxy in poll, a task), and what it
/// holds and runs.
///
/// An in-process worker (a thread or a task) takes its jobs in batches and keeps the batch
/// here, so the pool can see which job runs and since when, take back the jobs not started
/// (a release, a retire) without waiting for the running one, and interrupt exactly the job
/// running. A child process keeps the same facts in its progress page.
package final class WorkerHandle: Sendable {
    /// The worker's id.
    package let id: WorkerID
    /// Its model.
    package let model: ConcurrencyModel
    /// Raised when its running job must stop.
    package let cancellation = CancellationFlag()
    let condition: Condition
    private let pending = Atomic<UInt8>(0)
    /// For a child's proxy: the job the last interrupt named (0: whatever runs).
    private let interruptTarget = Atomic<UInt64>(0)
    private let doorbell = Mutex<(@Sendable () -> Void)?>(nil)
    private let progressPage = Mutex<WorkerProgress?>(nil)
    private let batch = Mutex<Batch>(Batch())

    /// An in-process worker's batch: the jobs handed over, the next to start, the one running,
    /// and the reports of those it finished that the pool has not taken yet.
    private struct Batch {
        var jobs: [Job] = []
        var next = 0
        var running: JobID?
        var since: UInt64 = 0
        var lastFinished: JobID?
        var finished: [JobReport] = []
    }

    init(id: WorkerID, model: ConcurrencyModel, condition: Condition) {
        self.id = id
        self.model = model
        self.condition = condition
    }

    /// Whether the worker runs in the daemon's process (a thread or a task).
    var isInProcess: Bool { model.runsInProcess }

    /// Installs the way to get the worker's attention when it does not wait on its condition.
    package func installDoorbell(_ ring: @escaping @Sendable () -> Void) {
        doorbell.withLock { $0 = ring }
    }

    /// Attaches the progress page a child worker keeps, so the pool sees exactly what it runs.
    package func attach(_ progress: WorkerProgress) {
        progressPage.withLock { $0 = progress }
    }

    /// Where the worker is: its progress page's word for a child, its batch for an in-process
    /// worker.
    var progress: ProgressReport? {
        if let page = progressPage.withLock({ $0 }) { return page.report }
        guard isInProcess else { return nil }
        return batch.withLock { batch in
            ProgressReport(
                running: batch.running, since: batch.running == nil ? nil : batch.since, lastFinished: batch.lastFinished)
        }
    }

    /// Posts requests and gets the worker's attention.
    func post(_ requests: WorkerRequests) {
        pending.bitwiseOr(requests.rawValue, ordering: .releasing)
        ring()
    }

    /// Interrupts `job` (nil: whatever the worker runs; it is retiring and must start no other).
    ///
    /// For an in-process worker the flag is raised only if that job is the one running, under
    /// the same lock with which the worker starts jobs: a job that already ended cannot pass
    /// the interrupt to the next.
    func interrupt(job: JobID?) {
        interruptTarget.store(job ?? 0, ordering: .relaxed)
        if job == nil {
            // Set before looking at the running job: from here on the worker starts no other.
            pending.bitwiseOr(WorkerRequests.interrupt.rawValue, ordering: .sequentiallyConsistent)
        }
        if isInProcess {
            batch.withLock { batch in
                if let running = batch.running, job == nil || job == running { cancellation.raise() }
            }
        } else {
            pending.bitwiseOr(WorkerRequests.interrupt.rawValue, ordering: .releasing)
        }
        ring()
    }

    private func ring() {
        condition.signal()
        let ring = doorbell.withLock { $0 }
        ring?()
    }

    /// Takes the requests posted since the last call.
    package func takeRequests() -> WorkerRequests {
        WorkerRequests(rawValue: pending.exchange(0, ordering: .acquiring))
    }

    /// Whether requests are waiting to be taken.
    var hasRequests: Bool { pending.load(ordering: .acquiring) != 0 }

    /// For a child's proxy: the job the last interrupt named, or nil for whatever runs.
    package var interruptedJob: JobID? {
        let job = interruptTarget.load(ordering: .relaxed)
        return job == 0 ? nil : job
    }

    // MARK: In-process batches

    /// Holds a batch handed over by the pool (after any jobs still held).
    func hold(_ jobs: [Job]) {
        batch.withLock { batch in
            if batch.next >= batch.jobs.count {
                batch.jobs = jobs
                batch.next = 0
            } else {
                batch.jobs.append(contentsOf: jobs)
            }
        }
    }

    /// Ends the running job, if any, with `report` (kept here until the pool takes it: at the
    /// worker's next batch, or sooner when the journal collects finishes for its next commit),
    /// and starts the next one held: nil when none is left, or when the pool posted a request
    /// (the worker should ask it what to do first). One lock per job.
    @inline(__always)
    func startNext(now: UInt64, finishing report: JobReport? = nil) -> Job? {
        batch.withLock { batch -> Job? in
            if let report { batch.finished.append(report) }
            if let running = batch.running {
                batch.lastFinished = running
                batch.running = nil
            }
            guard batch.next < batch.jobs.count, pending.load(ordering: .sequentiallyConsistent) == 0 else { return nil }
            let job = batch.jobs[batch.next]
            batch.next += 1
            batch.running = job.id
            batch.since = now
            cancellation.reset()
            // An interrupt meant for this job that came while it waited in the batch.
            if interruptTarget.load(ordering: .relaxed) == job.id { cancellation.raise() }
            return job
        }
    }

    /// The job an in-process worker has started and not yet ended, by its own account (the
    /// pool counts a job running from the moment it hands it over).
    package var startedJob: JobID? {
        batch.withLock { $0.running }
    }

    /// Hands the reports of the jobs finished since the last call, in the order they ran, to
    /// `body` (under the handle's lock, which the pool's lock may hold: the pool's lock is always
    /// taken first), then forgets them, keeping their storage for the next batch.
    func drainFinished(_ body: ([JobReport]) -> Void) {
        batch.withLock { batch in
            guard !batch.finished.isEmpty else { return }
            body(batch.finished)
            batch.finished.removeAll(keepingCapacity: true)
        }
    }

    /// Takes back the jobs held and not started, in order.
    func takeUnstarted() -> [JobID] {
        batch.withLock { batch in
            let ids = batch.jobs[batch.next...].map(\.id)
            batch.jobs.removeAll(keepingCapacity: true)
            batch.next = 0
            return ids
        }
    }
}
