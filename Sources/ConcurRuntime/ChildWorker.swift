import CConcurShims
import ConcurCore
import ConcurProtocol
import DequeModule
import Glibc

/// The life of a child worker process: `concurd __worker`, started by the processes model
/// with its channel to the daemon as fd 3.
///
/// Two threads: the main one runs jobs, in order; a reader takes messages from the daemon at
/// any time, so that jobs not started can be given back (release, retire) even while a long
/// job runs. Results are sent in batches, and a third thread sends those that have waited
/// ``flushAfter`` behind a long job, so the daemon (and its journal) hears of every finish in
/// time whatever follows it in the batch. The child dies with the daemon: PR_SET_PDEATHSIG
/// (SIGTERM), and exit on end of file of its channel; either way, and on SIGTERM from the
/// daemon stopping it, it kills the process group of a running `exec` job's command first.
package enum ChildWorker {
    /// The channel's descriptor in the child.
    package static let channel: Int32 = 3

    /// Results kept before they are sent.
    static let resultBatch = 256
    /// Nanoseconds results may wait before they are sent.
    static let resultDelay: UInt64 = 1_000_000
    /// Nanoseconds a result waits at most, however long the job after it runs.
    static let flushAfter: UInt64 = 10_000_000

    /// Serves jobs until told to retire or the daemon goes away, `nice` levels below the
    /// daemon's control plane; never returns.
    package static func run(parentPID: Int32, nice: Int = 0) -> Never {
        ProcessModel.restoreCommandEnvironment()
        serve(parentPID: parentPID, nice: nice)
    }

    /// A worker forked by the forkserver `helperPID` (whose child it is): it re-opens what its
    /// descriptors closed, then serves as a spawned worker does, on a new thread.
    ///
    /// Not on the thread fork() copied: that thread still has the daemon's thread id in the
    /// Swift runtime's thread-local cache, which its futex-based locks store in the lock word
    /// and hand to FUTEX_LOCK_PI. Uncontended that goes unnoticed; contended by a second thread
    /// (the reader), the kernel finds no such owner and both threads spin for ever. A new
    /// thread fetches its own id; the copied one only waits.
    static func runForked(helperPID: Int32, nice: Int) -> Never {
        forkedHelperPID = helperPID
        // Both threads run `nice` levels lower: the new one inherits it.
        OSThread.lowerPriority(by: nice)
        concur_run_on_fresh_thread {
            concur_set_thread_name("concur-worker")
            ExecutionLog.reopen()
            ChildWorker.serve(parentPID: ChildWorker.forkedHelperPID, nice: 0)
        }
    }

    /// What ``runForked(helperPID:nice:)`` hands its new thread (set once, before it starts).
    nonisolated(unsafe) private static var forkedHelperPID: Int32 = 0

    private static func serve(parentPID: Int32, nice: Int) -> Never {
        OSThread.lowerPriority(by: nice)
        // SIGTERM, not SIGKILL: its handler kills the running command's process group first, so
        // no command outlives the daemon (installed before the death signal is armed).
        concur_install_worker_term_handler()
        _ = concur_set_parent_death_signal(SIGTERM)
        // The daemon may have died before the death signal was armed.
        if getppid() != parentPID { _exit(70) }
        signal(SIGPIPE, SIG_IGN)
        guard let progress = WorkerProgress(inheritedDescriptor: WorkerProgress.childDescriptor) else { _exit(73) }
        progress.publishCommandGroup()
        let state = ChildState()
        guard state.send(.hello(pid: getpid())) else { _exit(0) }
        do {
            try OSThread.start(name: "concur-child-read") { readMessages(into: state) }
            try OSThread.start(name: "concur-child-flush") { state.flushLateResults() }
        } catch {
            _exit(71)
        }
        runJobs(state, progress: progress)
    }

    private static func readMessages(into state: ChildState) -> Never {
        var frames = WireFrames()
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(channel, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            // End of file or an error: the daemon is gone; so is this worker, now, and the
            // command it runs.
            guard count > 0 else { concur_exit_stopping_command(0) }
            buffer.withUnsafeBytes { frames.append(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            do {
                while let message = try frames.next() { state.receive(message) }
            } catch {
                concur_exit_stopping_command(72)
            }
        }
    }

    private static func runJobs(_ state: ChildState, progress: WorkerProgress) -> Never {
        var lastSend = MonotonicClock.now()
        while true {
            guard let job = state.nextJob() else {
                _ = state.flushResults()
                _exit(0)
            }
            let start = MonotonicClock.now()
            // Before the job can crash, the daemon must be able to tell it was this one.
            progress.start(job.id, at: start)
            ExecutionLog.started(job, model: .processes)
            let outcome = Workload.run(job, cancellation: state.cancellation, crashAllowed: true)
            let end = MonotonicClock.now()
            ExecutionLog.ended(job, outcome: outcome, at: end)
            progress.finish(job.id)
            let waiting = state.keep(JobReport(id: job.id, outcome: outcome, startedAt: start, finishedAt: end), at: end)
            // An exec job's end goes at once: a command has effects outside, and must not be
            // run again for want of a report.
            var exec = false
            if case .exec = job.kind { exec = true }
            if exec || waiting >= resultBatch || end - lastSend >= resultDelay || state.isIdle {
                guard state.flushResults() else { concur_exit_stopping_command(0) }
                lastSend = end
            }
        }
    }
}

/// The child's jobs and its channel, shared by its two threads.
///
/// `@unchecked Sendable`: `held`, `retiring` and `current` are guarded by `lock`; the results
/// not sent yet by `resultLock`; writes to the channel by `writeLock`. Locks are taken in the
/// order writeLock, resultLock (a flush takes and sends in one step, so results leave in the
/// order the jobs ended) and lock, writeLock (a give-back is sent under `lock`).
private final class ChildState: @unchecked Sendable {
    let lock = ConditionLock()
    let writeLock = ConditionLock()
    let cancellation = CancellationFlag()
    private var held: Deque<Job> = []
    private var retiring = false
    /// The job the main thread took last (it runs, or just ended).
    private var current: JobID?
    /// A job the daemon interrupted before it started here: cancelled as it starts.
    private var interruptedNext: JobID = 0
    private var output: [UInt8] = []
    private let resultLock = ConditionLock()
    private var unsent: [JobReport] = []
    /// The other buffer of results, empty, kept for the next flush.
    private var spare: [JobReport] = []
    /// When the oldest unsent result was kept.
    private var unsentSince: UInt64 = 0
    /// The flush thread waits for a first result (not for a deadline).
    private var flusherIdle = false

    /// Whether no job waits behind the running one (results should go now).
    var isIdle: Bool { lock.withLock { held.isEmpty } }

    func send(_ message: WorkerMessage) -> Bool {
        writeLock.withLock { sendLocked(message) }
    }

    private func sendLocked(_ message: WorkerMessage) -> Bool {
        output.removeAll(keepingCapacity: true)
        message.encode(into: &output)
        return BlockingIO.writeAll(ChildWorker.channel, output)
    }

    /// Keeps a job's result until the next flush; returns how many wait.
    func keep(_ report: JobReport, at now: UInt64) -> Int {
        resultLock.withLock {
            if unsent.isEmpty {
                unsentSince = now
                // The flush thread is woken only from its idle wait; busy, it looks every
                // ``ChildWorker/flushAfter`` by itself.
                if flusherIdle { resultLock.signal() }
            }
            unsent.append(report)
            return unsent.count
        }
    }

    /// Sends every result kept; false if the daemon is gone. Two buffers take turns, so a
    /// flush allocates nothing.
    func flushResults() -> Bool {
        writeLock.withLock {
            var reports = resultLock.withLock { () -> [JobReport] in
                var taken = spare
                swap(&taken, &unsent)
                return taken
            }
            guard !reports.isEmpty else { return true }
            let sent = sendLocked(.results(reports))
            reports.removeAll(keepingCapacity: true)
            resultLock.withLock { spare = reports }
            return sent
        }
    }

    /// The flush thread: sends results that have waited ``ChildWorker/flushAfter`` (the job
    /// after them runs long). Never returns.
    func flushLateResults() -> Never {
        while true {
            resultLock.withLock {
                while true {
                    if unsent.isEmpty {
                        flusherIdle = true
                        resultLock.wait()
                        flusherIdle = false
                        continue
                    }
                    let due = unsentSince + ChildWorker.flushAfter
                    if MonotonicClock.now() >= due { return }
                    _ = resultLock.wait(untilMonotonic: due)
                }
            }
            guard flushResults() else { concur_exit_stopping_command(0) }
        }
    }

    func receive(_ message: WorkerMessage) {
        switch message {
        case .jobs(let jobs):
            lock.withLock {
                held.append(contentsOf: jobs)
                lock.signal()
            }
        case .interrupt(let job) where job != 0:
            // Only the job named: if it already ended, the interrupt is moot; if it has not
            // started yet (a cancel), it is raised as it starts.
            lock.withLock {
                if current == job { cancellation.raise() } else { interruptedNext = job }
            }
        case .retire, .release, .interrupt:
            lock.withLock {
                if message != .release { retiring = true }
                if case .interrupt = message, current != nil { cancellation.raise() }
                let given = held.map(\.id)
                held.removeAll()
                // Sent before the lock is released: a retiring main thread must not exit
                // before the daemon knows these jobs came back.
                if !given.isEmpty && !send(.returned(given)) { concur_exit_stopping_command(0) }
                lock.signal()
            }
        default:
            break
        }
    }

    /// The next job, or nil when retiring with nothing left. While waiting for jobs, sends
    /// the results kept so far.
    func nextJob() -> Job? {
        while true {
            let job = lock.withLock { () -> Job?? in
                if let job = held.popFirst() {
                    cancellation.reset()
                    if job.id == interruptedNext { cancellation.raise() }
                    current = job.id
                    return .some(job)
                }
                current = nil
                return retiring ? .some(nil) : nil
            }
            if let job { return job }
            guard flushResults() else { concur_exit_stopping_command(0) }
            lock.withLock {
                while held.isEmpty && !retiring { lock.wait() }
            }
        }
    }
}
