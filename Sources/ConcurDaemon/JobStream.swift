import ConcurCore
import ConcurProtocol
import ConcurRuntime
import Logging
import Synchronization
import Varlink

/// Streams a watch's finished jobs to one Varlink call, one reply per job, the last one
/// ending the call; removes the watch if the client hangs up first.
///
/// It keeps itself alive (through its sink's wake-up closure) until the stream ends or the
/// client hangs up.
final class JobStream: Sendable {
    private struct Progress {
        /// The watches feeding the stream, one per pool it covers.
        var watches: [(pool: Pool, id: Int)] = []
        var header: JSONObject = [:]
        var isStarted = false
        var isOver = false
    }

    let sink: JobWatchSink
    private let responder: VarlinkResponder
    private let progress = Mutex(Progress())
    private let anchor: StreamAnchor

    /// A stream to `responder`; `onCutOff` hears why a client that fell too far behind was cut
    /// off.
    /// With `summarizes`, jobs the client is too far behind for are counted, not it cut off
    /// (see ``JobWatchSink``): for streams that end.
    init(
        responder: VarlinkResponder, budget: WatchBudget? = nil, summarizes: Bool = false,
        onCutOff: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.responder = responder
        let anchor = StreamAnchor()
        self.anchor = anchor
        let reason = "the client fell too far behind (its unread jobs passed what concurd keeps for a watcher) and was cut off"
        self.sink = JobWatchSink(
            budget: budget, summarizes: summarizes, onCutOff: { onCutOff(reason) },
            onReady: { anchor.stream?.scheduleDelivery() })
        anchor.stream = self
    }

    /// Records the watch of `pool` and the fields every reply repeats; deliveries begin (after
    /// the call's first reply, sent before this).
    func start(watch: Int?, in pool: Pool, header: JSONObject) {
        start(watches: watch.map { [(pool, $0)] } ?? [], header: header)
    }

    /// Records the watches (one per pool, the sink told how many end it) and the fields every
    /// reply repeats; deliveries begin.
    func start(watches: [(pool: Pool, id: Int)], header: JSONObject) {
        progress.withLock {
            $0.watches = watches
            $0.header = header
            $0.isStarted = true
        }
        responder.onClose { [self] in end() }
        scheduleDelivery()
    }

    /// Delivers once the client has read what it was sent (at once if it has): while it has
    /// not, the jobs wait in the sink, where the watch budget bounds them.
    private func scheduleDelivery() {
        responder.whenWritable { [self] in deliver() }
    }

    /// Replies sent per turn of the event loop; the rest wait until the client has read these.
    static let repliesPerTurn = 64

    private func deliver() {
        let current = progress.withLock { $0 }
        guard !current.isOver else { return }
        // Completions before the call's first reply wait: `start` schedules a delivery.
        guard current.isStarted else { return }
        let (items, ended, overflowed, more) = sink.take(limit: Self.repliesPerTurn)
        for (index, item) in items.enumerated() {
            var fields = current.header
            switch item {
            case .job(let job):
                fields["job"] = job.json
            case .event(let event): fields["event"] = event.json
            case .skipped(let totals):
                fields["skipped"] = ["done": totals.done.json, "failed": totals.failed.json, "cancelled": totals.cancelled.json]
            }
            responder.reply(fields, continues: !(ended && !overflowed && index == items.count - 1))
        }
        if overflowed {
            responder.fail(
                SupervisorError.invalidValue(
                    parameter: "more", reason: "the client fell too far behind and was cut off (its backlog was dropped)"))
        }
        if ended {
            end()
        } else if more {
            // The rest once the client has read these: its pace, not the pool's, sets the flow.
            responder.whenWritable { [self] in deliver() }
        }
    }

    /// Lets go of a stream whose call failed before it started.
    func cancel() { end() }

    /// Stops the watches (those the pools still have) and lets the stream go.
    private func end() {
        let watches = progress.withLock { progress -> [(pool: Pool, id: Int)] in
            progress.isOver = true
            defer { progress.watches = [] }
            return progress.watches
        }
        for watch in watches { watch.pool.removeWatch(watch.id) }
        anchor.stream = nil
    }
}

/// Holds a ``JobStream`` while its watch lives: the sink's wake-up closure reaches the stream
/// through it, and ``JobStream`` clears it when the stream ends.
final class StreamAnchor: Sendable {
    private let reference = Mutex<JobStream?>(nil)

    var stream: JobStream? {
        get { reference.withLock { $0 } }
        set { reference.withLock { $0 = newValue } }
    }
}
