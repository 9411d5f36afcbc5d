import Foundation
import Testing
import Varlink

/// In-process fuzzing of the framing and the message decoding: seeded random inputs built from
/// valid calls (truncated, bit-flipped, spliced, deeply nested, retyped) and plain noise, for a
/// bounded time (`CONCUR_FUZZ_SECONDS`, default 2; run longer by hand). Nothing may crash; every
/// frame either decodes or is refused with a typed error; valid calls survive a round trip.
@Suite("Fuzzing the framing and decoding")
struct DecodingFuzzTests {
    /// A small deterministic generator (SplitMix64), so a failure is reproducible from its seed.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let seeds: [[UInt8]] = [
        #"{"method":"io.concur.Supervisor.Submit","parameters":{"jobs":[{"kind":"prime","n":97},{"kind":"sleep","ms":5}]}}"#,
        #"{"method":"io.concur.Supervisor.Status"}"#,
        #"{"method":"org.varlink.service.GetInfo","more":true,"oneway":false}"#,
        #"{"method":"io.concur.Supervisor.ListJobs","parameters":{"ids":[1,2,3],"state":"done","limit":10}}"#,
        #"{"method":"x","parameters":{"a":[1.5e300,-0,"\u00e9\ud83d\ude00",null,true,{"b":{}}]}}"#,
    ].map { Array($0.utf8) }

    func mutate(_ input: [UInt8], using random: inout SplitMix) -> [UInt8] {
        var bytes = input
        switch random.next() % 7 {
        case 0: bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count + 1))))
        case 1:
            for _ in 0...(random.next() % 4) where !bytes.isEmpty {
                let index = Int(random.next() % UInt64(bytes.count))
                bytes[index] ^= UInt8(1 << (random.next() % 8))
            }
        case 2:
            let other = Self.seeds[Int(random.next() % UInt64(Self.seeds.count))]
            let cut = Int(random.next() % UInt64(bytes.count + 1))
            bytes = Array(bytes.prefix(cut)) + other.suffix(Int(random.next() % UInt64(other.count + 1)))
        case 3:
            let depth = Int(random.next() % 200)
            bytes =
                Array(#"{"method":"a.B","parameters":{"x":"#.utf8) + Array(repeating: UInt8(ascii: "["), count: depth)
                + Array(repeating: UInt8(ascii: "]"), count: depth) + Array("}}".utf8)
        case 4:
            let tokens = ["1", "\"s\"", "true", "null", "[]", "{}", "-1e999", "\"\\u0000\""].map { Array($0.utf8) }
            if let colon = bytes.lastIndex(of: UInt8(ascii: ":")) {
                bytes = Array(bytes[...colon]) + tokens[Int(random.next() % UInt64(tokens.count))] + Array("}}".utf8)
            }
        case 5: bytes = (0..<(random.next() % 64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        default: bytes.insert(0, at: Int(random.next() % UInt64(bytes.count + 1)))
        }
        return bytes
    }

    @Test("random and mutated frames never crash the decoder; each decodes or is refused with a typed error")
    func fuzz() throws {
        let seconds = Double(ProcessInfo.processInfo.environment["CONCUR_FUZZ_SECONDS"] ?? "") ?? 2
        let seed = UInt64(ProcessInfo.processInfo.environment["CONCUR_FUZZ_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64.max)
        var random = SplitMix(state: seed)
        let deadline = Date().addingTimeInterval(seconds)
        var inputs = 0
        var decoded = 0
        var accumulator = FrameAccumulator(maxMessageSize: 4096)
        while Date() < deadline {
            for _ in 0..<200 {
                let input = mutate(Self.seeds[Int(random.next() % UInt64(Self.seeds.count))], using: &random)
                inputs += 1
                // Whole-message decoding.
                if let json = try? JSON.parse(input), (try? VarlinkCall(json: json)) != nil { decoded += 1 }
                // The same bytes through the accumulator, in random pieces, NUL-terminated.
                var stream = input + [0]
                while !stream.isEmpty {
                    let piece = Array(stream.prefix(1 + Int(random.next() % 64)))
                    stream.removeFirst(piece.count)
                    piece.withUnsafeBytes { accumulator.append($0) }
                    do {
                        while let frame = try accumulator.nextMessage() { _ = try? JSON.parse(frame) }
                    } catch {
                        // Oversized: a typed error; the connection would be closed, so start afresh.
                        #expect(error == .messageTooLarge(limit: 4096), "seed \(seed)")
                        accumulator = FrameAccumulator(maxMessageSize: 4096)
                    }
                }
            }
        }
        #expect(inputs > 1000, "seed \(seed): only \(inputs) inputs in \(seconds) s")
        #expect(decoded > 0, "seed \(seed): no mutated input decoded; the mutations are too destructive to explore")
        for seedMessage in Self.seeds {
            let call = try VarlinkCall(json: JSON.parse(seedMessage))
            #expect(try VarlinkCall(json: JSON.parse(VarlinkFraming.frame(call.json).dropLast())) == call)
        }
    }
}
