import ConcurCore
package import ConcurProtocol
import Glibc

/// The threads model: each worker is an OS thread taking jobs from the shared queue.
///
/// Swift has no global interpreter lock, so CPU-bound jobs on N threads use N cores: the lesson
/// the Python seed's threads could not show. A worker takes jobs in adaptive batches (one lock
/// acquisition per batch, about 50 µs of work) and keeps them in its handle, where the pool can
/// take back those not started. A running job is interrupted only through its cancellation
/// flag, which every workload checks about once a millisecond; a `crash` job is refused (it
/// would abort the daemon) unless forced.
package struct ThreadModel: WorkerModel {
    /// `.threads`.
    package let model = ConcurrencyModel.threads
    /// Nice levels below the daemon's control plane the worker threads run at.
    package let nice: Int

    /// The model; its threads run `nice` levels below the control plane.
    package init(nice: Int = 0) {
        self.nice = nice
    }

    /// Starts worker `handle.id` as a detached OS thread.
    package func startWorker(_ handle: WorkerHandle, pool: Pool, delay: Double) throws {
        try OSThread.start(name: "concur-worker-\(handle.id)") { [nice] in
            OSThread.lowerPriority(by: nice)
            if delay > 0 { usleep(UInt32(min(delay, 60) * 1e6)) }
            pool.workerReady(handle.id, osID: OSThread.currentID)
            var batches = BatchSizer.inProcess
            while pool.nextBatch(for: handle, limit: batches.limit) {
                let start = MonotonicClock.now()
                var now = start
                var count = 0
                var report: JobReport?
                while let job = handle.startNext(now: now, finishing: report) {
                    ExecutionLog.started(job, model: .threads)
                    let outcome = Workload.run(job, cancellation: handle.cancellation, crashAllowed: false)
                    let end = MonotonicClock.now()
                    ExecutionLog.ended(job, outcome: outcome, at: end)
                    report = JobReport(id: job.id, outcome: outcome, startedAt: now, finishedAt: end)
                    now = end
                    count += 1
                }
                batches.record(jobs: count, nanoseconds: now - start)
            }
            pool.workerExited(handle.id, exit: .retired)
        }
    }
}
