package import ConcurCore
import Glibc
import Synchronization

/// Where the output of exec jobs' commands is kept: a folder per job under one directory, and
/// in it each stream (`stdout`, `stderr`) as segment files named by the offset of their first
/// byte in the stream (`stdout.0`, `stdout.262144`, ...).
///
/// A stream keeps at most `maxBytes`: its head (the first two segments, never removed) and its
/// tail (the last two; older tail segments are deleted as new ones begin), each segment a
/// quarter of `maxBytes`. What was deleted is the gap between the head and the first tail
/// segment that is left: a reader tells it as "N bytes cut". Files are written as the command
/// writes (a reader follows them live), bytes as they came (no text conversion). Set once at
/// start (before any worker starts; child workers get it on their command line); without a
/// directory nothing is kept but the tail in the job's result.
package enum CommandOutput {
    private struct Settings {
        var directory: String?
        var maxBytes = defaultMaxBytes
    }

    private static let settings = Mutex(Settings())

    /// The default of `max_output`, per stream.
    package static let defaultMaxBytes = 1 << 20

    /// The directory and the bound per stream. The directory is created (0700) when the first
    /// command runs, if it is missing then (the daemon's state directory may not exist yet);
    /// a path that is there and not a directory is refused now.
    package static func configure(directory: String?, maxBytes: Int) throws(OutputError) {
        if let directory {
            var info = stat()
            if stat(directory, &info) == 0 && info.st_mode & S_IFMT != S_IFDIR {
                throw OutputError("the output directory \(directory) is not a directory; move it away")
            }
        }
        settings.withLock {
            $0.directory = directory
            $0.maxBytes = maxBytes
        }
    }

    /// The output directory, if output is kept.
    package static var directory: String? { settings.withLock { $0.directory } }

    /// The bound per stream, in bytes.
    package static var maxBytes: Int { settings.withLock { $0.maxBytes } }

    /// The options that hand the settings to a child worker (or the forkserver).
    package static var childArguments: [String] {
        settings.withLock { settings in
            settings.directory.map { ["--output-directory", $0, "--max-output", String(settings.maxBytes)] } ?? []
        }
    }

    /// The folder of job `id`'s output.
    package static func folder(of id: JobID, in directory: String) -> String { "\(directory)/\(id)" }

    /// The segment files of `stream` in `folder`, by offset, oldest first.
    static func segments(of stream: String, in folder: String) -> [(offset: Int, path: String)] {
        guard let handle = opendir(folder) else { return [] }
        defer { closedir(handle) }
        var found: [(Int, String)] = []
        let prefix = stream + "."
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasPrefix(prefix), let offset = Int(name.dropFirst(prefix.count)) else { continue }
            found.append((offset, "\(folder)/\(name)"))
        }
        return found.sorted { $0.0 < $1.0 }
    }

    /// Removes job `id`'s output (its record was pruned).
    package static func remove(_ id: JobID, in directory: String) {
        let folder = folder(of: id, in: directory)
        for stream in ["stdout", "stderr"] {
            for segment in segments(of: stream, in: folder) { unlink(segment.path) }
        }
        rmdir(folder)
    }
}

/// Writes one stream of one command into its segment files (see ``CommandOutput``). Used by
/// the thread that runs the command; not shared.
struct OutputRecorder {
    private let folder: String
    private let stream: String
    private let segmentSize: Int
    private var fd: Int32 = -1
    /// Bytes of the stream so far.
    private(set) var position = 0
    private var segmentEnd = 0
    private var tailSegments: [Int] = []
    /// Why the stream could not be written, once it could not (the rest is dropped).
    private(set) var failure: String?

    init(folder: String, stream: String, maxBytes: Int) {
        self.folder = folder
        self.stream = stream
        segmentSize = max(1, maxBytes / 4)
    }

    /// Appends `bytes`, starting new segments and deleting old tail ones as it goes.
    mutating func write(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes
        while !rest.isEmpty && failure == nil {
            if fd < 0 || position == segmentEnd { openSegment() }
            guard fd >= 0 else { return }
            let room = segmentEnd - position
            let chunk = UnsafeRawBufferPointer(rebasing: rest.prefix(room))
            let written = Glibc.write(fd, chunk.baseAddress, chunk.count)
            if written < 0 {
                if errno == EINTR { continue }
                failure = "writing \(stream): \(String(cString: strerror(errno)))"
                return
            }
            position += written
            rest = UnsafeRawBufferPointer(rebasing: rest[(rest.startIndex + written)...])
        }
    }

    private mutating func openSegment() {
        if fd >= 0 { close(fd) }
        let offset = position
        let path = "\(folder)/\(stream).\(offset)"
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd < 0 && errno == ENOENT {
            // The first byte of the job's output: its folder (and the output directory, the
            // first time) are made now.
            if let slash = folder.lastIndex(of: "/") { _ = mkdir(String(folder[..<slash]), 0o700) }
            _ = mkdir(folder, 0o700)
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        }
        guard fd >= 0 else {
            failure = "opening \(stream): \(String(cString: strerror(errno)))"
            return
        }
        segmentEnd = offset + segmentSize
        // The head: the first two segments stay; of the tail, the last two.
        guard offset >= 2 * segmentSize else { return }
        tailSegments.append(offset)
        if tailSegments.count > 2 { unlink("\(folder)/\(stream).\(tailSegments.removeFirst())") }
    }

    /// Closes the current segment.
    mutating func finish() {
        if fd >= 0 { close(fd) }
        fd = -1
    }
}

/// Reads a stream of a job's output from a position, across its segments: for `logs`, live or
/// after the end.
package enum OutputReader {
    /// What a read found.
    package struct Chunk: Sendable, Equatable {
        /// The bytes, as the command wrote them.
        package var bytes: [UInt8]
        /// Bytes that were cut (deleted to keep the bound) just before these.
        package var cut: Int
        /// The position after them.
        package var next: Int
    }

    /// Up to `limit` bytes of `stream` of job `id` from `position`; nil when there is nothing
    /// there yet (or no output at all).
    package static func read(_ stream: String, of id: JobID, in directory: String, from position: Int, limit: Int) -> Chunk? {
        let segments = CommandOutput.segments(of: stream, in: CommandOutput.folder(of: id, in: directory))
        var cut = 0
        var position = position
        for (index, segment) in segments.enumerated() {
            let end = index + 1 < segments.count ? segments[index + 1].offset : Int.max
            guard position < end else { continue }
            if position < segment.offset {
                cut = segment.offset - position
                position = segment.offset
            }
            let fd = open(segment.path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var bytes = [UInt8](repeating: 0, count: limit)
            let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, limit, off_t(position - segment.offset)) }
            guard count > 0 else {
                // Nothing more in this one: the next segment (if it exists) goes on.
                if cut > 0 { return Chunk(bytes: [], cut: cut, next: position) }
                continue
            }
            bytes.removeLast(limit - count)
            return Chunk(bytes: bytes, cut: cut, next: position + count)
        }
        return nil
    }
}

/// The output directory could not be set up.
package struct OutputError: Error, CustomStringConvertible {
    /// What failed.
    package let description: String

    init(_ description: String) { self.description = description }
}
