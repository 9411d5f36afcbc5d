import CConcurShims
import ConcurCore
import ConcurProtocol
import Glibc

/// The daemon's side of one child worker, on a thread of its own: spawns the child, hands it
/// jobs in adaptive batches, records its results, and notices its death at once (a pidfd), even
/// while it is idle.
///
/// It waits in poll(2) on three descriptors: the child's socket, a doorbell the pool rings
/// (jobs arrived, retire, interrupt, release) and the child's pidfd.
final class ProcessWorkerProxy {
    private let handle: WorkerHandle
    private let pool: Pool
    private let launcher: any WorkerLauncher
    private let doorbell: Int32
    private var id: WorkerID { handle.id }

    private var pid: pid_t = 0
    private var socket: Int32 = -1
    private var progress: WorkerProgress?
    private var pidfd: Int32 = -1
    private var frames = WireFrames()
    private var outbox: [UInt8] = []
    private var outboxSent = 0
    private var readBuffer = [UInt8](repeating: 0, count: 256 * 1024)

    private var held = 0
    private var retireSent = false
    /// When to send the child SIGTERM or SIGKILL: the rules, apart from the signals.
    private var escalation = ChildEscalation(startedAt: MonotonicClock.now())
    private var batches = BatchSizer.childProcess

    init(handle: WorkerHandle, pool: Pool, launcher: any WorkerLauncher, doorbell: Int32) {
        self.handle = handle
        self.pool = pool
        self.launcher = launcher
        self.doorbell = doorbell
    }

    /// Runs until the child has exited and the pool was told; `delay` is the backoff to wait first.
    func run(delay: Double) {
        if delay > 0 && !waitOutBackoff(seconds: delay) {
            pool.workerExited(id, exit: .retired)
            return
        }
        guard spawn() else { return }
        defer {
            close(socket)
            close(pidfd)
        }
        while true {
            if escalation.ready { askForWork() }
            flushOutbox()
            var descriptors = [
                pollfd(fd: socket, events: Int16(POLLIN) | (outbox.count > outboxSent ? Int16(POLLOUT) : 0), revents: 0),
                pollfd(fd: doorbell, events: Int16(POLLIN), revents: 0),
                pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0),
            ]
            let count = poll(&descriptors, 3, pollTimeout())
            if count < 0 && errno != EINTR { break }
            if descriptors[1].revents != 0 {
                concur_drain(doorbell)
                handleRequests()
            }
            if descriptors[0].revents & Int16(POLLIN | POLLHUP) != 0 { readMessages() }
            if descriptors[2].revents != 0 {
                finish()
                return
            }
            enforceDeadlines()
        }
        finish()
    }

    // MARK: Start

    /// Waits `seconds` unless the worker is retired meanwhile; false if it was.
    private func waitOutBackoff(seconds: Double) -> Bool {
        let deadline = MonotonicClock.now() + UInt64(seconds * 1e9)
        while MonotonicClock.now() < deadline {
            var descriptor = pollfd(fd: doorbell, events: Int16(POLLIN), revents: 0)
            let remaining = Int32(max(1, (deadline - min(deadline, MonotonicClock.now())) / 1_000_000))
            if poll(&descriptor, 1, remaining) > 0 { concur_drain(doorbell) }
            if pool.read({ $0.workers[id]?.retiring ?? true }) { return false }
        }
        return true
    }

    private func spawn() -> Bool {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            pool.workerExited(
                id, exit: .died(reason: "worker \(id) could not be started: socketpair: \(String(cString: strerror(errno)))"))
            return false
        }
        guard let page = WorkerProgress() else {
            close(ends[0])
            close(ends[1])
            pool.workerExited(
                id,
                exit: .died(reason: "worker \(id) could not be started: no progress page: \(String(cString: strerror(errno)))"))
            return false
        }
        let result = launcher.launch(channel: ends[1], progress: page.fileDescriptor)
        close(ends[1])
        switch result {
        case .failure(let error):
            close(ends[0])
            pool.workerExited(id, exit: .died(reason: "worker \(id) could not be started: \(error)"))
            return false
        case .success(let child):
            pid = child
        }
        progress = page
        handle.attach(page)
        socket = ends[0]
        _ = fcntl(socket, F_SETFL, fcntl(socket, F_GETFL) | O_NONBLOCK)
        pidfd = concur_pidfd_open(pid, 0)
        guard pidfd >= 0 else {
            let reason = String(cString: strerror(errno))
            kill(pid, SIGKILL)
            _ = waitForExit()
            close(socket)
            pool.workerExited(
                id, exit: .died(reason: "worker \(id) could not be watched: pidfd_open: \(reason)"))
            return false
        }
        return true
    }

    // MARK: Jobs

    private func askForWork() {
        guard !retireSent, !escalation.stopping, held <= batches.limit / 2 else { return }
        switch pool.assign(worker: id, limit: batches.limit - held) {
        case .run(let jobs) where !jobs.isEmpty:
            held += jobs.count
            WorkerMessage.jobs(jobs).encode(into: &outbox)
        case .run, .wait:
            break
        case .retire:
            retireSent = true
            WorkerMessage.retire.encode(into: &outbox)
        }
    }

    private func handleRequests() {
        let requests = handle.takeRequests()
        if requests.contains(.interrupt) && escalation.mayInterrupt && held > 0 {
            // The child stops the job itself and reports it; it is stopped only if it does not.
            let job = handle.interruptedJob
            WorkerMessage.interrupt(job: job ?? 0).encode(into: &outbox)
            escalation.interruptSent(job: job, now: MonotonicClock.now())
            // Interrupting whatever runs is for a retiring worker: the child retires with it.
            if job == nil { retireSent = true }
        }
        if requests.contains(.release) && held > 1 && !retireSent {
            WorkerMessage.release.encode(into: &outbox)
        }
    }

    private func enforceDeadlines() {
        signal(escalation.deadlines(now: MonotonicClock.now(), running: progress?.running?.job))
    }

    private func signal(_ signal: ChildEscalation.Signal?) {
        switch signal {
        case .terminate: kill(pid, SIGTERM)
        case .kill: kill(pid, SIGKILL)
        case nil: break
        }
    }

    private func pollTimeout() -> Int32 {
        escalation.pollTimeout(now: MonotonicClock.now())
    }

    // MARK: The channel

    private func flushOutbox() {
        while outboxSent < outbox.count {
            let written = outbox.withUnsafeBytes { raw in
                send(socket, raw.baseAddress! + outboxSent, raw.count - outboxSent, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                return  // EAGAIN: the rest goes when the socket is writable; EPIPE: the pidfd tells
            }
            outboxSent += written
        }
        outbox.removeAll(keepingCapacity: true)
        outboxSent = 0
    }

    /// Reads everything the child sent and acts on it.
    private func readMessages() {
        while true {
            let count = readBuffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            readBuffer.withUnsafeBytes { frames.append(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            do {
                while let message = try frames.next() { receive(message) }
            } catch {
                // A child that speaks nonsense is stopped; its jobs are retried elsewhere.
                signal(escalation.unreadable(now: MonotonicClock.now()))
                return
            }
        }
    }

    private func receive(_ message: WorkerMessage) {
        switch message {
        case .hello(let childPID):
            guard escalation.childSaidHello() else { return }
            pool.workerReady(id, osID: Int(childPID))
        case .results(let reports):
            held -= reports.count
            // Time spent running, not waiting between batches.
            let running = reports.reduce(UInt64(0)) { sum, report in
                sum + report.finishedAt - min(report.finishedAt, report.startedAt ?? report.finishedAt)
            }
            batches.record(jobs: reports.count, nanoseconds: running)
            pool.finish(worker: id, reports: reports)
        case .returned(let ids):
            held -= ids.count
            pool.returnJobs(worker: id, ids: ids)
        case .jobs, .retire, .release, .interrupt:
            break
        }
    }

    // MARK: The end

    /// Reaps the child (it has exited), takes what it still sent, and tells the pool how it left.
    private func finish() {
        if !escalation.stopping && pidIsAlive() {
            // Leaving while the child lives (poll failed): do not leave it behind.
            kill(pid, SIGKILL)
        }
        let (code, signal) = waitForExit()
        // A child killed outright (SIGKILL, the OOM killer) could not stop its command: the
        // daemon does, from the group the child left on its progress page.
        if let group = progress?.commandGroup, group > 0 { kill(-group, SIGKILL) }
        readMessages()
        let who = "worker \(id) (pid \(pid))"
        let how = signal >= 0 ? "killed by \(Self.signalName(signal))" : "exited with status \(code)"
        // Exactly which job it was running, even though its results came in batches.
        let report = progress?.report
        let exit: WorkerExit
        if escalation.stopping && escalation.ready {
            exit = .stopped(reason: "\(who) was stopped: \(how)", progress: report)
        } else if retireSent && code == 0 {
            exit = .retired
        } else if !escalation.ready {
            exit = .died(reason: "\(who) \(how) before it started serving", progress: report)
        } else {
            exit = .died(reason: "\(who) \(how)", progress: report)
        }
        pool.workerExited(id, exit: exit)
    }

    /// Waits for the child, which has exited or been killed, to be reaped; how it ended.
    private func waitForExit() -> (code: Int32, signal: Int32) {
        while true {
            if let status = launcher.reap(pid) { return status }
            usleep(500)
        }
    }

    private func pidIsAlive() -> Bool {
        var descriptor = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) == 0
    }

    /// `SIGKILL` for 9: the name people recognise.
    static func signalName(_ number: Int32) -> String {
        let names: [Int32: String] = [
            SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP", SIGABRT: "SIGABRT",
            SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGUSR1: "SIGUSR1", SIGSEGV: "SIGSEGV", SIGUSR2: "SIGUSR2",
            SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM", SIGXCPU: "SIGXCPU", SIGXFSZ: "SIGXFSZ", SIGSYS: "SIGSYS",
        ]
        return names[number] ?? "signal \(number)"
    }
}
