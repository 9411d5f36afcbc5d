package import ConcurCore
import ConcurProtocol
import Glibc

/// The messages between the daemon and a child worker, in a compact binary framing:
/// a little-endian `UInt32` payload length, then the payload, whose first byte is the type.
///
/// Jobs travel in batches and results come back in batches, so a tiny job costs a few dozen
/// bytes and no round trip of its own.
package enum WorkerMessage: Sendable, Equatable {
    // Daemon to child.
    /// Jobs to run, in order, after those already held.
    case jobs([Job])
    /// Give back the jobs not started, finish the running one, report, and exit 0.
    case retire
    /// Give back the jobs not started; keep serving.
    case release
    /// Interrupt this job if it runs; 0: whatever runs, and give back the jobs not started
    /// (the child is retiring and starts no other).
    case interrupt(job: JobID)
    // Child to daemon.
    /// The child runs and serves (sent once, first).
    case hello(pid: Int32)
    /// Outcomes of finished jobs, in the order they ran.
    case results([JobReport])
    /// Jobs given back without being started.
    case returned([JobID])

    enum Tag: UInt8 {
        case jobs = 1
        case retire = 2
        case release = 3
        case interrupt = 4
        case hello = 16
        case results = 17
        case returned = 18
    }

    /// The largest frame either side accepts.
    package static let maxFrame = 64 << 20

    /// Appends the framed message to `output`.
    package func encode(into output: inout [UInt8]) {
        // The buffer moves into the writer and back: no copy.
        var writer = BinaryWriter(output: [])
        swap(&writer.output, &output)
        let lengthAt = writer.output.count
        writer.put(UInt32(0))
        switch self {
        case .jobs(let jobs):
            writer.put(Tag.jobs.rawValue)
            writer.put(UInt32(jobs.count))
            for job in jobs { writer.put(job) }
        case .retire:
            writer.put(Tag.retire.rawValue)
        case .release:
            writer.put(Tag.release.rawValue)
        case .interrupt(let job):
            writer.put(Tag.interrupt.rawValue)
            writer.put(job)
        case .hello(let pid):
            writer.put(Tag.hello.rawValue)
            writer.put(UInt32(bitPattern: pid))
        case .results(let reports):
            writer.put(Tag.results.rawValue)
            writer.put(UInt32(reports.count))
            for report in reports { writer.put(report) }
        case .returned(let ids):
            writer.put(Tag.returned.rawValue)
            writer.put(UInt32(ids.count))
            for id in ids { writer.put(id) }
        }
        let length = UInt32(writer.output.count - lengthAt - 4).littleEndian
        withUnsafeBytes(of: length) { bytes in
            for index in 0..<4 { writer.output[lengthAt + index] = bytes[index] }
        }
        swap(&writer.output, &output)
    }

    /// Decodes one payload (without its length prefix).
    package static func decode(_ payload: UnsafeRawBufferPointer) throws(WireError) -> WorkerMessage {
        var reader = BinaryReader(bytes: payload)
        guard let tag = Tag(rawValue: try reader.get(UInt8.self)) else { throw WireError("unknown message type") }
        let message: WorkerMessage
        switch tag {
        case .jobs:
            let count = Int(try reader.get(UInt32.self))
            var jobs: [Job] = []
            jobs.reserveCapacity(min(count, 65_536))
            for _ in 0..<count { jobs.append(try reader.getJob()) }
            message = .jobs(jobs)
        case .retire: message = .retire
        case .release: message = .release
        case .interrupt: message = .interrupt(job: try reader.get(UInt64.self))
        case .hello: message = .hello(pid: Int32(bitPattern: try reader.get(UInt32.self)))
        case .results:
            let count = Int(try reader.get(UInt32.self))
            var reports: [JobReport] = []
            reports.reserveCapacity(min(count, 65_536))
            for _ in 0..<count { reports.append(try reader.getReport()) }
            message = .results(reports)
        case .returned:
            let count = Int(try reader.get(UInt32.self))
            var ids: [JobID] = []
            ids.reserveCapacity(min(count, 65_536))
            for _ in 0..<count { ids.append(try reader.get(UInt64.self)) }
            message = .returned(ids)
        }
        guard reader.isAtEnd else { throw WireError("trailing bytes after a message") }
        return message
    }
}

/// A malformed message between the daemon and a child.
package struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong.
    package let description: String
    init(_ description: String) { self.description = description }
}

/// Splits a byte stream into framed messages.
package struct WireFrames {
    private var buffer: [UInt8] = []
    private var start = 0

    /// An empty stream.
    package init() {}

    /// Adds bytes received.
    package mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && (start == buffer.count || start > 1 << 20) {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete message, or nil until it has arrived.
    package mutating func next() throws(WireError) -> WorkerMessage? {
        guard buffer.count - start >= 4 else { return nil }
        var length = 0
        for index in 0..<4 { length |= Int(buffer[start + index]) << (8 * index) }
        guard length >= 1 && length <= WorkerMessage.maxFrame else { throw WireError("frame of \(length) bytes") }
        guard buffer.count - start >= 4 + length else { return nil }
        let payloadStart = start + 4
        start = payloadStart + length
        let range = payloadStart..<(payloadStart + length)
        let decoded = buffer.withUnsafeBytes { raw in
            Result { () throws(WireError) in try WorkerMessage.decode(UnsafeRawBufferPointer(rebasing: raw[range])) }
        }
        return try decoded.get()
    }
}

struct BinaryWriter {
    var output: [UInt8]

    mutating func put<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { output.append(contentsOf: $0) }
    }

    mutating func put(_ value: Double) { put(value.bitPattern) }

    mutating func put(_ text: String) {
        let bytes = Array(text.utf8)
        put(UInt32(bytes.count))
        output.append(contentsOf: bytes)
    }

    mutating func put(_ job: Job) {
        put(job.id)
        put(UInt32(job.attempts))
        put(job.submittedAt)
        put(job.spec.timeout ?? -1)
        put(JobEncoding.Kind(job.kind).rawValue)
        switch job.kind {
        case .cpu(let size):
            put(size)
        case .prime(let n):
            put(n)
        case .sleep(let milliseconds):
            put(UInt32(milliseconds))
        case .fail:
            break
        case .crash(let forced):
            put(UInt8(forced ? 1 : 0))
        case .exec(let argv):
            put(UInt16(argv.count))
            for argument in argv { put(argument) }
        }
        // Bit 0: a command context follows; bit 1: at most once.
        let context = job.spec.command
        put(UInt8((context == nil ? 0 : 1) | (job.spec.delivery == .atMostOnce ? 2 : 0)))
        if let context {
            put(context.directory ?? "")
            put(UInt16(context.environment.count))
            for entry in context.environment { put(entry) }
            put(UInt8(context.clearsEnvironment ? 1 : 0))
        }
    }

    mutating func put(_ report: JobReport) {
        put(report.id)
        put(report.startedAt ?? 0)
        put(report.finishedAt)
        switch report.outcome {
        case .done(let output):
            put(JobEncoding.State.done.rawValue)
            put(output)
        case .failed(let reason, let output):
            put(JobEncoding.State.failed.rawValue)
            put(reason)
            put(UInt8(output == nil ? 0 : 1))
            if let output { put(output) }
        case .cancelled(let reason):
            put(JobEncoding.State.cancelled.rawValue)
            put(reason)
        }
    }

    mutating func put(_ output: JobOutput) {
        put(JobEncoding.Output(output).rawValue)
        switch output {
        case .checksum(let checksum):
            put(checksum)
        case .primality(let n, let factor):
            put(n)
            put(factor)
        case .slept(let milliseconds):
            put(UInt32(milliseconds))
        case .command(let exitCode, let signal, let seconds, let text):
            put(Int32(exitCode ?? -1))
            put(Int32(signal ?? -1))
            put(seconds)
            put(text)
        }
    }
}

struct BinaryReader {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    var isAtEnd: Bool { position == bytes.count }

    mutating func get<T: FixedWidthInteger>(_: T.Type) throws(WireError) -> T {
        let size = MemoryLayout<T>.size
        guard position + size <= bytes.count else { throw WireError("truncated message") }
        var value: T = 0
        withUnsafeMutableBytes(of: &value) { target in
            target.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[position..<position + size]))
        }
        position += size
        return T(littleEndian: value)
    }

    mutating func getDouble() throws(WireError) -> Double { Double(bitPattern: try get(UInt64.self)) }

    mutating func getString() throws(WireError) -> String {
        let count = Int(try get(UInt32.self))
        guard position + count <= bytes.count else { throw WireError("truncated string") }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<position + count]), as: UTF8.self)
        position += count
        return text
    }

    mutating func getJob() throws(WireError) -> Job {
        let id = try get(UInt64.self)
        let attempts = Int(try get(UInt32.self))
        let submittedAt = try get(UInt64.self)
        let timeout = try getDouble()
        let kind: JobKind
        switch JobEncoding.Kind(rawValue: try get(UInt8.self)) {
        case .cpu?: kind = .cpu(size: try getDouble())
        case .prime?: kind = .prime(n: try get(UInt64.self))
        case .sleep?: kind = .sleep(milliseconds: Int(try get(UInt32.self)))
        case .fail?: kind = .fail
        case .crash?: kind = .crash(forced: try get(UInt8.self) != 0)
        case .exec?:
            let count = Int(try get(UInt16.self))
            var argv: [String] = []
            for _ in 0..<count { argv.append(try getString()) }
            kind = .exec(argv: argv)
        case nil: throw WireError("unknown job kind")
        }
        let flags = try get(UInt8.self)
        var context: CommandContext?
        if flags & 1 != 0 {
            let directory = try getString()
            let count = Int(try get(UInt16.self))
            var environment: [String] = []
            for _ in 0..<count { environment.append(try getString()) }
            context = CommandContext(
                directory: directory.isEmpty ? nil : directory, environment: environment,
                clearsEnvironment: try get(UInt8.self) != 0)
        }
        let spec = JobSpec(
            kind, timeout: timeout < 0 ? nil : timeout, command: context, delivery: flags & 2 != 0 ? .atMostOnce : .atLeastOnce)
        return Job(id: id, spec: spec, attempts: attempts, submittedAt: submittedAt)
    }

    mutating func getReport() throws(WireError) -> JobReport {
        let id = try get(UInt64.self)
        let startedAt = try get(UInt64.self)
        let finishedAt = try get(UInt64.self)
        let outcome: JobOutcome
        switch JobEncoding.State(rawValue: try get(UInt8.self)) {
        case .done?: outcome = .done(try getOutput())
        case .failed?:
            let reason = try getString()
            outcome = .failed(reason, output: try get(UInt8.self) == 0 ? nil : try getOutput())
        case .cancelled?: outcome = .cancelled(try getString())
        case .queued?, .handedOver?, .running?, nil: throw WireError("unknown outcome")
        }
        return JobReport(id: id, outcome: outcome, startedAt: startedAt == 0 ? nil : startedAt, finishedAt: finishedAt)
    }

    mutating func getOutput() throws(WireError) -> JobOutput {
        switch JobEncoding.Output(rawValue: try get(UInt8.self)) {
        case .checksum?: return .checksum(try get(UInt64.self))
        case .primality?: return .primality(n: try get(UInt64.self), factor: try get(UInt64.self))
        case .slept?: return .slept(milliseconds: Int(try get(UInt32.self)))
        case .command?:
            let exitCode = try get(Int32.self)
            let signal = try get(Int32.self)
            let seconds = try getDouble()
            let text = try getString()
            return .command(
                exitCode: exitCode < 0 ? nil : Int(exitCode), signal: signal < 0 ? nil : Int(signal), seconds: seconds,
                output: text)
        case .none?, nil: throw WireError("unknown output")
        }
    }
}

/// Writing whole buffers to a blocking descriptor.
enum BlockingIO {
    /// Writes all of `bytes`; false if the other end is gone.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if written < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += written
            }
            return true
        }
    }
}
