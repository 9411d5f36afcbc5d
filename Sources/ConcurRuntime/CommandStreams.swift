import CConcurShims
import Glibc

/// The command's stdout and stderr, each a pipe read by the thread that runs the command: what
/// comes goes to the stream's ``OutputRecorder`` (when output is kept) and to one merged tail,
/// the last bytes kept for the job's result. Not shared between threads.
struct CommandStreams {
    /// The read ends, stdout then stderr; -1 once closed.
    private var readEnds: [Int32] = [-1, -1]
    /// The write ends, for the command; closed once it started.
    private(set) var writeEnds: [Int32] = [-1, -1]
    private var recorders: [OutputRecorder]
    /// The last bytes of both streams together.
    private(set) var tail: [UInt8] = []
    private var buffer = [UInt8](repeating: 0, count: 16_384)
    private let tailLimit: Int

    /// Two pipes (close-on-exec); `folder`, if given, receives the streams' files, made when
    /// the first byte comes (a command that writes nothing costs no directory); for a `rerun`,
    /// emptied first (a retry's output replaces the last run's). Nil if a pipe cannot be made (errno set).
    init?(folder: String?, rerun: Bool, maxBytes: Int, tailLimit: Int) {
        self.tailLimit = tailLimit
        recorders = []
        if let folder {
            for stream in ["stdout", "stderr"] {
                // Only a job run before (a retry, a run after a crash) can have files to clear.
                if rerun { for segment in CommandOutput.segments(of: stream, in: folder) { unlink(segment.path) } }
                recorders.append(OutputRecorder(folder: folder, stream: stream, maxBytes: maxBytes))
            }
        }
        for index in 0..<2 {
            var ends: [Int32] = [-1, -1]
            guard concur_pipe_cloexec(&ends) == 0 else {
                close()
                return nil
            }
            readEnds[index] = ends[0]
            writeEnds[index] = ends[1]
        }
    }

    /// Closes the write ends (after the spawn: the command holds its own copies).
    mutating func closeWriteEnds() {
        for fd in writeEnds where fd >= 0 { Glibc.close(fd) }
        writeEnds = [-1, -1]
    }

    /// Whether a stream is still open.
    var isOpen: Bool { readEnds.contains { $0 >= 0 } }

    /// Waits up to `milliseconds` for output or for `exitFD` (the command's pidfd, -1: none, then
    /// a 10 ms nap once the streams are closed) and takes what came.
    mutating func wait(exitFD: Int32, milliseconds: Int32) {
        if !isOpen && exitFD < 0 {
            usleep(10_000)
            return
        }
        var pollers = readEnds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        if exitFD >= 0 { pollers.append(pollfd(fd: exitFD, events: Int16(POLLIN), revents: 0)) }
        guard poll(&pollers, nfds_t(pollers.count), milliseconds) > 0 else { return }
        for index in 0..<2 where readEnds[index] >= 0 && pollers[index].revents != 0 { readSome(index) }
    }

    /// Takes what the pipes hold now, without waiting (a process of the command's group may
    /// still hold them open).
    mutating func drain() {
        for index in 0..<2 {
            while readEnds[index] >= 0 {
                var poller = pollfd(fd: readEnds[index], events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 0) > 0 else { break }
                readSome(index)
            }
        }
    }

    /// One read of stream `index`; closes it at end of file or on an error.
    private mutating func readSome(_ index: Int) {
        let fd = readEnds[index]
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else {
            if count == 0 || errno != EINTR {
                Glibc.close(fd)
                readEnds[index] = -1
            }
            return
        }
        if !recorders.isEmpty {
            buffer.withUnsafeBytes { recorders[index].write(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
        tail.append(contentsOf: buffer[0..<count])
        if tail.count > 2 * tailLimit { tail.removeFirst(tail.count - tailLimit) }
    }

    /// Closes everything; the last segment files are complete.
    mutating func close() {
        closeWriteEnds()
        for fd in readEnds where fd >= 0 { Glibc.close(fd) }
        readEnds = [-1, -1]
        for index in recorders.indices { recorders[index].finish() }
    }

    /// Why output could not be kept, if it could not.
    var failure: String? { recorders.lazy.compactMap(\.failure).first }
}
