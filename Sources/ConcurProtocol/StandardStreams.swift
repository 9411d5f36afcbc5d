import Glibc
import Synchronization

/// Writing whole lines to stdout and stderr without stdio buffering, so that output reaches a
/// pipe (systemd, tmux, a test) at once and lines from several threads never interleave.
public enum StandardStreams {
    private static let silenced = Atomic<Bool>(false)

    /// Whether standard output is silenced (`concurctl --quiet`): what would go there is
    /// dropped; standard error is kept. Set once, before anything is printed.
    public static var quiet: Bool {
        get { silenced.load(ordering: .relaxed) }
        set { silenced.store(newValue, ordering: .relaxed) }
    }

    /// Writes `text` and a newline to standard output.
    public static func printLine(_ text: String) {
        write(text + "\n", to: 1)
    }

    /// Writes `bytes` as they are to `fd` (1: standard output, 2: standard error).
    public static func writeBytes(_ bytes: [UInt8], to fd: Int32) {
        if fd == 1 && quiet { return }
        bytes.withUnsafeBytes { writeAll($0, to: fd) }
    }

    /// Writes `text` as it is (no newline added) to standard output.
    public static func printText(_ text: String) {
        write(text, to: 1)
    }

    /// The local time of day, `HH:MM:SS`, now or at Unix time `seconds`.
    public static func localTime(of seconds: Int? = nil) -> String {
        var now = seconds.map { time_t($0) } ?? time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
    }

    /// Writes `text` and a newline to standard error.
    public static func printError(_ text: String) {
        write(text + "\n", to: 2)
    }

    /// Whether standard output is a terminal.
    public static var outputIsTerminal: Bool { isatty(1) == 1 }

    private static func write(_ text: String, to fd: Int32) {
        if fd == 1 && quiet { return }
        var text = text
        text.withUTF8 { writeAll(UnsafeRawBufferPointer($0), to: fd) }
    }

    /// Writes all of `buffer`, through interrupted writes; gives up on an error (a closed pipe).
    private static func writeAll(_ buffer: UnsafeRawBufferPointer, to fd: Int32) {
        var offset = 0
        while offset < buffer.count {
            let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}
