import Synchronization
import Testing
import Varlink

/// Collects the replies a service sends, for tests without a socket.
final class RecordingResponder: Sendable {
    private let replies = Mutex<[VarlinkReply]>([])
    private let closeHandlers = Mutex<[@Sendable () -> Void]>([])

    func responder(more: Bool = false, oneway: Bool = false) -> VarlinkResponder {
        VarlinkResponder(
            more: more, oneway: oneway, deliver: { reply in self.replies.withLock { $0.append(reply) } },
            onClose: { handler in self.closeHandlers.withLock { $0.append(handler) } }, schedule: { $0() })
    }

    var all: [VarlinkReply] { replies.withLock { $0 } }
}

struct EchoInterface: VarlinkInterface {
    let name = "org.example.echo"
    let definition = "interface org.example.echo\nmethod Echo(text: string) -> (text: string)\n"

    func handle(method: String, parameters: JSONObject, peer: VarlinkPeer, responder: VarlinkResponder) {
        guard method == "Echo" else {
            responder.fail(.methodNotFound("\(name).\(method)"))
            return
        }
        var reader = ParameterReader(parameters)
        do {
            let text: String = try reader.required("text")
            try reader.finish()
            responder.reply(["text": .string(text)])
        } catch {
            responder.fail(error)
        }
    }
}

@Suite("org.varlink.service and dispatch")
struct VarlinkServiceTests {
    let service = VarlinkService(vendor: "v", product: "p", version: "1", url: "u", interfaces: [EchoInterface()])
    let peer = VarlinkPeer(pid: 1, uid: 0, gid: 0)

    func call(_ method: String, _ parameters: JSONObject = [:]) -> [VarlinkReply] {
        let recorder = RecordingResponder()
        service.dispatch(VarlinkCall(method: method, parameters: parameters), peer: peer, responder: recorder.responder())
        return recorder.all
    }

    @Test("GetInfo lists the service interface first, then ours")
    func getInfo() {
        let replies = call("org.varlink.service.GetInfo")
        #expect(replies.count == 1)
        #expect(replies[0].parameters["interfaces"] == ["org.varlink.service", "org.example.echo"])
        #expect(replies[0].parameters["product"] == "p")
    }

    @Test("GetInterfaceDescription returns the definition verbatim")
    func description() {
        #expect(
            call("org.varlink.service.GetInterfaceDescription", ["interface": "org.example.echo"])[0].parameters["description"]
                == .string(EchoInterface().definition))
        let own = call("org.varlink.service.GetInterfaceDescription", ["interface": "org.varlink.service"])
        guard case .string(let text) = own[0].parameters["description"] else {
            Issue.record("no description")
            return
        }
        #expect(text.contains("interface org.varlink.service"))
    }

    @Test("answers the standard errors")
    func standardErrors() {
        #expect(call("org.example.nothing.Echo")[0].varlinkError == .interfaceNotFound("org.example.nothing"))
        #expect(call("org.example.echo.Shout")[0].varlinkError == .methodNotFound("org.example.echo.Shout"))
        #expect(call("org.varlink.service.Nope")[0].varlinkError == .methodNotFound("org.varlink.service.Nope"))
        #expect(
            call("org.varlink.service.GetInterfaceDescription", ["interface": "x.y"])[0].varlinkError == .interfaceNotFound("x.y")
        )
        #expect(call("org.varlink.service.GetInfo", ["extra": 1])[0].varlinkError == .invalidParameter("extra"))
        #expect(call("org.example.echo.Echo", ["text": 5])[0].varlinkError == .invalidParameter("text"))
    }

    @Test("bounds strings: a longer parameter is refused, and long names are cut in the errors that echo them")
    func stringBounds() throws {
        let longest = String(repeating: "é", count: String.maxParameterBytes / 2)
        #expect(call("org.example.echo.Echo", ["text": .string(longest)])[0].parameters["text"] == .string(longest))
        #expect(
            call("org.example.echo.Echo", ["text": .string(longest + "x")])[0].varlinkError == .invalidParameter("text"))
        let name = "org.example.echo." + String(repeating: "ü", count: 100_000)
        let error = try #require(call(name)[0].varlinkError)
        guard case .string(let echoed) = error.parameters["method"] else { throw VarlinkError.invalidParameter("method") }
        #expect(
            echoed.utf8.count <= VarlinkError.maxEchoedBytes + 3 && echoed.hasSuffix("...")
                && echoed.hasPrefix("org.example.echo.ü"))
        let field = String(repeating: "k", count: 1_000_000)
        guard
            case .string(let parameter) = call("org.example.echo.Echo", ["text": "a", field: 1])[0].varlinkError?.parameters[
                "parameter"]
        else { throw VarlinkError.invalidParameter("parameter") }
        #expect(parameter.utf8.count == VarlinkError.maxEchoedBytes + 3)
    }

    @Test("routes calls to the interface")
    func routing() {
        #expect(call("org.example.echo.Echo", ["text": "hi"])[0].parameters == ["text": "hi"])
    }

    @Test("drops continues on replies to calls without more")
    func continuesNeedsMore() {
        let recorder = RecordingResponder()
        recorder.responder(more: false).reply(["a": 1], continues: true)
        recorder.responder(more: true).reply(["b": 2], continues: true)
        #expect(recorder.all.map(\.continues) == [false, true])
    }
}
