import DequeModule

/// A task executor of OS threads of its own: a queue of jobs (task slices) and `threads`
/// threads taking them in order. Tasks that prefer it (`withTaskExecutorPreference`,
/// `Task(executorPreference:)`) never wait for the global pool, which blocking code elsewhere
/// in the process may hold (the task model's workers; the store's I/O beside a test runner's
/// blocking tests).
///
/// The threads live as long as the process: an executor is never released, so make few.
/// `@unchecked Sendable`: `jobs` and `idle` are guarded by `lock`.
package final class ThreadTaskExecutor: TaskExecutor, @unchecked Sendable {
    private let lock = ConditionLock()
    private var jobs: Deque<UnownedJob> = []
    private var idle = 0
    /// How many threads run the tasks.
    package let threads: Int

    /// Starts `threads` threads named `name-0`, `name-1`, ..., `nice` steps below normal priority.
    package init(threads: Int, name: String, nice: Int = 0) throws(OSThread.StartError) {
        self.threads = threads
        for index in 0..<threads {
            try OSThread.start(name: "\(name)-\(index)") { [self] in
                OSThread.lowerPriority(by: nice)
                serve()
            }
        }
    }

    /// Queues `job` for the next free thread.
    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        lock.withLock {
            jobs.append(job)
            if idle > 0 { lock.signal() }
        }
    }

    private func serve() {
        let executor = asUnownedTaskExecutor()
        while true {
            let job = lock.withLock { () -> UnownedJob in
                while jobs.isEmpty {
                    idle += 1
                    lock.wait()
                    idle -= 1
                }
                return jobs.removeFirst()
            }
            job.runSynchronously(on: executor)
        }
    }
}
