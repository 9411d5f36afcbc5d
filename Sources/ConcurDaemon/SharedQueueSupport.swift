import Glibc
package import Logging
import PathTrust
package import StoreAccess
import Synchronization

/// Whether this executable can join a shared queue, and the hand-over when it cannot.
///
/// PostgreSQL's client brings Foundation and ICU into the binary (8 MiB more resident at idle,
/// three times the size), so `concurd` links none of it and a single-host daemon pays nothing;
/// `concurd-postgres` is the same daemon with the PostgreSQL node installed here before its
/// command runs. `concurd --store ...` replaces itself with `concurd-postgres` from its own
/// directory (``handOver(arguments:)``) before any part of the daemon starts: same process id,
/// same environment and descriptors, so systemd's notifications and sockets follow.
package enum SharedQueueSupport {
    /// Joins the shared queue as the node the settings name, logging to the logger: connects,
    /// prepares the schema, registers the node and starts its lease; throws what stops the
    /// start, in words for the person starting it.
    package typealias Join = @Sendable (StoreNodeSettings, Logger) throws -> any SharedQueueNode

    /// The executable `concurd` hands a `--store` start to, found next to it.
    package static let executableName = "concurd-postgres"

    private static let installed = Mutex<Join?>(nil)

    /// Makes `join` the way this process joins a shared queue (`concurd-postgres`'s `main`,
    /// once, before the command runs).
    package static func install(_ join: @escaping Join) {
        installed.withLock { $0 = join }
    }

    /// How this process joins a shared queue, if it can.
    package static var join: Join? { installed.withLock { $0 } }

    /// Replaces this process with ``executableName`` from this executable's directory, with
    /// `arguments` after its name. Returns only if it could not, with what to do.
    package static func handOver(arguments: [String]) -> String {
        guard let path = beside(executableName) else {
            return
                "--store needs \(executableName), and this executable's own path cannot be read (\(String(cString: strerror(errno))))"
        }
        guard access(path, X_OK) == 0 else {
            return
                "--store needs \(path), the concurd that links PostgreSQL's client, and it is not there (\(String(cString: strerror(errno)))): install it beside concurd (scripts/install does), or run without --store"
        }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        let why = String(cString: strerror(errno))
        for pointer in argv { free(pointer) }
        return "--store needs \(path), which could not be started (\(why))"
    }

    /// The path of `name` in this executable's directory; nil if this executable's own path
    /// cannot be read.
    package static func beside(_ name: String) -> String? {
        guard let me = PathTrust.linkTarget("/proc/self/exe") else { return nil }
        let directory = me.lastIndex(of: "/").map { String(me[..<$0]) } ?? "."
        return "\(directory)/\(name)"
    }
}
