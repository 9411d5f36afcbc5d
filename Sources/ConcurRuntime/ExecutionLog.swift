import ConcurCore
import ConcurProtocol
import Glibc
import Synchronization

/// A record of every run of every job, written where the job runs (a worker thread, a worker
/// task, a child process), apart from the pool's own bookkeeping: tests and audits use it to
/// check that no job was lost or ran twice, whatever the pool believes.
///
/// Off unless the daemon is started with the hidden `--execution-log PATH`; then each run
/// appends `start ID MODEL PID` before the job and `end ID OUTCOME TIME` after it (OUTCOME:
/// done, failed or cancelled; TIME in monotonic nanoseconds), each line in one `write` to a file opened with O_APPEND, so lines
/// from several processes never interleave. Child workers get the path on their command line.
package enum ExecutionLog {
    private static let descriptor = Atomic<Int32>(-1)
    private static let openedPath = Mutex<String?>(nil)

    /// Why the log could not be opened.
    package struct OpenError: Error, Sendable, CustomStringConvertible {
        /// The text shown to people.
        package let description: String
    }

    /// Opens (creating or appending to) the log at `path`; once per process.
    package static func open(path: String) throws(OpenError) {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw OpenError(description: "cannot open the execution log \(path): \(String(cString: strerror(errno)))")
        }
        openedPath.withLock { $0 = path }
        descriptor.store(fd, ordering: .releasing)
    }

    /// Opens the log again at the same path, in a worker forked after it was opened whose
    /// descriptors were closed.
    static func reopen() {
        guard let path else { return }
        try? open(path: path)
    }

    /// The log's path, if it is on.
    package static var path: String? { openedPath.withLock { $0 } }

    /// Notes that `job` starts under `model`.
    @inline(__always)
    static func started(_ job: Job, model: ConcurrencyModel) {
        let fd = descriptor.load(ordering: .relaxed)
        guard fd >= 0 else { return }
        write(fd, "start \(job.id) \(model.rawValue) \(getpid())\n")
    }

    /// Notes how a run of `job` ended, and when (monotonic nanoseconds, comparable across the
    /// processes of one boot: a test tells from it how long before a crash a job had finished).
    @inline(__always)
    static func ended(_ job: Job, outcome: JobOutcome, at time: UInt64) {
        let fd = descriptor.load(ordering: .relaxed)
        guard fd >= 0 else { return }
        let name =
            switch outcome {
            case .done: "done"
            case .failed: "failed"
            case .cancelled: "cancelled"
            }
        write(fd, "end \(job.id) \(name) \(time)\n")
    }

    private static func write(_ fd: Int32, _ line: String) {
        var line = line
        line.withUTF8 { bytes in _ = Glibc.write(fd, bytes.baseAddress, bytes.count) }
    }
}
