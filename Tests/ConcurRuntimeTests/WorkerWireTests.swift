import ConcurProtocol
import Testing

@testable import ConcurCore
@testable import ConcurRuntime

@Suite("The wire between the daemon and a child worker")
struct WorkerWireTests {
    static let job = Job(id: 7, spec: JobSpec(.exec(argv: ["echo", "hé"]), timeout: 1.5), attempts: 2, submittedAt: 99)

    static let messages: [WorkerMessage] = [
        .jobs([job, Job(id: 8, spec: JobSpec(.cpu(size: 0.25)), attempts: 0, submittedAt: 1)]), .retire, .release,
        .jobs([
            Job(
                id: 10,
                spec: JobSpec(
                    .exec(argv: ["env"]),
                    command: CommandContext(directory: "/srv/é", environment: ["A=1", "B="], clearsEnvironment: true),
                    delivery: .atMostOnce), attempts: 1, submittedAt: 5),
            Job(
                id: 11, spec: JobSpec(.exec(argv: ["pwd"]), command: CommandContext(environment: ["X=y"])), attempts: 0,
                submittedAt: 6),
            Job(id: 12, spec: JobSpec(.prime(n: 7), delivery: .atMostOnce), attempts: 0, submittedAt: 7),
        ]),
        .interrupt(job: 0), .interrupt(job: 42), .hello(pid: 1234),
        .results([
            JobReport(id: 7, outcome: .done(.checksum(5)), startedAt: 1, finishedAt: 2),
            JobReport(id: 8, outcome: .failed("no", output: .slept(milliseconds: 3)), startedAt: nil, finishedAt: 4),
            JobReport(id: 9, outcome: .cancelled(JobOutcome.interruptedReason), startedAt: 5, finishedAt: 6),
        ]),
        .returned([1, 2, 3]),
    ]

    /// The bytes of `messages`, framed.
    func encoded(_ messages: [WorkerMessage]) -> [UInt8] {
        var bytes: [UInt8] = []
        for message in messages { message.encode(into: &bytes) }
        return bytes
    }

    @Test("every message comes out as it went in, even fed one byte at a time")
    func roundTrip() throws {
        let bytes = encoded(Self.messages)
        var frames = WireFrames()
        var decoded: [WorkerMessage] = []
        for byte in bytes {
            [byte].withUnsafeBytes { frames.append($0) }
            while let message = try frames.next() { decoded.append(message) }
        }
        #expect(decoded == Self.messages)
    }

    @Test("refuses an unknown type, trailing bytes, a truncated body and an absurd length")
    func malformed() {
        func decode(_ payload: [UInt8]) throws(WireError) -> WorkerMessage? {
            var frames = WireFrames()
            let length = UInt32(payload.count)
            let bytes = withUnsafeBytes(of: length.littleEndian) { Array($0) } + payload
            bytes.withUnsafeBytes { frames.append($0) }
            return try frames.next()
        }
        #expect(throws: WireError.self) { try decode([99]) }
        #expect(throws: WireError.self) { try decode([2, 0]) }  // retire, then a stray byte
        #expect(throws: WireError.self) { try decode([4, 1, 2]) }  // interrupt with half a job id
        var frames = WireFrames()
        [UInt8]([0xFF, 0xFF, 0xFF, 0x7F, 1]).withUnsafeBytes { frames.append($0) }
        #expect(throws: WireError.self) { try frames.next() }
    }
}
