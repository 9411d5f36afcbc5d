import ConcurCore
import ConcurProtocol
import ConcurRuntime
import Varlink

/// The statistics `WatchStats` streams: computed at most once per ``reuseWithin`` however many
/// clients watch, and sent to each at its own interval by one thread of its own.
///
/// A watcher's replies are droppable: while its client has not read the previous one, a new one
/// is skipped (the latest wins), so a slow client gets fewer frames and costs the daemon nothing
/// more; one that stops reading altogether is disconnected by the transport. The feed runs on
/// its own OS thread, not on Swift's shared executor, so nothing that blocks there can stall it.
///
/// `@unchecked Sendable`: `watchers`, `nextID`, `cache` and `threadStarted` are guarded by `lock`.
final class StatsFeed: @unchecked Sendable {
    private struct Watcher {
        let pool: Pool
        let responder: VarlinkResponder
        let period: UInt64
        var due: UInt64
    }

    private let supervisor: Supervisor
    private let lock = ConditionLock()
    private var watchers: [Int: Watcher] = [:]
    private var nextID = 0
    /// The last frame of each pool watched or asked for, by its name.
    private var cache: [PoolName: (time: UInt64, frame: [UInt8])] = [:]
    private var threadStarted = false
    /// A frame this recent is sent again rather than computed anew, in nanoseconds.
    static let reuseWithin: UInt64 = 20_000_000

    init(supervisor: Supervisor) {
        self.supervisor = supervisor
    }

    /// The current statistics of `pool` (the default one unless given) as a reply's
    /// parameters, serialized: the cached frame if it is younger than `maxAge` nanoseconds
    /// (``reuseWithin`` by default). Encoded once, sent to every watcher and caller that shares it.
    func frame(of pool: Pool? = nil, maxAge: UInt64 = reuseWithin) -> [UInt8] {
        let pool = pool ?? supervisor.pool
        let now = MonotonicClock.now()
        if let cached = lock.withLock({ cache[pool.name] }), now - cached.time < maxAge { return cached.frame }
        var frame: [UInt8] = []
        supervisor.stats(of: pool).json.serialize(into: &frame)
        lock.withLock { cache[pool.name] = (now, frame) }
        return frame
    }

    /// Sends `responder` a frame of `pool` now and every `interval` seconds until its client
    /// hangs up.
    func watch(_ pool: Pool, every interval: Double, responder: VarlinkResponder) {
        let period = UInt64(interval * 1e9)
        let (id, start) = lock.withLock { () -> (Int, Bool) in
            nextID += 1
            watchers[nextID] = Watcher(pool: pool, responder: responder, period: period, due: MonotonicClock.now())
            lock.broadcast()
            defer { threadStarted = true }
            return (nextID, !threadStarted)
        }
        responder.onClose { [self] in lock.withLock { _ = watchers.removeValue(forKey: id) } }
        if start {
            do {
                try OSThread.start(name: "concur-stats") { [self] in run() }
            } catch {
                responder.fail(.invalidParameter("interval"))
            }
        }
    }

    /// Ends every watch with a last frame (a reply that does not continue): the daemon is
    /// stopping, and its watchers learn it from the stream rather than from a dropped connection.
    func finish() {
        let ending = lock.withLock { () -> [Watcher] in
            defer {
                watchers.removeAll()
                cache = [:]
            }
            return Array(watchers.values)
        }
        guard !ending.isEmpty else { return }
        var last: [PoolName: [UInt8]] = [:]
        for watcher in ending {
            if last[watcher.pool.name] == nil { last[watcher.pool.name] = frame(of: watcher.pool) }
            watcher.responder.reply(encoded: last[watcher.pool.name]!)
        }
    }

    /// The feed's loop: sleeps until the earliest watcher is due, then serves every due one from
    /// one snapshot. A watcher served late skips the frames it missed instead of bursting.
    private func run() -> Never {
        while true {
            let due = lock.withLock { () -> [(Pool, VarlinkResponder)] in
                while true {
                    let now = MonotonicClock.now()
                    guard let next = watchers.values.map(\.due).min() else {
                        lock.wait()
                        continue
                    }
                    if next > now {
                        _ = lock.wait(untilMonotonic: next)
                        continue
                    }
                    var due: [(Pool, VarlinkResponder)] = []
                    for (id, watcher) in watchers where watcher.due <= now {
                        due.append((watcher.pool, watcher.responder))
                        var following = watcher.due + watcher.period
                        if following <= now { following = now + watcher.period }
                        watchers[id]?.due = following
                    }
                    return due
                }
            }
            // One snapshot per pool watched.
            var frames: [PoolName: [UInt8]] = [:]
            for (pool, responder) in due {
                if frames[pool.name] == nil { frames[pool.name] = frame(of: pool) }
                responder.offer(encoded: frames[pool.name]!)
            }
        }
    }
}
