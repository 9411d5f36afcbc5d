import ConcurCore
import ConcurProtocol
import ConcurRuntime
import Logging
import Varlink

/// Streams the ends of jobs in a shared queue (`--store`) to the calls that wait for them:
/// `Submit`/`Generate` with `more` and `WatchJobs`. Their jobs run on any node, so no pool here
/// sees them end; the feed asks the queue instead, on a thread of its own: every
/// ``interval`` one read of the jobs ended among those every watch still waits for.
///
/// Each watch gets one reply per job, as it is seen ended (its call's header fields repeated),
/// the last one ending the call; at most ``repliesPerTurn`` go out before the client has read
/// them, and a watch waits for at most ``maxJobs`` jobs, so what one holds is bounded. A client
/// that hangs up stops its watch. While the queue cannot be read the watches wait on (a wait
/// has its own `--timeout`); the reason is logged once.
///
/// `@unchecked Sendable`: `watches`, `nextID`, `threadStarted`, `reading` and `failing` are
/// guarded by `lock`.
final class SharedJobFeed: @unchecked Sendable {
    private struct Watch {
        let responder: VarlinkResponder
        let header: JSONObject
        /// The jobs not yet seen ended.
        var remaining: Set<JobID>
        /// Jobs seen ended and not yet sent, in the order seen.
        var pending: [JobInfo] = []
        /// A delivery is scheduled on the connection.
        var delivering = false
    }

    private let queue: any SharedQueueNode
    private let logger: Logger
    private let lock = ConditionLock()
    private var watches: [Int: Watch] = [:]
    private var nextID = 0
    private var threadStarted = false
    /// A read is under way: the next waits for it.
    private var reading = false
    /// The last read failed (said once, until one succeeds).
    private var failing = false

    /// How often the queue is read while a watch waits, in nanoseconds.
    static let interval: UInt64 = 200_000_000
    /// The most jobs one watch may wait for (a larger `Generate` with `more` is refused).
    static let maxJobs = 100_000
    /// Replies sent to one client per turn of its connection.
    static let repliesPerTurn = 64

    /// A feed reading `queue`.
    init(queue: any SharedQueueNode, logger: Logger) {
        self.queue = queue
        self.logger = logger
    }

    /// Sends `responder` a reply for each of `ids` as it is seen ended (with `header`'s fields),
    /// the last one ending the call: at once for jobs that have ended already. `ids` exist in
    /// the queue (the caller checked, or just queued them). Nothing to wait for ends the call
    /// with `header` alone.
    func watch(_ ids: some Sequence<JobID>, header: JSONObject, responder: VarlinkResponder) {
        let remaining = Set(ids)
        guard !remaining.isEmpty else { return responder.reply(header) }
        let (id, start) = lock.withLock { () -> (Int, Bool) in
            nextID += 1
            watches[nextID] = Watch(responder: responder, header: header, remaining: remaining)
            lock.broadcast()
            defer { threadStarted = true }
            return (nextID, !threadStarted)
        }
        responder.onClose { [self] in lock.withLock { _ = watches.removeValue(forKey: id) } }
        guard start else { return }
        do {
            try OSThread.start(name: "concur-waits") { [self] in run() }
        } catch {
            lock.withLock { threadStarted = false }
            responder.fail(SupervisorError.storeUnavailable(reason: "no thread to follow the jobs: \(error)"))
        }
    }

    /// The feed's loop: while a watch waits, reads the ended jobs among all they wait for, one
    /// read at a time, every ``interval``.
    private func run() -> Never {
        var next = MonotonicClock.now()
        while true {
            let wanted = lock.withLock { () -> [JobID] in
                while true {
                    if watches.values.allSatisfy({ $0.remaining.isEmpty }) || reading {
                        lock.wait()
                        continue
                    }
                    if MonotonicClock.now() < next {
                        _ = lock.wait(untilMonotonic: next)
                        continue
                    }
                    reading = true
                    return Array(watches.values.reduce(into: Set<JobID>()) { $0.formUnion($1.remaining) })
                }
            }
            next = MonotonicClock.now() + Self.interval
            queue.readEndedJobs(wanted) { [self] result in seen(result) }
        }
    }

    /// Takes in a read's result: each watch's newly ended jobs are sent.
    private func seen(_ result: Result<[JobInfo], SharedQueueFailure>) {
        let deliveries = lock.withLock { () -> [Int] in
            reading = false
            lock.broadcast()
            guard case .success(let ended) = result else { return [] }
            var deliveries: [Int] = []
            for (id, var watch) in watches {
                let mine = ended.filter { watch.remaining.remove($0.id) != nil }
                guard !mine.isEmpty else { continue }
                watch.pending += mine
                if !watch.delivering {
                    watch.delivering = true
                    deliveries.append(id)
                }
                watches[id] = watch
            }
            return deliveries
        }
        switch result {
        case .failure(let failure):
            if !lock.withLock({ failing }) {
                logger.warning("the waits for jobs of the shared queue cannot read it (\(failure)); they wait on")
            }
            lock.withLock { failing = true }
        case .success:
            lock.withLock { failing = false }
        }
        for id in deliveries {
            lock.withLock { watches[id]?.responder }?.whenWritable { [self] in deliver(id) }
        }
    }

    /// Sends watch `id` up to ``repliesPerTurn`` of its pending jobs; the rest once the client
    /// has read those. The last job of the watch ends the call and the watch.
    private func deliver(_ id: Int) {
        let taken = lock.withLock { () -> (Watch, [JobInfo], Bool)? in
            guard var watch = watches[id] else { return nil }
            let batch = Array(watch.pending.prefix(Self.repliesPerTurn))
            watch.pending.removeFirst(batch.count)
            let finished = watch.pending.isEmpty && watch.remaining.isEmpty
            watch.delivering = !watch.pending.isEmpty
            if finished { watches[id] = nil } else { watches[id] = watch }
            return (watch, batch, finished)
        }
        guard let (watch, batch, finished) = taken else { return }
        for (index, job) in batch.enumerated() {
            var fields = watch.header
            fields["job"] = job.json
            watch.responder.reply(fields, continues: !(finished && index == batch.count - 1))
        }
        if watch.delivering { watch.responder.whenWritable { [self] in deliver(id) } }
    }
}
