import CSystemd
import Glibc

/// Tells systemd about the daemon's state through sd_notify(3): readiness, a status line,
/// stopping, reloading, watchdog pings and timeout extensions.
///
/// Without `$NOTIFY_SOCKET` (not started by systemd) every call is a cheap no-op. Safe to call
/// from any thread.
public struct SystemdNotifier: Sendable {
    /// Whether systemd asked for notifications (`$NOTIFY_SOCKET` is set).
    public let isEnabled: Bool

    /// A notifier for this process.
    public init() {
        isEnabled = getenv("NOTIFY_SOCKET") != nil
    }

    /// Sends `KEY=VALUE` lines in one datagram; returns false if it could not be sent.
    @discardableResult
    public func send(_ assignments: [String]) -> Bool {
        guard isEnabled else { return true }
        let text = assignments.map { $0.replacing("\n", with: " ") }.joined(separator: "\n")
        return sd_notify(0, text) > 0
    }

    /// Start-up (or a reload) is complete; `status` becomes the status line.
    public func ready(status: String) {
        send(["READY=1", "STATUS=\(status)"])
    }

    /// Replaces the one-line status shown by `systemctl status`.
    public func status(_ text: String) {
        send(["STATUS=\(text)"])
    }

    /// Shutdown has begun.
    public func stopping(status: String) {
        send(["STOPPING=1", "STATUS=\(status)"])
    }

    /// A reload has begun; send ``ready(status:)`` when it is done.
    public func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        send(["RELOADING=1", "MONOTONIC_USEC=\(microseconds)"])
    }

    /// Keep-alive for `WatchdogSec=`.
    public func watchdog() {
        send(["WATCHDOG=1"])
    }

    /// Asks for `microseconds` more before the start or stop timeout fires.
    public func extendTimeout(microseconds: UInt64) {
        send(["EXTEND_TIMEOUT_USEC=\(microseconds)"])
    }

    /// The watchdog interval in microseconds if `WatchdogSec=` applies to this process.
    public var watchdogInterval: UInt64? {
        var microseconds: UInt64 = 0
        return sd_watchdog_enabled(0, &microseconds) > 0 ? microseconds : nil
    }
}
