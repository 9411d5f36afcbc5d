import CConcurShims
package import ConcurCore
import Glibc

/// A child worker's progress, in a page of memory shared with the daemon: the job it is
/// running and since when. The child writes it before and after each job (two stores, no
/// message); the daemon reads it at any time, so it knows exactly which job was running when
/// a child died, and for how long the running job has run, even with results sent in batches.
///
/// `@unchecked Sendable`: the page is written by one side and read by the other with
/// release/acquire atomics; the mapping lives as long as the object.
package final class WorkerProgress: @unchecked Sendable {
    private let page: UnsafeMutablePointer<UInt64>
    /// The page's descriptor (the daemon passes it to the child as fd 4).
    package let fileDescriptor: Int32

    /// The descriptor of the page in a child worker.
    package static let childDescriptor: Int32 = 4

    /// A new page, for a child about to be spawned.
    package init?() {
        let fd = concur_progress_page()
        guard fd >= 0, let page = concur_map_progress(fd) else {
            if fd >= 0 { close(fd) }
            return nil
        }
        self.fileDescriptor = fd
        self.page = page
    }

    /// The page a child inherited as fd 4.
    package init?(inheritedDescriptor fd: Int32) {
        guard let page = concur_map_progress(fd) else { return nil }
        self.fileDescriptor = fd
        self.page = page
    }

    deinit {
        concur_unmap_progress(page)
        close(fileDescriptor)
    }

    /// The job running and since when (monotonic nanoseconds), or nil between jobs.
    package var running: (job: JobID, since: UInt64)? {
        let job = concur_load_acquire(page)
        guard job != 0 else { return nil }
        return (job, concur_load_acquire(page + 1))
    }

    /// What the page says now: the running job (and since when) and the last one finished.
    package var report: ProgressReport {
        let running = concur_load_acquire(page)
        let since = concur_load_acquire(page + 1)
        let finished = concur_load_acquire(page + 2)
        return ProgressReport(
            running: running == 0 ? nil : running, since: running == 0 ? nil : since, lastFinished: finished == 0 ? nil : finished
        )
    }

    /// Records that `job` starts now.
    @inline(__always)
    func start(_ job: JobID, at time: UInt64) {
        concur_store_release(page + 1, time)
        concur_store_release(page, job)
    }

    /// In the child: makes the running command's process group visible to the daemon (the page's
    /// fourth slot, written by the command runner).
    func publishCommandGroup() {
        concur_publish_command_group(page + 3)
    }

    /// The process group of the command the child runs, if one runs (0: none).
    var commandGroup: Int32 { Int32(truncatingIfNeeded: concur_load_acquire(page + 3)) }

    /// Records that `job` finished and no job runs.
    @inline(__always)
    func finish(_ job: JobID) {
        concur_store_release(page + 2, job)
        concur_store_release(page, 0)
    }
}
