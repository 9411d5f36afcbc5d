import Testing
import Varlink

@Suite("NUL framing")
struct FramingTests {
    @Test("splits a stream at NUL bytes, across arbitrary chunk boundaries")
    func splitting() throws {
        let stream = VarlinkFraming.frame(["a": 1]) + VarlinkFraming.frame(["b": 2]) + VarlinkFraming.frame("x")
        for chunkSize in [1, 2, 3, 7, stream.count] {
            var accumulator = FrameAccumulator()
            var messages: [JSON] = []
            var offset = 0
            while offset < stream.count {
                let chunk = Array(stream[offset..<min(offset + chunkSize, stream.count)])
                offset += chunk.count
                chunk.withUnsafeBytes { accumulator.append($0) }
                while let message = try accumulator.nextMessage() { messages.append(try JSON.parse(message)) }
            }
            #expect(messages == [["a": 1], ["b": 2], "x"], "chunk size \(chunkSize)")
            #expect(!accumulator.hasPartialMessage)
        }
    }

    @Test("refuses a message longer than the limit before it ends")
    func oversized() throws {
        var accumulator = FrameAccumulator(maxMessageSize: 16)
        let bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 17)
        bytes.withUnsafeBytes { accumulator.append($0) }
        #expect(throws: FramingError.messageTooLarge(limit: 16)) { try accumulator.nextMessage() }
    }
}

@Suite("Varlink messages")
struct MessageTests {
    @Test("reads a call with its flags")
    func call() throws {
        let call = try VarlinkCall(
            json: JSON.parse(#"{"method":"io.concur.Supervisor.Resize","parameters":{"workers":8},"more":true}"#))
        #expect(call.method == "io.concur.Supervisor.Resize")
        #expect(call.interface == "io.concur.Supervisor")
        #expect(call.memberName == "Resize")
        #expect(call.parameters["workers"] == .int(8))
        #expect(call.more && !call.oneway && !call.upgrade)
        #expect(try VarlinkCall(json: call.json) == call)
    }

    @Test(
        "refuses a call that is not well formed, naming the field",
        arguments: [
            (#"[]"#, ""), (#"{}"#, "method"), (#"{"method":1}"#, "method"), (#"{"method":"a.B","parameters":[]}"#, "parameters"),
            (#"{"method":"a.B","more":"yes"}"#, "more"),
        ])
    func malformedCall(text: String, parameter: String) throws {
        #expect(throws: VarlinkError.invalidParameter(parameter)) { try VarlinkCall(json: JSON.parse(text)) }
    }

    @Test("reads error replies")
    func errorReply() throws {
        let reply = try VarlinkReply(
            json: JSON.parse(#"{"error":"org.varlink.service.InvalidParameter","parameters":{"parameter":"x"}}"#))
        #expect(reply.varlinkError == VarlinkError.invalidParameter("x"))
        #expect(reply.varlinkError?.shortName == "InvalidParameter")
    }
}

@Suite("Typed parameters")
struct ParameterReaderTests {
    @Test("reads required and optional fields")
    func reads() throws {
        var reader = ParameterReader(["count": 3, "scale": 2, "kind": "cpu", "flag": nil])
        #expect(try reader.required("count", as: Int.self) == 3)
        #expect(try reader.required("scale", as: Double.self) == 2)
        #expect(try reader.optional("kind", as: String.self) == "cpu")
        #expect(try reader.optional("flag", as: Bool.self) == nil)
        #expect(try reader.optional("missing", as: Bool.self) == nil)
        try reader.finish()
    }

    @Test("names a missing field, a wrong type and an unknown field")
    func errors() throws {
        var missing = ParameterReader([:])
        #expect(throws: VarlinkError.invalidParameter("count")) { try missing.required("count", as: Int.self) }
        var wrongType = ParameterReader(["count": "three"])
        #expect(throws: VarlinkError.invalidParameter("count")) { try wrongType.required("count", as: Int.self) }
        var unknown = ParameterReader(["count": 1, "cuont": 2])
        _ = try unknown.required("count", as: Int.self)
        #expect(throws: VarlinkError.invalidParameter("cuont")) { try unknown.finish() }
        var negative = ParameterReader(["id": -1])
        #expect(throws: VarlinkError.invalidParameter("id")) { try negative.required("id", as: UInt64.self) }
        var fractional = ParameterReader(["count": 1.5])
        #expect(throws: VarlinkError.invalidParameter("count")) { try fractional.required("count", as: Int.self) }
    }

    @Test("names elements of arrays by index")
    func arrayPaths() throws {
        var reader = ParameterReader(["ids": [1, 2, "three"]])
        #expect(throws: VarlinkError.invalidParameter("ids[2]")) { try reader.required("ids", as: [Int].self) }
    }
}

@Suite("Replies sent already serialized")
struct EncodedReplyTests {
    @Test("frame exactly as the same reply built from parameters", arguments: [false, true])
    func sameBytes(continues: Bool) throws {
        let parameters: JSONObject = ["status": ["workers": 4, "model": "threads"], "list": [1, 2.5, "x"]]
        var encoded: [UInt8] = []
        JSON.object(parameters).serialize(into: &encoded)
        var fromEncoded: [UInt8] = []
        VarlinkReply(encodedParameters: encoded, continues: continues).frame(into: &fromEncoded)
        var fromParameters: [UInt8] = []
        VarlinkReply(parameters: parameters, continues: continues).frame(into: &fromParameters)
        #expect(fromEncoded == fromParameters)
        let decoded = try VarlinkReply(json: fromEncoded.dropLast().withUnsafeBytes { try JSON.parse($0) })
        #expect(decoded.parameters == parameters && decoded.continues == continues)
    }
}
