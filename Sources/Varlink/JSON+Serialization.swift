extension JSON {
    /// Appends the compact JSON text of this value to `output`.
    ///
    /// Non-finite doubles, which JSON cannot express, are written as `null`.
    public func serialize(into output: inout [UInt8]) {
        switch self {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value): output.append(contentsOf: String(value).utf8)
        case .double(let value):
            if value.isFinite {
                // Integral doubles keep a fraction so that they read back as floats.
                let text = value.description
                output.append(contentsOf: text.utf8)
            } else {
                output.append(contentsOf: "null".utf8)
            }
        case .string(let value): Self.serialize(string: value, into: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                element.serialize(into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let object):
            object.serialize(into: &output)
        }
    }

    /// The compact JSON text of this value.
    public var serialized: String {
        var output: [UInt8] = []
        serialize(into: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// The JSON text of this value, indented by two spaces per level, for people to read.
    public func prettyPrinted(indent: Int = 0) -> String {
        let pad = String(repeating: "  ", count: indent + 1)
        let closingPad = String(repeating: "  ", count: indent)
        switch self {
        case .array(let elements) where !elements.isEmpty:
            let inner = elements.map { pad + $0.prettyPrinted(indent: indent + 1) }
            return "[\n" + inner.joined(separator: ",\n") + "\n" + closingPad + "]"
        case .object(let object) where !object.isEmpty:
            let inner = object.map { key, value in
                pad + JSON.string(key).serialized + ": " + value.prettyPrinted(indent: indent + 1)
            }
            return "{\n" + inner.joined(separator: ",\n") + "\n" + closingPad + "}"
        default:
            return serialized
        }
    }

    static func serialize(string: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        // Most strings (keys, names, numbers as text) need no escape: copied whole.
        let copied: Bool? = string.utf8.withContiguousStorageIfAvailable { bytes in
            guard !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                return false
            }
            output.append(contentsOf: bytes)
            return true
        }
        if copied == true {
            output.append(UInt8(ascii: "\""))
            return
        }
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): output.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: output.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: output.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: output.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                output.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}

extension JSONObject {
    /// Appends the compact JSON text of this object to `output`.
    public func serialize(into output: inout [UInt8]) {
        output.append(UInt8(ascii: "{"))
        var first = true
        for (key, value) in self {
            if !first { output.append(UInt8(ascii: ",")) }
            first = false
            JSON.serialize(string: key, into: &output)
            output.append(UInt8(ascii: ":"))
            value.serialize(into: &output)
        }
        output.append(UInt8(ascii: "}"))
    }
}
