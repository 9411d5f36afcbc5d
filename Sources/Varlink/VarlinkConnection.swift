import Glibc

/// What went wrong talking to a Varlink service, from the client's side.
public enum VarlinkClientError: Error, Sendable, Equatable {
    /// `connect(2)` failed; `errno` says why (ENOENT: no socket; ECONNREFUSED: nobody listens;
    /// EACCES: not allowed to open it).
    case connectFailed(path: String, errno: Int32)
    /// The socket path does not fit in `sockaddr_un`.
    case pathTooLong(path: String)
    /// Reading or writing the connection failed.
    case io(operation: String, errno: Int32)
    /// No reply came within the receive timeout.
    case timedOut
    /// The service closed the connection before replying.
    case closedByPeer
    /// The service sent something that is not a Varlink reply.
    case malformedReply(String)
    /// The service answered with an error.
    case remote(VarlinkError)
}

/// A blocking Varlink client connection over a Unix stream socket.
///
/// Meant for command-line tools and tests: one caller at a time, no threads, no event loop,
/// so that a one-shot `concurctl status` costs a connect, a write and a read. Not `Sendable`.
public final class VarlinkConnection {
    private let fd: Int32
    private var frames: FrameAccumulator
    private var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
    private var writeBuffer: [UInt8] = []
    private var closed = false

    /// Connects to the Unix socket at `path`.
    ///
    /// - Parameter receiveTimeout: seconds to wait for each reply (0 waits forever).
    public init(unixPath path: String, receiveTimeout: Double = 0, maxMessageSize: Int = VarlinkFraming.defaultMaxMessageSize)
        throws(VarlinkClientError)
    {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .io(operation: "socket", errno: errno) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < capacity else {
            Glibc.close(fd)
            throw .pathTooLong(path: path)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + pathBytes.count + 1)
        // A full listen backlog (EAGAIN on a Unix socket: the server is busy accepting) is
        // retried for up to a second before it counts as a failure.
        var attempts = 0
        while true {
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
            }
            if result == 0 { break }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN && attempts < 100 {
                attempts += 1
                usleep(10_000)
                continue
            }
            Glibc.close(fd)
            throw .connectFailed(path: path, errno: error)
        }
        self.fd = fd
        self.frames = FrameAccumulator(maxMessageSize: maxMessageSize)
        if receiveTimeout > 0 { setReceiveTimeout(receiveTimeout) }
    }

    /// Wraps a connected stream descriptor, which the connection then owns and closes.
    public init(fileDescriptor: Int32, maxMessageSize: Int = VarlinkFraming.defaultMaxMessageSize) {
        self.fd = fileDescriptor
        self.frames = FrameAccumulator(maxMessageSize: maxMessageSize)
    }

    deinit { if !closed { Glibc.close(fd) } }

    /// The connected socket's descriptor (owned by the connection), for checks such as the
    /// peer's credentials.
    public var fileDescriptor: Int32 { fd }

    /// Sets how long one `receive()` may wait, in seconds (0 waits forever).
    public func setReceiveTimeout(_ seconds: Double) {
        var timeout = timeval(
            tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Closes the connection.
    public func close() {
        guard !closed else { return }
        closed = true
        _ = Glibc.close(fd)
    }

    /// Calls `method` and returns the reply's parameters; an error reply throws `.remote`.
    public func call(_ method: String, _ parameters: JSONObject = [:]) throws(VarlinkClientError) -> JSONObject {
        try send(VarlinkCall(method: method, parameters: parameters))
        let reply = try receive()
        if let error = reply.varlinkError { throw .remote(error) }
        return reply.parameters
    }

    /// Calls `method` with `"more": true` and hands each reply to `onReply` until the service
    /// ends the stream or `onReply` returns false. An error reply throws `.remote`.
    public func stream(
        _ method: String, _ parameters: JSONObject = [:],
        onReply: (JSONObject) throws(VarlinkClientError) -> Bool
    ) throws(VarlinkClientError) {
        try send(VarlinkCall(method: method, parameters: parameters, more: true))
        while true {
            let reply = try receive()
            if let error = reply.varlinkError { throw .remote(error) }
            guard try onReply(reply.parameters), reply.continues else { return }
        }
    }

    /// Sends one call without waiting for its reply (pipelining, or `oneway` calls).
    public func send(_ call: VarlinkCall) throws(VarlinkClientError) {
        writeBuffer.removeAll(keepingCapacity: true)
        VarlinkFraming.frame(call.json, into: &writeBuffer)
        try writeAll(writeBuffer)
    }

    /// Writes raw bytes, for tests that need to send malformed or partial messages.
    public func writeAll(_ bytes: [UInt8]) throws(VarlinkClientError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "write", errno: errno)
            }
            offset += written
        }
    }

    /// Waits for the next reply.
    public func receive() throws(VarlinkClientError) -> VarlinkReply {
        let message = try receiveMessage()
        do {
            return try VarlinkReply(json: message)
        } catch {
            throw .malformedReply("not a Varlink reply: \(error)")
        }
    }

    /// Waits for the next message and returns it as JSON, whatever its shape.
    public func receiveMessage() throws(VarlinkClientError) -> JSON {
        while true {
            let message: ArraySlice<UInt8>?
            do {
                message = try frames.nextMessage()
            } catch {
                throw .malformedReply("\(error)")
            }
            if let message {
                do {
                    return try JSON.parse(message)
                } catch {
                    throw .malformedReply("\(error)")
                }
            }
            let count = readBuffer.withUnsafeMutableBytes { raw in read(fd, raw.baseAddress!, raw.count) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw .timedOut }
                throw .io(operation: "read", errno: errno)
            }
            if count == 0 { throw .closedByPeer }
            readBuffer.withUnsafeBytes { raw in
                frames.append(UnsafeRawBufferPointer(rebasing: raw[0..<count]))
            }
        }
    }
}
