/// How many jobs a worker takes at once: enough to amortise a trip to the pool (its lock, or a
/// round trip to a child), few enough that jobs are not held back from other workers.
///
/// It keeps a moving average of the time a job takes and aims each batch at `target`
/// nanoseconds of work: hundreds of no-op jobs per batch, a single one when jobs take
/// milliseconds. The first batch holds one job.
package struct BatchSizer {
    /// Nanoseconds of work one batch aims at.
    let target: Double
    /// The most jobs in one batch.
    let maxBatch: Int
    private var averageJob: Double = 0
    private var samples = 0

    /// Batches for an in-process worker (a thread or a task): 50 µs of work, at most 256 jobs.
    package static var inProcess: BatchSizer { BatchSizer(target: 50_000, maxBatch: 256) }

    /// Batches for a child process: 2 ms of work (a round trip costs tens of microseconds), at
    /// most 4096 jobs.
    package static var childProcess: BatchSizer { BatchSizer(target: 2_000_000, maxBatch: 4096) }

    /// A sizer aiming at `target` nanoseconds of work per batch, never more than `maxBatch` jobs.
    package init(target: Double, maxBatch: Int) {
        self.target = target
        self.maxBatch = maxBatch
    }

    /// The size of the next batch.
    package var limit: Int {
        guard samples > 0 else { return 1 }
        return max(1, min(maxBatch, Int(target / max(averageJob, 20))))
    }

    /// Notes that `jobs` jobs took `nanoseconds` in all.
    package mutating func record(jobs: Int, nanoseconds: UInt64) {
        guard jobs > 0 else { return }
        let perJob = Double(nanoseconds) / Double(jobs)
        averageJob = samples == 0 ? perJob : 0.8 * averageJob + 0.2 * perJob
        samples += 1
    }
}
