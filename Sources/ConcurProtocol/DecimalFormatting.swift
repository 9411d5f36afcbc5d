/// Formats `value` with exactly `places` decimals (`1.50`), for aligned columns.
///
/// Written without Foundation so that the client stays small and starts fast.
public func formatFixed(_ value: Double, places: Int) -> String {
    guard value.isFinite else { return value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf") }
    var scale = 1.0
    for _ in 0..<places { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    guard scaled < 9.0e18 else { return "\(value)" }
    let units = UInt64(scaled)
    let divisor = UInt64(scale)
    let sign = value < 0 && units > 0 ? "-" : ""
    guard places > 0 else { return "\(sign)\(units)" }
    var fractionText = String(units % divisor)
    while fractionText.count < places { fractionText = "0" + fractionText }
    return "\(sign)\(units / divisor).\(fractionText)"
}

/// Formats `value` with at most `places` decimals and no trailing zeros (`1.5`, `2`, `0.25`).
public func formatDecimal(_ value: Double, places: Int = 2) -> String {
    var text = formatFixed(value, places: places)
    guard places > 0, value.isFinite, text.contains(".") else { return text }
    while text.last == "0" { text.removeLast() }
    if text.last == "." { text.removeLast() }
    return text
}

/// A duration for people: `850 us`, `12.5 ms`, `1.25 s`, `3m12s`, `2h05m`.
public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "-" }
    let value = max(0, seconds)
    if value < 0.001 { return "\(formatDecimal(value * 1e6, places: value < 0.00001 ? 1 : 0)) us" }
    if value < 1 { return "\(formatDecimal(value * 1000, places: value < 0.01 ? 2 : 1)) ms" }
    if value < 60 { return "\(formatDecimal(value, places: 2)) s" }
    let total = Int(value.rounded())
    if total < 3600 { return "\(total / 60)m\(pad2(total % 60))s" }
    return "\(total / 3600)h\(pad2(total % 3600 / 60))m"
}

/// A byte count for people: `512 B`, `14.2 MiB`.
public func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : "\(formatDecimal(value, places: 1)) \(units[unit])"
}

private func pad2(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

/// `text` right-aligned in `width` columns (never cut).
public func leftPad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

/// `text` left-aligned in `width` columns (never cut).
public func rightPad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

/// `value` rounded, with thousands separated by commas: `1,234,567`.
public func formatGrouped(_ value: Double) -> String {
    guard value.isFinite else { return "-" }
    let rounded = Int(value.rounded())
    let digits = String(rounded.magnitude)
    var text = ""
    for (index, digit) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { text.append(",") }
        text.append(digit)
    }
    return rounded < 0 ? "-" + text : text
}
