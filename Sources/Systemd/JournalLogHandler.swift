import CSystemd
import Glibc
public import Logging
import Synchronization

/// The level every ``DaemonLogHandler`` logs at, shared so that a reload can change it live.
public final class LogLevelControl: Sendable {
    private let raw: Atomic<UInt8>

    /// A control starting at `level`.
    public init(_ level: Logger.Level) {
        raw = Atomic(Self.code(level))
    }

    /// The level now.
    public var level: Logger.Level {
        get { Logger.Level.allCases[Int(raw.load(ordering: .relaxed))] }
        set { raw.store(Self.code(newValue), ordering: .relaxed) }
    }

    private static func code(_ level: Logger.Level) -> UInt8 {
        UInt8(Logger.Level.allCases.firstIndex(of: level) ?? 2)
    }
}

/// How a daemon's entries are named in the journal: its syslog identifier, and the prefix of
/// the fields its metadata becomes (the application's, such as `concurd` and `CONCUR_`).
public struct JournalIdentity: Sendable, Equatable {
    /// SYSLOG_IDENTIFIER of every entry (what `journalctl -t` selects).
    public var syslogIdentifier: String
    /// The prefix of metadata fields and of the logger's label field (`<PREFIX>LOGGER`).
    public var fieldPrefix: String

    /// An identity with the given identifier and field prefix (upper case, ending in `_`).
    public init(syslogIdentifier: String, fieldPrefix: String) {
        self.syslogIdentifier = syslogIdentifier
        self.fieldPrefix = fieldPrefix
    }

    /// The journal field for a metadata key: the prefix and the key in upper case, with
    /// anything but letters, digits and `_` turned into `_` (`pid` becomes `CONCUR_PID`).
    public func fieldName(_ key: String) -> String {
        fieldPrefix + String(key.uppercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
    }
}

/// A daemon's swift-log handler: structured entries in the journal when stderr is connected to
/// it (systemd sets `$JOURNAL_STREAM` to stderr's device and inode), plain lines on stderr
/// otherwise. The level comes from a shared ``LogLevelControl``.
///
/// A journal entry carries MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, CODE_FILE, CODE_LINE, CODE_FUNC,
/// and each metadata key as a field of its own named by the ``JournalIdentity``: for concurd
/// `job` becomes `CONCUR_JOB`, `model` `CONCUR_MODEL`, and so on.
public struct DaemonLogHandler: LogHandler {
    /// Metadata attached to every entry of this logger.
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let control: LogLevelControl
    private let identity: JournalIdentity
    private let toJournal: Bool

    /// A handler for `label`; `journal` nil decides from `$JOURNAL_STREAM`.
    public init(label: String, control: LogLevelControl, identity: JournalIdentity, journal: Bool? = nil) {
        self.label = label
        self.control = control
        self.identity = identity
        self.toJournal = journal ?? Self.stderrIsJournal()
    }

    /// The shared level (setting it changes every logger's).
    public var logLevel: Logger.Level {
        get { control.level }
        set { control.level = newValue }
    }

    /// One piece of metadata.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Whether stderr is the journal's stream: `$JOURNAL_STREAM` is `DEVICE:INODE` of it.
    public static func stderrIsJournal() -> Bool {
        guard let value = getenv("JOURNAL_STREAM").map({ String(cString: $0) }) else { return false }
        var status = stat()
        guard fstat(2, &status) == 0 else { return false }
        return value == "\(status.st_dev):\(status.st_ino)"
    }

    /// Writes one entry.
    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        if toJournal {
            var fields = [
                "MESSAGE=\(event.message)", "PRIORITY=\(Self.priority(event.level))",
                "SYSLOG_IDENTIFIER=\(identity.syslogIdentifier)",
                "CODE_FILE=\(event.file)", "CODE_LINE=\(event.line)", "CODE_FUNC=\(event.function)",
                "\(identity.fieldPrefix)LOGGER=\(label)",
            ]
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                fields.append("\(identity.fieldName(key))=\(value)")
            }
            Self.send(fields)
        } else {
            let context =
                merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }.joined(separator: " ")
            let line = "\(Self.timestamp()) \(event.level) \(label):\(context) \(event.message)\n"
            var bytes = Array(line.utf8)
            _ = write(2, &bytes, bytes.count)
        }
    }

    /// syslog priorities: 7 debug ... 2 critical.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    private static func send(_ fields: [String]) {
        // One buffer with every field, and the vectors pointing into it while it is borrowed.
        var bytes: [UInt8] = []
        var ranges: [Range<Int>] = []
        for field in fields {
            let start = bytes.count
            bytes.append(contentsOf: field.utf8)
            ranges.append(start..<bytes.count)
        }
        bytes.withUnsafeMutableBytes { raw in
            let vectors = ranges.map { range in
                iovec(iov_base: raw.baseAddress.map { $0 + range.lowerBound }, iov_len: range.count)
            }
            _ = sd_journal_sendv(vectors, Int32(vectors.count))
        }
    }

    private static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        _ = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S+0000", &parts)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
