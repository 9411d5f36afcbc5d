import ConcurCore
import ConcurProtocol
import ConcurRuntime
import Glibc
import Synchronization

/// Receives Unix signals on a dedicated thread with sigwait(3) and hands each to a handler, so
/// the handler may take locks and log (nothing runs in async-signal context).
///
/// The signals are blocked in the calling thread, and every thread started afterwards inherits
/// that mask: create the watcher before any other thread exists (first thing in `main`), or a
/// thread with the signals unblocked could take one with its default action. Child processes
/// must reset their mask (POSIX_SPAWN_SETSIGMASK). Dispatch signal sources were tried first and
/// delivered signals late on Linux.
package final class SignalWatcher: Sendable {
    private let active = Atomic<Bool>(true)

    /// Blocks `signals` and starts the thread that waits for them; `handler` gets each number.
    package init(signals: [Int32], handler: @escaping @Sendable (Int32) -> Void) {
        var set = sigset_t()
        sigemptyset(&set)
        for number in signals { sigaddset(&set, number) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let waited = set
        do {
            // The thread keeps the watcher alive: signals are watched for the life of the process.
            try OSThread.start(name: "concur-signals") { [self] in
                var set = waited
                while true {
                    var number: Int32 = 0
                    guard sigwait(&set, &number) == 0 else { continue }
                    if active.load(ordering: .acquiring) { handler(number) }
                }
            }
        } catch {
            // Without the thread the signals stay blocked; say so rather than ignore them silently.
            StandardStreams.printError("concurd: cannot watch signals (\(error)); stop it with SIGKILL")
        }
    }

    /// Stops handing signals to the handler (they stay blocked and are dropped).
    package func cancel() {
        active.store(false, ordering: .releasing)
    }

    /// A signal's name without the SIG prefix, for logs ("TERM").
    package static func name(of number: Int32) -> String {
        switch number {
        case SIGTERM: "TERM"
        case SIGINT: "INT"
        case SIGQUIT: "QUIT"
        case SIGHUP: "HUP"
        case SIGTTIN: "TTIN"
        case SIGTTOU: "TTOU"
        case SIGUSR1: "USR1"
        default: "signal \(number)"
        }
    }
}
