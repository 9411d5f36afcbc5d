/// Prometheus's text exposition format (version 0.0.4), as `promtool check metrics` and
/// node_exporter's textfile collector read it: one `# HELP` and `# TYPE` per family, its
/// samples after them.
///
/// Families come out in the order they were first added, and samples in the order they were
/// added, so the same figures give the same text. Label values and help are escaped as the
/// format says (backslash, double quote, newline). A value type, filled on one thread.
struct PrometheusText {
    /// A family's type.
    enum Kind: String {
        case counter, gauge, summary
    }

    private struct Family {
        let help: String
        let kind: Kind
        var samples: [String] = []
    }

    private var families: [(name: String, family: Family)] = []
    private var positions: [String: Int] = [:]

    /// Adds a sample of family `name` (created with `help` and `kind` the first time it is
    /// named); `suffix` names a summary's `_sum` or `_count`.
    mutating func add(
        _ name: String, _ kind: Kind, help: String, labels: [(String, String)] = [], value: Double, suffix: String = ""
    ) {
        let position: Int
        if let known = positions[name] {
            position = known
        } else {
            position = families.count
            positions[name] = position
            families.append((name, Family(help: help, kind: kind)))
        }
        let labelText =
            labels.isEmpty
            ? "" : "{" + labels.map { "\($0.0)=\"\(Self.escaped($0.1, quotes: true))\"" }.joined(separator: ",") + "}"
        families[position].family.samples.append("\(name)\(suffix)\(labelText) \(Self.number(value))")
    }

    /// Adds a summary of family `name`: a sample per quantile (with a `quantile` label), then
    /// `_sum` and `_count`.
    mutating func addSummary(
        _ name: String, help: String, labels: [(String, String)], quantiles: [(String, Double)], sum: Double, count: Int
    ) {
        for (quantile, value) in quantiles {
            add(name, .summary, help: help, labels: labels + [("quantile", quantile)], value: value)
        }
        add(name, .summary, help: help, labels: labels, value: sum, suffix: "_sum")
        add(name, .summary, help: help, labels: labels, value: Double(count), suffix: "_count")
    }

    /// The exposition text, ending with a newline.
    var text: String {
        var lines: [String] = []
        for (name, family) in families {
            lines.append("# HELP \(name) \(Self.escaped(family.help, quotes: false))")
            lines.append("# TYPE \(name) \(family.kind.rawValue)")
            lines += family.samples
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A value as the format writes it: whole numbers without a fraction, `+Inf`, `-Inf`, `NaN`.
    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    /// `text` with backslashes and newlines escaped (and double quotes, in a label value).
    static func escaped(_ text: String, quotes: Bool) -> String {
        var result = ""
        for character in text {
            switch character {
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\"" where quotes: result += "\\\""
            default: result.append(character)
            }
        }
        return result
    }
}
