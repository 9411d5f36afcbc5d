import ConcurCore
package import ConcurProtocol
import DequeModule
import Synchronization

/// The tasks model: each worker is a child task of one task group, running on a task executor
/// of a few dedicated threads (by default one per core).
///
/// Workers suspend instead of blocking: an idle worker awaits its doorbell, a `sleep` job
/// awaits `Task.sleep` and holds no thread, so a thousand sleeping workers cost a thousand
/// small tasks. CPU-bound jobs yield after each chunk of about a millisecond, so the tasks
/// sharing a thread take turns, as coroutines do in asyncio; unlike asyncio, there are as many
/// such threads as cores, so CPU-bound jobs run in parallel.
///
/// Why a task executor of its own rather than the global concurrent pool: the pool is shared
/// with anything else in the process that uses Swift concurrency, and a job that does not
/// yield (a long chunk, a blocking call) would hold one of its few threads. Here such a job can
/// only delay other workers; the control plane (SwiftNIO's event loop), the signal thread and
/// the supervisor loop that pings the watchdog each have a thread of their own. The cost is a
/// few idle threads and a hop through one more queue when a task resumes.
package final class TaskModel: WorkerModel {
    /// `.tasks`.
    package let model = ConcurrencyModel.tasks
    /// The executor the worker tasks run on.
    let executor: ThreadTaskExecutor
    private let starts: AsyncStream<@Sendable () async -> Void>.Continuation

    /// Starts the executor's `threads` threads, `nice` levels below the control plane, and the
    /// task that holds the workers' task group.
    package init(threads: Int, nice: Int = 0) throws(OSThread.StartError) {
        executor = try ThreadTaskExecutor(threads: max(1, threads), name: "concur-tasks", nice: nice)
        let (stream, continuation) = AsyncStream.makeStream(of: (@Sendable () async -> Void).self)
        starts = continuation
        Task(executorPreference: executor) {
            // Child tasks inherit the executor preference.
            await withDiscardingTaskGroup { group in
                for await worker in stream {
                    group.addTask { await worker() }
                }
            }
        }
    }

    /// Threads of the executor.
    package var threads: Int { executor.threads }
    /// The executor's threads, which every task worker takes turns on.
    package var sharedThreads: Int? { executor.threads }

    /// Starts worker `handle.id` as a child task of the workers' task group.
    package func startWorker(_ handle: WorkerHandle, pool: Pool, delay: Double) throws {
        starts.yield {
            await Self.serve(handle, pool: pool, delay: delay)
        }
    }

    /// A worker's life: take batches of jobs until told to retire.
    static func serve(_ handle: WorkerHandle, pool: Pool, delay: Double) async {
        let wakeup = AsyncWakeup()
        handle.installDoorbell { wakeup.signal() }
        if delay > 0 { try? await Task.sleep(nanoseconds: UInt64(min(delay, 60) * 1e9)) }
        pool.workerReady(handle.id, osID: nil)
        var batches = BatchSizer.inProcess
        serving: while true {
            switch await pool.exchange(for: handle, limit: batches.limit) {
            case .run:
                let start = MonotonicClock.now()
                var now = start
                var count = 0
                var report: JobReport?
                while let job = handle.startNext(now: now, finishing: report) {
                    ExecutionLog.started(job, model: .tasks)
                    let outcome = await Workload.run(job, in: handle, wakeup: wakeup)
                    let end = MonotonicClock.now()
                    ExecutionLog.ended(job, outcome: outcome, at: end)
                    report = JobReport(id: job.id, outcome: outcome, startedAt: now, finishedAt: end)
                    now = end
                    count += 1
                }
                batches.record(jobs: count, nanoseconds: now - start)
            case .wait:
                await wakeup.wait()
            case .retire:
                break serving
            }
        }
        pool.workerExited(handle.id, exit: .retired)
    }
}

extension Workload {
    /// Runs a job in a worker task: CPU-bound bodies yield between chunks, `sleep` suspends
    /// (woken early by an interrupt), and `exec`, which blocks, runs on a thread of its own.
    static func run(_ job: Job, in handle: WorkerHandle, wakeup: AsyncWakeup) async -> JobOutcome {
        let cancellation = handle.cancellation
        switch job.kind {
        case .cpu(let size):
            var work = CPUChain(size: size)
            while true {
                if let checksum = work.advance() { return .done(.checksum(checksum)) }
                if cancellation.isRaised { return .cancelled(JobOutcome.interruptedReason) }
                await Task.yield()
            }
        case .prime(let n):
            var work = TrialDivision(n: n)
            while true {
                if let factor = work.advance() { return .done(.primality(n: n, factor: factor)) }
                if cancellation.isRaised { return .cancelled(JobOutcome.interruptedReason) }
                await Task.yield()
            }
        case .sleep(let milliseconds):
            let interrupted = await sleep(
                nanoseconds: UInt64(milliseconds) * 1_000_000, cancellation: cancellation, wakeup: wakeup)
            return interrupted ? .cancelled(JobOutcome.interruptedReason) : .done(.slept(milliseconds: milliseconds))
        case .exec:
            return await withCheckedContinuation { continuation in
                do {
                    try OSThread.start(name: "concur-exec-\(handle.id)") {
                        continuation.resume(returning: run(job, cancellation: cancellation, crashAllowed: false))
                    }
                } catch {
                    continuation.resume(returning: .failed("cannot run the command: \(error)"))
                }
            }
        case .fail, .crash:
            return run(job, cancellation: cancellation, crashAllowed: false)
        }
    }

    /// Suspends for `nanoseconds` or until `cancellation` is raised (its raiser rings `wakeup`);
    /// true if it was raised.
    static func sleep(nanoseconds: UInt64, cancellation: CancellationFlag, wakeup: AsyncWakeup) async -> Bool {
        if cancellation.isRaised { return true }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                // Cancelled only once the other child has finished first.
                try? await Task.sleep(nanoseconds: nanoseconds)
                return false
            }
            group.addTask {
                while !cancellation.isRaised {
                    await wakeup.wait()
                    if Task.isCancelled { return false }
                }
                return true
            }
            let interrupted = await group.next() ?? false
            group.cancelAll()
            return interrupted
        }
    }
}

/// A one-waiter event for a task: ``signal()`` from any thread resumes the task waiting in
/// ``wait()``, or the next one to wait if none is (a signal is never lost; extra ones cause a
/// spurious wake-up, which waiters tolerate). A cancelled waiter is resumed.
final class AsyncWakeup: Sendable {
    private struct State {
        var signalled = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    /// Resumes the waiter, or lets the next wait return at once.
    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.signalled = true
            return nil
        }
        waiter?.resume()
    }

    /// Waits for a signal (or cancellation).
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.signalled {
                        state.signalled = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            signal()
        }
    }
}
