// A libFuzzer target for everything concur decodes from a socket: the framing, the JSON parser,
// Varlink calls, the parameters of `Submit` and `Generate`, and every reply type `concurctl`
// reads. Built by `scripts/fuzz` with `-sanitize=fuzzer,address`, so an out-of-bounds read in
// the parser is a crash, not luck. A trap here is a finding: libFuzzer saves the input.
import ConcurProtocol
import Varlink

/// The frame size the fuzzer's accumulator allows: small, so oversized frames are explored too.
let maxFrameSize = 4096

/// Feeds one input through every decoder, the way a connection would see it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let input = UnsafeRawBufferPointer(start: data, count: size)
    // The whole input as one message.
    decodeMessage(input)
    // The same bytes through a connection's accumulator, cut into pieces whose sizes the first
    // byte chooses, so a frame boundary can fall anywhere.
    var accumulator = FrameAccumulator(maxMessageSize: maxFrameSize)
    let pieceSize = 1 + Int(input.first ?? 0) % 64
    var offset = 0
    while offset < input.count {
        let end = min(input.count, offset + pieceSize)
        accumulator.append(UnsafeRawBufferPointer(rebasing: input[offset..<end]))
        offset = end
        do {
            while let frame = try accumulator.nextMessage() { decodeMessage(frame) }
        } catch {
            // An oversized frame: a connection would answer and close; start afresh.
            precondition(error == .messageTooLarge(limit: maxFrameSize), "unexpected framing error \(error)")
            accumulator = FrameAccumulator(maxMessageSize: maxFrameSize)
        }
    }
    return 0
}

/// Parses one message and decodes it as a call and as each reply type; checks that what parses
/// survives a round trip through the serializer.
func decodeMessage(_ bytes: some Collection<UInt8>) {
    guard let json = try? JSON.parse(bytes) else { return }
    let reparsed = try? JSON.parse(Array(json.serialized.utf8))
    precondition(reparsed.map { sameValue($0, json) } == true, "serialized JSON does not parse back: \(json.serialized)")
    if let call = try? VarlinkCall(json: json) {
        precondition((try? VarlinkCall(json: call.json)) == call, "a call does not survive a round trip")
        var reader = ParameterReader(call.parameters)
        _ = try? reader.optional("jobs", as: [JobSpec].self)
        _ = try? WorkloadRequest(parameters: call.parameters)
    }
    decodeReplies(json, depth: 3)
}

/// Decodes `json`, and the values nested in it down to `depth` levels (a reply's `parameters`,
/// then `status`, `stats`, `job`...), as each value concurctl and the daemon read; whatever
/// decodes must encode to JSON that decodes to the same value.
func decodeReplies(_ json: JSON, depth: Int) {
    roundTrip(JobSpec.self, json)
    roundTrip(JobInfo.self, json)
    roundTrip(PoolStatus.self, json)
    roundTrip(PoolStats.self, json)
    roundTrip(PoolEvent.self, json)
    guard depth > 0 else { return }
    switch json {
    case .object(let object): for (_, value) in object { decodeReplies(value, depth: depth - 1) }
    case .array(let elements): for element in elements.prefix(8) { decodeReplies(element, depth: depth - 1) }
    default: break
    }
}

/// Decodes `json` as a `T`; if it decodes, checks that its encoding decodes to the same value,
/// after a trip through the serializer and the parser like on the wire.
func roundTrip<T: JSONDecodable & JSONEncodable & Equatable>(_ type: T.Type, _ json: JSON) {
    guard let value = try? T(json: json, path: "value") else { return }
    let wire = value.json.serialized
    guard let parsed = try? JSON.parse(wire), let again = try? T(json: parsed, path: "value") else {
        preconditionFailure("\(T.self) encodes to JSON it cannot read: \(wire)")
    }
    precondition(again == value, "\(T.self) changes in a round trip: \(wire)")
}

/// JSON equality where an integral float may come back as an integer (`1.0` is written `1`):
/// the same number either way.
func sameValue(_ a: JSON, _ b: JSON) -> Bool {
    switch (a, b) {
    case (.int(let x), .double(let y)), (.double(let y), .int(let x)): Double(x) == y
    case (.array(let x), .array(let y)): x.count == y.count && zip(x, y).allSatisfy { sameValue($0, $1) }
    case (.object(let x), .object(let y)):
        x.count == y.count && x.allSatisfy { key, value in y[key].map { sameValue(value, $0) } ?? false }
    default: a == b
    }
}
