import ConcurCore
import ConcurProtocol
import ConcurRuntime
import Logging
import Synchronization
import Varlink

/// Sends a `Submit`'s or `Generate`'s first reply once both the pool has accepted the jobs
/// and the journal holds them, whichever happens last (the journal may commit before the
/// submit call has even returned its ids).
final class SubmitReply: Sendable {
    private struct Progress {
        var accepted: (ids: Range<JobID>, watch: Int?)?
        var durable: JournalFailure??
    }

    private let progress = Mutex(Progress())
    private let send: @Sendable (Range<JobID>, Int?, JournalFailure?) -> Void

    /// A reply sent by `send` with the ids, the watch and what the journal said.
    init(send: @escaping @Sendable (Range<JobID>, Int?, JournalFailure?) -> Void) {
        self.send = send
    }

    /// The pool accepted the jobs.
    func accepted(_ ids: Range<JobID>, watch: Int?) {
        let ready = progress.withLock { progress -> JournalFailure?? in
            progress.accepted = (ids, watch)
            return progress.durable
        }
        if let failure = ready { send(ids, watch, failure) }
    }

    /// The journal holds the jobs (nil) or failed to.
    func durable(_ failure: JournalFailure?) {
        let ready = progress.withLock { progress -> (ids: Range<JobID>, watch: Int?)? in
            progress.durable = .some(failure)
            return progress.accepted
        }
        if let ready { send(ready.ids, ready.watch, failure) }
    }
}
