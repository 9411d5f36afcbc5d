import CConcurShims
import ConcurCore
import Glibc

/// Starting detached operating-system threads, for workers and the supervisor loop.
package enum OSThread {
    /// Why a thread could not be started.
    package struct StartError: Error, Sendable, CustomStringConvertible {
        /// pthread_create's error number.
        package let code: Int32
        /// The text shown to people.
        package var description: String { "cannot start a thread: \(String(cString: strerror(code)))" }
    }

    private final class Body {
        let name: String
        let run: @Sendable () -> Void
        init(name: String, run: @escaping @Sendable () -> Void) {
            self.name = name
            self.run = run
        }
    }

    /// Starts a detached thread named `name` (15 bytes are kept) running `body`.
    package static func start(name: String, _ body: @escaping @Sendable () -> Void) throws(StartError) {
        let context = Unmanaged.passRetained(Body(name: name, run: body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { raw in
                let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
                concur_set_thread_name(String(body.name.utf8.prefix(15))!)
                body.run()
                return nil
            }, context)
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw StartError(code: result)
        }
        pthread_detach(thread)
    }

    /// Lowers the calling thread's CPU priority by `niceLevels` (0 leaves it; at most to nice
    /// 19). Threads it starts afterwards inherit it. Workers do this so that the control plane,
    /// the signal thread and the watchdog win the CPU when every core is busy.
    package static func lowerPriority(by niceLevels: Int) {
        guard niceLevels > 0 else { return }
        _ = concur_lower_thread_priority(Int32(min(niceLevels, 39)))
    }

    /// The calling thread's kernel thread id.
    package static var currentID: Int { Int(concur_gettid()) }
}
