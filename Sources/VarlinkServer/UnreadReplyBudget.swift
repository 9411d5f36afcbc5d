import Synchronization

/// The bytes of replies written to all of a server's connections that their clients have not
/// read yet (held in the daemon, beyond what the kernel takes), and a limit on their sum.
///
/// Each connection's share is bounded by itself (no call is taken while its replies wait
/// unread, and no reply is over a message's size); this bounds the sum over many connections
/// that all stop reading: past the limit, the connections holding the most are closed, so a
/// client that reads what it asked for is never the one let go while another holds more.
/// Shared by the connections of one server, on any thread.
final class UnreadReplyBudget: Sendable {
    /// A connection chosen to be closed, and what it held.
    struct Eviction {
        let bytes: Int
        /// Who it was, for the log.
        let peer: String
        let close: @Sendable () -> Void
    }

    private struct Holder {
        var bytes: Int
        let peer: String
        let close: @Sendable () -> Void
    }

    /// Bytes all connections may leave unread together.
    let limit: Int
    private let state = Mutex<(holders: [ObjectIdentifier: Holder], total: Int)>(([:], 0))

    /// A budget of `limit` bytes.
    init(limit: Int) {
        self.limit = limit
    }

    /// Bytes unread on all connections now.
    var total: Int { state.withLock { $0.total } }

    /// Records that connection `id` (of `peer`) now leaves `bytes` unread (`close` closes it);
    /// returns the connections to close, the largest first, that bring the sum back within the
    /// limit (it may be this one).
    func update(_ id: ObjectIdentifier, bytes: Int, peer: String = "", close: @escaping @Sendable () -> Void) -> [Eviction] {
        state.withLock { state in
            let before = state.holders[id]?.bytes ?? 0
            guard bytes != before else { return [] }
            state.total += bytes - before
            if bytes == 0 {
                state.holders[id] = nil
            } else {
                state.holders[id] = Holder(bytes: bytes, peer: peer, close: close)
            }
            var evicted: [Eviction] = []
            while state.total > limit, let (largest, holder) = state.holders.max(by: { $0.value.bytes < $1.value.bytes }) {
                state.holders[largest] = nil
                state.total -= holder.bytes
                evicted.append(Eviction(bytes: holder.bytes, peer: holder.peer, close: holder.close))
            }
            return evicted
        }
    }

    /// Forgets connection `id` (it closed).
    func remove(_ id: ObjectIdentifier) {
        state.withLock { state in
            if let holder = state.holders.removeValue(forKey: id) { state.total -= holder.bytes }
        }
    }
}
