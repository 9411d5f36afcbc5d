/// How the proxy of a child worker brings a child to stop, and when: the rules of asking, then
/// SIGTERM, then SIGKILL, apart from the process calls (ConcurRuntime's ProcessWorkerProxy owns
/// one and sends the signals it returns).
///
/// A child told to interrupt a job has ``stopGrace`` to stop it; if the job still runs (its
/// progress page says so), the child gets SIGTERM, and SIGKILL ``stopGrace`` later if it is still
/// there. A child that never says hello is killed after ``helloTimeout``; one that speaks
/// nonsense is killed at once. Each transition takes `now:` and returns at most one signal.
package struct ChildEscalation: Sendable, Equatable {
    /// What to send the child.
    package enum Signal: Sendable, Equatable {
        /// SIGTERM: stop, letting the child end its command's process group.
        case terminate
        /// SIGKILL.
        case kill
    }

    /// An interrupt told to the child, not yet honoured.
    struct PendingInterrupt: Sendable, Equatable {
        let at: UInt64
        let job: JobID?
    }

    /// Nanoseconds a child has to say hello.
    package static let helloTimeout: UInt64 = 10_000_000_000
    /// Nanoseconds a child has to stop an interrupted job before it is sent SIGTERM, and
    /// between SIGTERM and SIGKILL.
    package static let stopGrace: UInt64 = 2_000_000_000

    let startedAt: UInt64
    /// Whether the child said hello.
    package private(set) var ready = false
    var interrupt: PendingInterrupt?
    /// When the child was sent a signal to stop it (SIGTERM or SIGKILL), if it was.
    package private(set) var stopSentAt: UInt64?
    /// Whether it was sent SIGKILL.
    package private(set) var killSent = false

    /// A child spawned at `startedAt` (monotonic nanoseconds).
    package init(startedAt: UInt64) {
        self.startedAt = startedAt
    }

    /// Whether the child is being stopped by a signal (it is asked for nothing more).
    package var stopping: Bool { stopSentAt != nil }

    /// The child said hello; false if it had already.
    package mutating func childSaidHello() -> Bool {
        guard !ready else { return false }
        ready = true
        return true
    }

    /// Whether an interrupt may still be told to the child (none once it is being stopped).
    package var mayInterrupt: Bool { stopSentAt == nil }

    /// The child was told to interrupt `job` (nil: whatever it runs) at `now`.
    package mutating func interruptSent(job: JobID?, now: UInt64) {
        interrupt = PendingInterrupt(at: now, job: job)
    }

    /// What the deadlines ask for at `now`, given the job the child's progress page says runs:
    /// an interrupt not honoured in time becomes SIGTERM, SIGTERM not obeyed in time SIGKILL,
    /// a hello that never came SIGKILL. An interrupt is honoured once that job no longer runs.
    /// `running` is asked only while an interrupt is pending: reading the page the child writes
    /// around every job would pull its cache line away from the child on each loop.
    package mutating func deadlines(now: UInt64, running: @autoclosure () -> JobID?) -> Signal? {
        if let pending = interrupt {
            let running = running()
            if running == nil || (pending.job != nil && running != pending.job) {
                interrupt = nil
            } else if stopSentAt == nil, now - min(now, pending.at) >= Self.stopGrace {
                stopSentAt = now
                interrupt = nil
                return .terminate
            }
        }
        if let sent = stopSentAt, !killSent, now - min(now, sent) >= Self.stopGrace {
            killSent = true
            return .kill
        }
        if !ready, stopSentAt == nil, now - min(now, startedAt) >= Self.helloTimeout {
            stopSentAt = now
            killSent = true
            return .kill
        }
        return nil
    }

    /// The child cannot be talked to any more (it sent nonsense): SIGKILL now, unless it is
    /// already being stopped.
    package mutating func unreadable(now: UInt64) -> Signal? {
        guard stopSentAt == nil else { return nil }
        stopSentAt = now
        killSent = true
        return .kill
    }

    /// Milliseconds until the next deadline (at least 1, at most a minute), or -1 for none: how
    /// long the proxy may wait in `poll`.
    package func pollTimeout(now: UInt64) -> Int32 {
        var deadline: UInt64?
        if let sent = stopSentAt, !killSent { deadline = sent + Self.stopGrace }
        if let pending = interrupt { deadline = min(deadline ?? .max, pending.at + Self.stopGrace) }
        if !ready { deadline = min(deadline ?? .max, startedAt + Self.helloTimeout) }
        guard let deadline else { return -1 }
        return Int32(max(1, min(60_000, (deadline - min(deadline, now)) / 1_000_000 + 1)))
    }
}
