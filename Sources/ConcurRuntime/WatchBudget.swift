import ConcurCore
import Synchronization

/// The memory the watches of the control socket may hold for clients that have not taken their
/// items yet, in bytes (estimated): `total` for all of them together, `perWatch` for one.
///
/// A watch whose client keeps up holds little; one whose client stops reading grows until it is
/// cut off: at `perWatch`, or sooner once all watches together hold `total` and it holds more
/// than an even share. So many stuck watchers cost `total`, not `perWatch` each, while one busy
/// but healthy reader is not cut off for the others' sake.
package final class WatchBudget: Sendable {
    /// Bytes all watches may hold together before the largest are cut off.
    package let total: Int
    /// Bytes one watch may hold.
    package let perWatch: Int
    private let state = Mutex<(held: Int, watches: Int)>((0, 0))

    /// A budget of `total` bytes, at most `perWatch` for one watch.
    package init(total: Int = 32 << 20, perWatch: Int = 16 << 20) {
        self.total = total
        self.perWatch = perWatch
    }

    /// Bytes held by all watches now.
    package var held: Int { state.withLock { $0.held } }

    func register() {
        state.withLock { $0.watches += 1 }
    }

    func unregister(releasing bytes: Int) {
        state.withLock { state in
            state.watches -= 1
            state.held -= bytes
        }
    }

    /// Takes `bytes` for a watch that holds `mine`; false if that watch must be cut off.
    func reserve(_ bytes: Int, holding mine: Int) -> Bool {
        state.withLock { state in
            if mine + bytes > perWatch { return false }
            if state.held + bytes > total && mine > total / max(1, state.watches) { return false }
            state.held += bytes
            return true
        }
    }

    func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        state.withLock { $0.held -= bytes }
    }
}

extension WatchItem {
    /// About how many bytes the item holds in memory: its fixed size and its texts.
    var estimatedBytes: Int {
        switch self {
        case .job(let job):
            var bytes = 320 + (job.error?.utf8.count ?? 0)
            if let result = job.result { bytes += result.summary.utf8.count + (result.output?.utf8.count ?? 0) }
            if case .exec(let argv) = job.kind { bytes += argv.reduce(16 * argv.count) { $0 + $1.utf8.count } }
            return bytes
        case .event(let event):
            return 160 + event.message.utf8.count
        case .skipped:
            return 0
        }
    }
}
