/// Varlink's framing: every message is one JSON text followed by a single NUL byte.
public enum VarlinkFraming {
    /// The largest message either side accepts by default (1 MiB).
    public static let defaultMaxMessageSize = 1 << 20

    /// Appends `message` and its NUL terminator to `output`.
    public static func frame(_ message: JSON, into output: inout [UInt8]) {
        message.serialize(into: &output)
        output.append(0)
    }

    /// `message` with its NUL terminator.
    public static func frame(_ message: JSON) -> [UInt8] {
        var output: [UInt8] = []
        frame(message, into: &output)
        return output
    }
}

/// Why a byte stream is not valid Varlink framing.
public enum FramingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// More than `limit` bytes arrived without a NUL terminator.
    case messageTooLarge(limit: Int)

    /// The text shown to people.
    public var description: String {
        switch self {
        case .messageTooLarge(let limit): "message larger than \(limit) bytes"
        }
    }
}

/// Collects bytes from a stream and splits them into NUL-terminated messages.
///
/// Used by the blocking client; the NIO server has its own decoder over `ByteBuffer` with the
/// same rules.
public struct FrameAccumulator {
    private var buffer: [UInt8] = []
    private var start = 0
    private var scanned = 0
    /// The largest message accepted.
    public let maxMessageSize: Int

    /// An empty accumulator accepting messages up to `maxMessageSize` bytes.
    public init(maxMessageSize: Int = VarlinkFraming.defaultMaxMessageSize) {
        self.maxMessageSize = maxMessageSize
    }

    /// Adds bytes received from the stream.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
            scanned = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Whether bytes of an unfinished message are waiting.
    public var hasPartialMessage: Bool { start < buffer.count }

    /// The next complete message without its terminator, or nil until one has arrived.
    public mutating func nextMessage() throws(FramingError) -> ArraySlice<UInt8>? {
        var index = max(start, scanned)
        while index < buffer.count {
            if buffer[index] == 0 {
                let message = buffer[start..<index]
                start = index + 1
                scanned = start
                if start > 1 << 16 && start * 2 > buffer.count {
                    buffer.removeSubrange(0..<start)
                    start = 0
                    scanned = 0
                }
                return message
            }
            index += 1
        }
        scanned = index
        if buffer.count - start > maxMessageSize { throw .messageTooLarge(limit: maxMessageSize) }
        return nil
    }
}
