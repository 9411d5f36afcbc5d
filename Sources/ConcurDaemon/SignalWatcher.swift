import Dispatch
import Glibc

/// Delivers Unix signals to a handler on a private dispatch queue, instead of in async-signal
/// context, so the handler may take locks and log.
///
/// Each watched signal's default action is disabled first (SIG_IGN), so a signal that arrives
/// while the handler runs is queued, not fatal.
///
/// `@unchecked Sendable`: `sources` never changes after init, and libdispatch allows `cancel`
/// on a source from any thread.
public final class SignalWatcher: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]

    /// Starts watching `signals`; `handler` gets the signal number.
    public init(signals: [Int32], handler: @escaping @Sendable (Int32) -> Void) {
        let queue = DispatchQueue(label: "concur.signals")
        sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { @Sendable in handler(number) }
            source.resume()
            return source
        }
    }

    /// Stops watching.
    public func cancel() {
        for source in sources { source.cancel() }
    }

    /// A signal's name without the SIG prefix, for logs ("TERM").
    public static func name(of number: Int32) -> String {
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
