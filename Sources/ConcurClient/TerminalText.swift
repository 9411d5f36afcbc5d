/// Text from the daemon made safe for a terminal: a job's command line, an error, an event can
/// hold anything a submitter put there, and a terminal acts on escape sequences.
enum TerminalText {
    /// `text` with every control character (C0, DEL, C1) shown as an escape (`\e`, `\n`,
    /// `\x7f`, `\u{9b}`) and the backslash itself doubled, so what is printed is what was sent.
    static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var result = ""
        result.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case "\u{1b}": result += "\\e"
            case _ where scalar.value < 0x20 || scalar.value == 0x7f:
                result += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            case _ where (0x80...0x9f).contains(scalar.value):
                result += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || scalar.value == 0x7f || (0x80...0x9f).contains(scalar.value) || scalar == "\\"
    }
}

extension TerminalText {
    /// `text` cut to `width` columns, its last one an ellipsis when something was cut; whole
    /// when `width` is nil.
    static func cut(_ text: String, to width: Int?) -> String {
        guard let width, text.count > width else { return text }
        return width < 1 ? "" : text.prefix(width - 1) + "…"
    }

    /// `text` broken between words into lines of at most `width` columns, every line after
    /// the first indented by `indent` spaces (so a labelled sentence keeps its column); one line
    /// when `width` is nil or the text fits. The first line keeps its spacing (a label's
    /// padding); a word longer than a line is cut with an ellipsis.
    static func wrap(_ text: String, width: Int?, indent: Int) -> [String] {
        guard let width, text.count > width else { return [text] }
        // A margin that would leave less than half the line for words is dropped.
        let margin = indent * 2 <= width ? String(repeating: " ", count: indent) : ""
        var lines: [String] = []
        var rest = Substring(text)
        var prefix = ""
        while !rest.isEmpty {
            let room = width - prefix.count
            if rest.count <= room {
                lines.append(prefix + rest)
                break
            }
            let head = rest.prefix(room + 1)
            if let space = head.lastIndex(of: " "), head[..<space].contains(where: { $0 != " " }) {
                var line = prefix + head[..<space]
                while line.last == " " { line.removeLast() }
                lines.append(line)
                rest = rest[space...].drop { $0 == " " }
            } else {
                let start = rest.firstIndex { $0 != " " } ?? rest.endIndex
                let end = rest[start...].firstIndex(of: " ") ?? rest.endIndex
                lines.append(cut(prefix + rest[..<end], to: width))
                rest = rest[end...].drop { $0 == " " }
            }
            prefix = margin
        }
        return lines
    }
}
