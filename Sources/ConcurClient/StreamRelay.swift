import Glibc

/// Copies bytes both ways between a pair of descriptors (standard input and output) and a
/// connected socket until the socket's side ends: what `concurctl bridge` does.
///
/// One thread, `poll(2)`; a read is written out whole before the next read on that side, so
/// a side that stops reading stops the other (the kernel's buffers are the only queue). When
/// the input ends, the socket's write side is shut down and what still comes is relayed until
/// the socket ends: concurd answers every call it read before the end of its input (a stream
/// ends with it), then closes. When the socket ends, the relay ends. A write to output that
/// fails (the reader went away) ends it too.
enum StreamRelay {
    /// How a relay ended.
    enum End: Equatable {
        /// The socket's side ended the stream.
        case closed
        /// The output's reader went away.
        case outputGone
        /// Reading or writing failed; the operation and errno.
        case failed(String, Int32)
    }

    /// Relays between `input`/`output` and `socket` until the socket's side ends.
    static func run(input: Int32, output: Int32, socket: Int32) -> End {
        signal(SIGPIPE, SIG_IGN)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var inputOpen = true
        while true {
            var fds = [
                pollfd(fd: socket, events: Int16(POLLIN), revents: 0),
                pollfd(fd: inputOpen ? input : -1, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&fds, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return .failed("poll", errno)
            }
            if fds[0].revents != 0 {
                let count = read(socket, &buffer, buffer.count)
                if count < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    return errno == ECONNRESET ? .closed : .failed("read from concurd", errno)
                }
                if count == 0 { return .closed }
                if !writeAll(output, buffer, count) { return errno == EPIPE ? .outputGone : .failed("write", errno) }
            }
            if inputOpen && fds[1].revents != 0 {
                let count = read(input, &buffer, buffer.count)
                if count < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    return .failed("read", errno)
                }
                if count == 0 {
                    inputOpen = false
                    shutdown(socket, Int32(SHUT_WR))
                } else if !writeAll(socket, buffer, count) {
                    return errno == EPIPE || errno == ECONNRESET ? .closed : .failed("write to concurd", errno)
                }
            }
        }
    }

    /// Writes the first `count` bytes of `bytes` to `fd`; false (errno set) if it failed.
    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], _ count: Int) -> Bool {
        var offset = 0
        while offset < count {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }
}
