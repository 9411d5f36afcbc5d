import ConcurCore
import ConcurProtocol
import ConcurRuntime
import Synchronization
import Varlink

/// Sends an exec job's output to `Logs` callers, a chunk per reply, at the pace each client
/// reads; followers of a running job are looked at again every 100 ms by one thread of the
/// feed's own, until their job has ended and everything it wrote was sent.
///
/// `@unchecked Sendable`: `followers` and `threadStarted` are guarded by `lock`.
final class LogFeed: @unchecked Sendable {
    private let lock = ConditionLock()
    private var followers: [ObjectIdentifier: LogStreamer] = [:]
    private var threadStarted = false

    /// Bytes of output per reply (its Base64 is a third larger).
    static let chunk = 48 * 1024
    /// Nanoseconds between looks at a running job's files.
    static let followInterval: UInt64 = 100_000_000

    /// Streams `streams` of job `id` to `responder` from the start; with `follow`, until the job
    /// ends.
    func start(id: JobID, streams: [String], follow: Bool, pool: Pool, directory: String, responder: VarlinkResponder) {
        let streamer = LogStreamer(
            id: id, streams: streams, follow: follow, pool: pool, directory: directory, responder: responder, feed: self)
        responder.onClose { [self] in forget(streamer) }
        responder.enqueue { streamer.pump() }
    }

    /// `streamer` has sent what there is; its job still runs: look again soon.
    func wait(_ streamer: LogStreamer) {
        let start = lock.withLock { () -> Bool in
            followers[ObjectIdentifier(streamer)] = streamer
            lock.broadcast()
            defer { threadStarted = true }
            return !threadStarted
        }
        if start { try? OSThread.start(name: "concur-logs") { [self] in run() } }
    }

    func forget(_ streamer: LogStreamer) {
        streamer.stop()
        lock.withLock { _ = followers.removeValue(forKey: ObjectIdentifier(streamer)) }
    }

    private func run() -> Never {
        while true {
            let due = lock.withLock { () -> [LogStreamer] in
                while followers.isEmpty { lock.wait() }
                _ = lock.wait(untilMonotonic: MonotonicClock.now() + Self.followInterval)
                defer { followers.removeAll() }
                return Array(followers.values)
            }
            for streamer in due { streamer.resume() }
        }
    }
}

/// One `Logs` call: where it is in each stream, and what it sends next.
final class LogStreamer: Sendable {
    private struct Progress {
        var positions: [Int]
        var stopped = false
    }

    private let id: JobID
    private let streams: [String]
    private let follow: Bool
    private let pool: Pool
    private let directory: String
    private let responder: VarlinkResponder
    private let feed: LogFeed
    private let progress: Mutex<Progress>

    init(
        id: JobID, streams: [String], follow: Bool, pool: Pool, directory: String, responder: VarlinkResponder, feed: LogFeed
    ) {
        self.id = id
        self.streams = streams
        self.follow = follow
        self.pool = pool
        self.directory = directory
        self.responder = responder
        self.feed = feed
        progress = Mutex(Progress(positions: streams.map { _ in 0 }))
    }

    func stop() { progress.withLock { $0.stopped = true } }

    /// Called by the feed's thread: carries on, on the connection's event loop.
    func resume() { responder.enqueue { [self] in pump() } }

    /// Sends the next chunk (of whichever stream has one), then the next once the client has
    /// read it; when nothing is left, ends the call, or, following a job that runs, waits.
    func pump() {
        guard !progress.withLock({ $0.stopped }) else { return }
        // Whether the job had ended before this look: then what the files hold is all there is.
        let ended = pool.read { $0.job(id)?.state.isFinal ?? true }
        for (index, stream) in streams.enumerated() {
            let position = progress.withLock { $0.positions[index] }
            guard
                let chunk = OutputReader.read(stream, of: id, in: directory, from: position, limit: LogFeed.chunk)
            else { continue }
            progress.withLock { $0.positions[index] = chunk.next }
            var fields: JSONObject = ["stream": .string(stream), "data": .string(Base64.encode(chunk.bytes))]
            if chunk.cut > 0 { fields["cut"] = chunk.cut.json }
            responder.reply(fields, continues: true)
            responder.whenWritable { [self] in pump() }
            return
        }
        if ended || !follow {
            stop()
            responder.reply(["end": true])
            return
        }
        feed.wait(self)
    }
}
