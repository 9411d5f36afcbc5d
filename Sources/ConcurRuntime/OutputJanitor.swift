package import ConcurCore
package import ConcurProtocol
import Glibc

/// Keeps the output directory to what it promises: a job's output goes with its record, and all
/// of it together stays under a bound, the oldest finished jobs' going first. Runs on the
/// supervisor's thread every few seconds; a sweep costs a look at each job's folder.
package enum OutputJanitor {
    /// What a sweep did.
    package struct Sweep: Sendable, Equatable {
        /// Folders removed because their job is no longer kept.
        package var pruned = 0
        /// Folders of finished jobs removed to stay under the bound.
        package var evicted = 0
        /// Bytes kept after the sweep.
        package var bytes = 0
    }

    /// Removes the output of jobs `state` does not know (nil: pruned) and, while the total
    /// passes `maxTotal`, that of the oldest jobs `state` says are finished.
    package static func sweep(
        _ directory: String, maxTotal: Int, state: (JobID) -> JobState?
    ) -> Sweep {
        var sweep = Sweep()
        var kept: [(id: JobID, bytes: Int, finished: Bool)] = []
        for id in jobFolders(in: directory) {
            guard let current = state(id) else {
                CommandOutput.remove(id, in: directory)
                sweep.pruned += 1
                continue
            }
            kept.append((id, bytes(of: id, in: directory), current.isFinal))
        }
        sweep.bytes = kept.reduce(0) { $0 + $1.bytes }
        for job in kept where sweep.bytes > maxTotal && job.finished {
            CommandOutput.remove(job.id, in: directory)
            sweep.bytes -= job.bytes
            sweep.evicted += 1
        }
        return sweep
    }

    /// Removes every job's output and the directory (an ephemeral daemon's, at its stop).
    package static func removeAll(in directory: String) {
        for id in jobFolders(in: directory) { CommandOutput.remove(id, in: directory) }
        rmdir(directory)
    }

    /// The ids of the job folders, oldest first.
    static func jobFolders(in directory: String) -> [JobID] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var ids: [JobID] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let id = JobID(name) { ids.append(id) }
        }
        return ids.sorted()
    }

    /// Bytes of job `id`'s output files.
    static func bytes(of id: JobID, in directory: String) -> Int {
        let folder = CommandOutput.folder(of: id, in: directory)
        var total = 0
        for stream in ["stdout", "stderr"] {
            for segment in CommandOutput.segments(of: stream, in: folder) {
                var info = stat()
                if stat(segment.path, &info) == 0 { total += Int(info.st_size) }
            }
        }
        return total
    }
}
