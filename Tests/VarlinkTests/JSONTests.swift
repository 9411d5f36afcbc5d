import Testing
import Varlink

@Suite("JSON parsing and serialization")
struct JSONTests {
    @Test("round-trips values through text")
    func roundTrip() throws {
        let value: JSON = [
            "int": 9_999_999_999_999_917, "negative": -42, "float": 1.5, "string": "tab\there \"quoted\" \\ é 😀",
            "array": [true, false, nil, 0], "nested": ["empty": [:], "list": []],
        ]
        let text = value.serialized
        #expect(try JSON.parse(text) == value)
    }

    @Test("keeps 64-bit integers exact, beyond what a double can hold")
    func largeIntegers() throws {
        #expect(try JSON.parse("9223372036854775807") == .int(Int64.max))
        #expect(try JSON.parse("-9223372036854775808") == .int(Int64.min))
        #expect(try JSON.parse("9999999999999999") == .int(9_999_999_999_999_999))
        // Beyond Int64 a number is still a number, as a double.
        #expect(try JSON.parse("18446744073709551616") == .double(18_446_744_073_709_551_616.0))
    }

    @Test("reads numbers with fractions and exponents as floats")
    func floats() throws {
        #expect(try JSON.parse("0.5") == .double(0.5))
        #expect(try JSON.parse("-1e3") == .double(-1000))
        #expect(try JSON.parse("2E-2") == .double(0.02))
    }

    @Test("decodes escapes, including surrogate pairs")
    func escapes() throws {
        #expect(try JSON.parse(#""a\nb\u0041\u00e9\ud83d\ude00\/""#) == .string("a\nbAé😀/"))
    }

    @Test("keeps the order of object keys", arguments: [["b", "a", "c"], ["z", "y"]])
    func keyOrder(keys: [String]) throws {
        let text = "{" + keys.map { "\"\($0)\":1" }.joined(separator: ",") + "}"
        guard case .object(let object) = try JSON.parse(text) else {
            Issue.record("not an object")
            return
        }
        #expect(object.keys == keys)
        #expect(JSON.object(object).serialized == text)
    }

    @Test(
        "refuses malformed input with the reason",
        arguments: [
            ("", "unexpected end"), ("{", "end of input"), ("[1,]", "unexpected character"), ("{\"a\":1,}", "string key"),
            ("01", "leading zero"), ("1.", "digit after"), ("-", "expected a digit"), ("tru", "unexpected end"),
            ("nul", "unexpected end"), ("NaN", "unexpected character"), ("\"abc", "unterminated"),
            ("\"a\u{01}b\"", "control character"), (#""\x""#, "invalid escape"), (#""\ud800""#, "lone high surrogate"),
            (#""\udc00""#, "lone low surrogate"), ("{\"a\":1,\"a\":2}", "duplicate key"), ("1 2", "after the value"),
            ("1e999", "out of range"), ("{1:2}", "string key"),
        ])
    func malformed(text: String, reason: String) {
        #expect {
            try JSON.parse(text)
        } throws: { error in
            (error as? JSONParseError)?.reason.contains(reason) == true
        }
    }

    @Test("refuses invalid UTF-8 in strings")
    func invalidUTF8() {
        let bytes: [UInt8] = [0x22, 0xFF, 0xFE, 0x22]
        #expect(throws: JSONParseError.self) { try JSON.parse(bytes) }
    }

    @Test("bounds nesting depth so hostile input cannot exhaust the stack")
    func depth() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect {
            try JSON.parse(deep)
        } throws: { error in
            (error as? JSONParseError)?.reason.contains("nesting deeper than 64") == true
        }
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(try JSON.parse(ok) != .null)
    }

    @Test("objects keep order, replace, remove and compare by members, small or indexed", arguments: [3, 40])
    func objects(size: Int) {
        var object = JSONObject()
        for number in 0..<size { object["k\(number)"] = .int(Int64(number)) }
        #expect(object.keys == (0..<size).map { "k\($0)" })
        object["k1"] = "one"
        #expect(object["k1"] == "one" && object.count == size)
        object["k0"] = nil
        #expect(object["k0"] == nil && object.count == size - 1 && object.keys.first == "k1")
        #expect(object["k\(size - 1)"] == .int(Int64(size - 1)))
        let inserted = object.insertNew("k1", 5)
        #expect(!inserted)
        var reversed = JSONObject()
        for (key, value) in object.reversed() { reversed[key] = value }
        #expect(reversed == object)
        #expect(reversed.hashValue == object.hashValue)
        reversed["extra"] = true
        #expect(reversed != object)
    }

    @Test("writes non-finite doubles as null, and escapes control characters")
    func serializationEdges() {
        #expect(JSON.double(.infinity).serialized == "null")
        #expect(JSON.double(.nan).serialized == "null")
        #expect(JSON.string("\u{01}\n").serialized == #""\u0001\n""#)
    }
}
