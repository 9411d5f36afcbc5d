import ConcurCore
import ConcurProtocol
import ConcurRuntime
import Synchronization
import Varlink

/// The answer to one `ListJobs` call, encoded a slice at a time off the event loop.
///
/// No reply is larger than a client takes as one message by default (1 MiB): without `more`, a
/// list that does not fit is refused with `InvalidValue`, the encoding stopped where it passed
/// the limit; with `more`, the jobs go in parts of about ``partBytes``, the next one once the
/// client has read the last. Everything is done on the ``ReplyBuilder``'s thread, not the event
/// loop, one list (or part) after another: choosing the jobs, then reading their records a
/// slice of ``batch`` at a time (a job pruned in between is left out) and encoding them; the
/// replies hop to the connection's event loop. While it waits, a list holds job ids, not
/// records, so a client that never reads costs one part and its ids; a list whose client hung
/// up is dropped where it stands, before anything more is built or sent.
final class JobListReply: Sendable {
    /// The most bytes of one reply's parameters: a message's limit, less room for the envelope.
    static let maxReplyBytes = VarlinkFraming.defaultMaxMessageSize - 1024
    /// About how many bytes one part of a list sent with `more` holds.
    static let partBytes = 256 << 10
    /// Jobs read from the pool (under one hold of its lock) and encoded in one turn.
    static let batch = 128

    /// Which jobs a list holds.
    enum Selection: Sendable {
        /// These ids (all known when the call was taken), those in `state` if given.
        case ids([JobID], state: JobState?)
        /// Up to `limit` jobs in `state` (or any), as ``PoolStateMachine/jobIDs(state:limit:)`` picks them.
        case recent(state: JobState?, limit: Int)
    }

    private struct Progress {
        /// The ids, once chosen (on the builder's thread), each with the index of its pool.
        var ids: [(pool: Int, id: JobID)]?
        /// Index in `ids` of the first job not encoded yet.
        var next = 0
        var encoder = Encoder()
        /// The client hung up: nothing more is built.
        var abandoned = false
    }

    private let pools: [Pool]
    private let selection: Selection
    private let responder: VarlinkResponder
    private let progress = Mutex(Progress())
    /// Jobs of the ids that no pool holds, read from a shared queue.
    private let fetched: [JobID: JobInfo]
    /// This node's name in a shared queue, given to the jobs its pools hold.
    private let node: String?

    /// The pool index of a job in ``fetched``.
    private static let fetchedPool = -1

    /// A reply listing the jobs of `selection` held by `pools` (at least one), or among
    /// `fetched` (jobs of a shared queue no pool here holds); `node` names this node there.
    init(
        pools: [Pool], selection: Selection, responder: VarlinkResponder, fetched: [JobID: JobInfo] = [:],
        node: String? = nil
    ) {
        self.pools = pools
        self.selection = selection
        self.responder = responder
        self.fetched = fetched
        self.node = node
    }

    /// Queues the first slice; the rest follow it (and, for parts, as the client reads).
    func send() {
        responder.onClose { [self] in progress.withLock { $0.abandoned = true } }
        ReplyBuilder.shared.submit { [self] in step() }
    }

    private var state: JobState? {
        switch selection {
        case .ids(_, let state), .recent(let state, _): state
        }
    }

    /// The parameter to name when the list does not fit one reply.
    private var parameter: String {
        if case .ids = selection { "ids" } else { "limit" }
    }

    private enum Next {
        case again
        case reply([UInt8], continues: Bool)
        case tooLarge(encoded: Int, of: Int)
    }

    private func step() {
        let next = progress.withLock { progress -> Next? in
            guard !progress.abandoned else { return nil }
            let ids = progress.ids ?? chooseIDs()
            progress.ids = ids
            let end = min(ids.count, progress.next + Self.batch)
            let limit = responder.more ? Self.partBytes : Self.maxReplyBytes + 1
            var taken = progress.next
            // Job by job: a part ends with the job that takes it past its size.
            for job in records(ids[progress.next..<end]) {
                progress.encoder.append(job.info)
                taken = job.index + 1
                if progress.encoder.bytes.count >= limit { break }
            }
            progress.next = progress.encoder.bytes.count >= limit ? taken : end
            let finished = progress.next == ids.count
            if responder.more {
                guard finished || progress.encoder.bytes.count >= Self.partBytes else { return .again }
                defer { progress.encoder = Encoder() }
                return .reply(progress.encoder.finish(), continues: !finished)
            }
            if progress.encoder.bytes.count > Self.maxReplyBytes {
                return .tooLarge(encoded: progress.encoder.count, of: ids.count)
            }
            return finished ? .reply(progress.encoder.finish(), continues: false) : .again
        }
        switch next {
        case nil:
            return
        case .again:
            ReplyBuilder.shared.submit(next: true) { [self] in step() }
        case .reply(let bytes, let continues):
            responder.reply(encoded: bytes, continues: continues)
            if continues { responder.whenWritable { [self] in ReplyBuilder.shared.submit { [self] in step() } } }
        case .tooLarge(let encoded, let count):
            responder.fail(
                SupervisorError.invalidValue(
                    parameter: parameter,
                    reason:
                        "the \(count) jobs asked for do not fit in one reply (the first \(encoded) already take over 1 MiB); "
                        + "ask for fewer, or call with 'more' to receive them in parts (concurctl jobs does)"))
        }
    }

    /// Those of `ids` that none of `pools` holds (jobs a shared queue holds elsewhere), in order.
    static func notHeld(_ ids: [JobID], in pools: [Pool]) -> [JobID] {
        ids.filter { id in !pools.contains { pool in pool.read { $0.holds(id) } } }
    }

    /// The first of `ids` that none of `pools` holds.
    static func firstUnknown(of ids: [JobID], in pools: [Pool]) -> JobID? {
        if pools.count == 1 { return pools[0].read { $0.firstUnknown(of: ids) } }
        return ids.first { id in !pools.contains { pool in pool.read { $0.holds(id) } } }
    }

    /// The ids the list holds. Of several pools: queued, scheduled, waiting and running jobs
    /// pool by pool (each in its own order), finished ones and the newest merged by id.
    private func chooseIDs() -> [(pool: Int, id: JobID)] {
        switch selection {
        case .ids(let ids, _):
            if pools.count == 1 && fetched.isEmpty { return ids.map { (0, $0) } }
            return ids.map { id in
                (pools.firstIndex { pool in pool.read { $0.holds(id) } } ?? (fetched[id] != nil ? Self.fetchedPool : 0), id)
            }
        case .recent(let state, let limit):
            let each = pools.indices.flatMap { index in
                pools[index].read { $0.jobIDs(state: state, limit: limit) }.map { (pool: index, id: $0) }
            }
            guard pools.count > 1 else { return each }
            switch state {
            case .queued?, .scheduled?, .waiting?, .running?: return Array(each.prefix(limit))
            case .done?, .failed?, .cancelled?, nil: return Array(each.sorted { $0.id < $1.id }.suffix(limit))
            }
        }
    }

    /// The records of `ids` still held (in `state`, if given), each with its index in the list:
    /// a run of ids of one pool is read under one hold of its lock.
    private func records(_ ids: ArraySlice<(pool: Int, id: JobID)>) -> [(index: Int, info: JobInfo)] {
        var found: [(index: Int, info: JobInfo)] = []
        var start = ids.startIndex
        while start < ids.endIndex {
            let pool = ids[start].pool
            let end = ids[start...].firstIndex { $0.pool != pool } ?? ids.endIndex
            defer { start = end }
            guard pool != Self.fetchedPool else {
                for index in start..<end { fetched[ids[index].id].map { found.append((index, $0)) } }
                continue
            }
            let name = pools[pool].name.rawValue
            pools[pool].read { state in
                for index in start..<end {
                    guard var info = state.job(ids[index].id) else { continue }
                    info.pool = name
                    info.node = node
                    found.append((index, info))
                }
            }
        }
        guard let state else { return found }
        return found.filter { $0.info.state == state }
    }

    /// The text of `{"jobs": [...]}`, built job by job.
    private struct Encoder {
        var bytes = Array("{\"jobs\":[".utf8)
        var count = 0

        mutating func append(_ job: JobInfo) {
            if count > 0 { bytes.append(UInt8(ascii: ",")) }
            job.json.serialize(into: &bytes)
            count += 1
        }

        func finish() -> [UInt8] {
            bytes + Array("]}".utf8)
        }
    }
}
