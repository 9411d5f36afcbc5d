import ConcurCore
import ConcurProtocol
import Synchronization
import Varlink

/// The answer to one `ListJobs` call, encoded a slice at a time off the event loop.
///
/// No reply is larger than a client takes as one message by default (1 MiB): without `more`, a
/// list that does not fit is refused with `InvalidValue`, the encoding stopped where it passed
/// the limit; with `more`, the jobs go in parts of about ``partBytes``, the next one once the
/// client has read the last. The list holds job ids, not records, while it waits, and reads
/// the records from the pool a slice at a time (a job pruned in between is left out), so a
/// client that never reads costs one part and its ids. The slices of ``batch`` jobs are read
/// and encoded on the ``ReplyBuilder``'s thread, not the event loop, one list (or part) after
/// another; the replies hop to the connection's event loop.
final class JobListReply: Sendable {
    /// The most bytes of one reply's parameters: a message's limit, less room for the envelope.
    static let maxReplyBytes = VarlinkFraming.defaultMaxMessageSize - 1024
    /// About how many bytes one part of a list sent with `more` holds.
    static let partBytes = 256 << 10
    /// Jobs read from the pool (under one hold of its lock) and encoded in one turn.
    static let batch = 128

    private struct Progress {
        /// Index in `ids` of the first job not encoded yet.
        var next = 0
        var encoder = Encoder()
    }

    private let pool: Pool
    private let ids: [JobID]
    private let state: JobState?
    private let parameter: String
    private let responder: VarlinkResponder
    private let progress = Mutex(Progress())

    /// A reply listing `ids` (those in `state`, if given); `parameter` is the one to name if
    /// the list does not fit one reply (`limit` or `ids`).
    init(pool: Pool, ids: [JobID], state: JobState?, parameter: String, responder: VarlinkResponder) {
        self.pool = pool
        self.ids = ids
        self.state = state
        self.parameter = parameter
        self.responder = responder
    }

    /// Queues the first slice; the rest follow it (and, for parts, as the client reads).
    func send() {
        ReplyBuilder.shared.submit { [self] in step() }
    }

    private enum Next {
        case again
        case reply([UInt8], continues: Bool)
        case tooLarge(encoded: Int)
    }

    private func step() {
        let next = progress.withLock { progress -> Next in
            let end = min(ids.count, progress.next + Self.batch)
            for job in records(progress.next..<end) { progress.encoder.append(job) }
            progress.next = end
            let finished = end == ids.count
            if responder.more {
                guard finished || progress.encoder.bytes.count >= Self.partBytes else { return .again }
                defer { progress.encoder = Encoder() }
                return .reply(progress.encoder.finish(), continues: !finished)
            }
            if progress.encoder.bytes.count > Self.maxReplyBytes { return .tooLarge(encoded: progress.encoder.count) }
            return finished ? .reply(progress.encoder.finish(), continues: false) : .again
        }
        switch next {
        case .again:
            ReplyBuilder.shared.submit(next: true) { [self] in step() }
        case .reply(let bytes, let continues):
            responder.reply(encoded: bytes, continues: continues)
            if continues { responder.whenWritable { [self] in send() } }
        case .tooLarge(let encoded):
            responder.fail(
                SupervisorError.invalidValue(
                    parameter: parameter,
                    reason:
                        "the \(ids.count) jobs asked for do not fit in one reply (the first \(encoded) already take over 1 MiB); "
                        + "ask for fewer, or call with 'more' to receive them in parts (concurctl jobs does)"))
        }
    }

    private func records(_ range: Range<Int>) -> [JobInfo] {
        let found = pool.read { $0.jobs(heldOf: ids[range]) }
        guard let state else { return found }
        return found.filter { $0.state == state }
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
