import Glibc
import Synchronization

/// The binary the daemon runs for its own children (process workers, the forkserver, the
/// command guard): `/proc/self/exe`, this very binary even if replaced on disk since, unless a
/// lighter build of the same daemon was pinned (``pin(_:)``).
///
/// `concurd-postgres` pins the `concurd` beside it: its children need no PostgreSQL client,
/// and each would otherwise map a binary three times the size. The pin is an open descriptor,
/// run as `/proc/PID/fd/N` of the daemon, so an upgrade that replaces the file on disk still starts the
/// binary this daemon started with, never a newer one with another wire format.
package enum HelperBinary {
    private static let pinned = Mutex<String?>(nil)

    /// The path to spawn the daemon's own children from.
    package static var path: String { pinned.withLock { $0 } ?? "/proc/self/exe" }

    /// Pins `file` (an absolute path to a build of this same daemon) as the binary of the
    /// daemon's children; false, changing nothing, when it cannot be opened or run.
    @discardableResult
    package static func pin(_ file: String) -> Bool {
        guard access(file, X_OK) == 0 else { return false }
        let descriptor = open(file, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        // The daemon's own descriptor table, not the child's (/proc/self): a child closes every
        // descriptor it does not keep before it execs.
        pinned.withLock { $0 = "/proc/\(getpid())/fd/\(descriptor)" }
        return true
    }
}
