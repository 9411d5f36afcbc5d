import ConcurCore
import ConcurRuntime
import DequeModule

/// One thread that builds large replies (long job lists) a slice at a time, off the event
/// loop, so that the event loop answers other calls meanwhile: a hundred clients asking for
/// thousands of jobs each delay a `Status` by nothing, not by seconds.
///
/// A reply that has more to build hands its next slice in at the front of the line, so one
/// reply is built at a time, in the order they came (a long list's memory is not multiplied by
/// every client waiting); a stream's next part, built once its client has read the last,
/// joins at the back. The thread starts with the first slice and lives as long as the
/// process; if it cannot be started, slices run on the caller's thread. `@unchecked Sendable`:
/// `line` is only touched holding `lock`.
final class ReplyBuilder: @unchecked Sendable {
    /// The builder the control service uses.
    static let shared = ReplyBuilder()

    private struct Line {
        var slices: Deque<@Sendable () -> Void> = []
        var started = false
    }

    private let lock = ConditionLock()
    private var line = Line()

    /// Queues `slice` to run on the builder's thread after those queued before it, or before
    /// all of them when it continues the reply being built (`next`).
    func submit(next: Bool = false, _ slice: @escaping @Sendable () -> Void) {
        let start = lock.withLock { () -> Bool in
            if next {
                line.slices.prepend(slice)
            } else {
                line.slices.append(slice)
            }
            lock.signal()
            defer { line.started = true }
            return !line.started
        }
        guard start else { return }
        do {
            try OSThread.start(name: "concur-replies") { [self] in run() }
        } catch {
            lock.withLock { line.started = false }
            drainHere()
        }
    }

    private func run() {
        while true {
            let slice = lock.withLock { () -> @Sendable () -> Void in
                while line.slices.isEmpty { lock.wait() }
                return line.slices.removeFirst()
            }
            slice()
        }
    }

    private func drainHere() {
        while let slice = lock.withLock({ line.slices.popFirst() }) { slice() }
    }
}
