import ConcurProtocol
import Glibc

/// The command line's ways to say when a job may start: `--delay 90s` (from now) and `--at
/// 2026-12-01T18:00` (local time unless an offset or `Z` is given).
package enum StartTime {
    /// Seconds in each unit a delay may be given in.
    private static let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]

    /// Parses a delay: a number of seconds (`90`, `0.5`), or numbers with units run together
    /// (`30s`, `5m`, `1h30m`, `2d`). Nil when it is none of those.
    package static func seconds(ofDelay text: String) -> Double? {
        if let plain = Double(text), plain.isFinite { return plain }
        var total = 0.0
        var number = ""
        var sawUnit = false
        for character in text {
            if character.isNumber || character == "." {
                number.append(character)
            } else if let unit = units[character], let value = Double(number) {
                total += value * unit
                number = ""
                sawUnit = true
            } else {
                return nil
            }
        }
        return sawUnit && number.isEmpty ? total : nil
    }

    /// The problem with a delay, if it is not one a job may be given.
    package static func problem(withDelay text: String) -> String? {
        guard let seconds = seconds(ofDelay: text) else {
            return "--delay '\(text)' is not a duration: give seconds (90) or a number with s, m, h or d (30s, 5m, 1h30m)"
        }
        guard seconds > 0 else { return "--delay must be more than 0 seconds (leave it out to start at once)" }
        guard seconds <= JobLimits.furthestStart else { return "--delay '\(text)' is more than a year (366 days)" }
        return nil
    }

    /// Parses a time: `YYYY-MM-DDTHH:MM[:SS]` (a space may stand for `T`), in local time, or
    /// followed by `Z` or an offset (`+01:00`, `-0500`). Returns Unix seconds, or nil.
    package static func unixTime(of text: String) -> Double? {
        var rest = Substring(text)
        func number(_ digits: Int) -> Int? {
            let part = rest.prefix(digits)
            guard part.count == digits, part.allSatisfy(\.isASCII), part.allSatisfy(\.isNumber) else { return nil }
            rest = rest.dropFirst(digits)
            return Int(part)
        }
        func skip(_ separators: String) -> Bool {
            guard let first = rest.first, separators.contains(first) else { return false }
            rest = rest.dropFirst()
            return true
        }
        guard let year = number(4), skip("-"), let month = number(2), skip("-"), let day = number(2), skip("T "),
            let hour = number(2), skip(":"), let minute = number(2)
        else { return nil }
        var second = 0
        if skip(":") {
            guard let value = number(2) else { return nil }
            second = value
        }
        guard (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute),
            (0...59).contains(second)
        else { return nil }
        var offset: Int?
        if skip("Zz") {
            offset = 0
        } else if let sign = rest.first, sign == "+" || sign == "-" {
            rest = rest.dropFirst()
            guard let hours = number(2), hours <= 23 else { return nil }
            _ = skip(":")
            let minutes = rest.isEmpty ? 0 : number(2)
            guard let minutes, minutes <= 59 else { return nil }
            offset = (sign == "+" ? 1 : -1) * (hours * 3600 + minutes * 60)
        }
        guard rest.isEmpty else { return nil }
        var fields = tm()
        fields.tm_year = Int32(year - 1900)
        fields.tm_mon = Int32(month - 1)
        fields.tm_mday = Int32(day)
        fields.tm_hour = Int32(hour)
        fields.tm_min = Int32(minute)
        fields.tm_sec = Int32(second)
        fields.tm_isdst = -1
        let seconds: time_t
        if let offset {
            seconds = timegm(&fields) - time_t(offset)
        } else {
            seconds = mktime(&fields)
        }
        // mktime and timegm normalise 31 February to 3 March: such a date is refused.
        guard seconds != -1, fields.tm_mday == Int32(day), fields.tm_mon == Int32(month - 1) else { return nil }
        return Double(seconds)
    }

    /// A time of day alone, `HH:MM[:SS]` in local time: its next occurrence after `now` (Unix
    /// seconds), today or tomorrow, as at(1) reads it. Nil when the text is not one.
    package static func nextOccurrence(ofTimeOfDay text: String, after now: Double) -> Double? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard (2...3).contains(parts.count), parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isASCII) }),
            let hour = Int(parts[0]), let minute = Int(parts[1]), (0...23).contains(hour), (0...59).contains(minute)
        else { return nil }
        let second = parts.count == 3 ? Int(parts[2]) : 0
        guard let second, (0...59).contains(second) else { return nil }
        var seconds = time_t(now.rounded(.down))
        for day in 0...1 {
            var fields = tm()
            guard localtime_r(&seconds, &fields) != nil else { return nil }
            fields.tm_mday += Int32(day)
            fields.tm_hour = Int32(hour)
            fields.tm_min = Int32(minute)
            fields.tm_sec = Int32(second)
            fields.tm_isdst = -1
            let time = mktime(&fields)
            if time != -1, Double(time) > now { return Double(time) }
        }
        return nil
    }

    /// The Unix time an `--at` value names, checked against `now` (Unix seconds): a time in the
    /// past or more than a year ahead is refused, saying so. A time of day alone is its next
    /// occurrence.
    package static func unixTime(at text: String, now: Double) throws(ClientFailure) -> Double {
        if let next = nextOccurrence(ofTimeOfDay: text, after: now) { return next }
        guard let time = unixTime(of: text) else {
            throw ClientFailure(
                "--at '\(text)' is not a time: give HH:MM (the next one), or YYYY-MM-DDTHH:MM[:SS] in local time, or with Z or an offset such as +01:00",
                exitCode: ClientFailure.ExitStatus.usage)
        }
        if time <= now {
            throw ClientFailure(
                "--at \(text) lies \(formatDuration(now - time)) in the past: give a time to come, or leave --at out to start at once",
                exitCode: ClientFailure.ExitStatus.usage)
        }
        if time > now + JobLimits.furthestStart {
            throw ClientFailure(
                "--at \(text) lies more than a year ahead: concurd schedules up to 366 days ahead",
                exitCode: ClientFailure.ExitStatus.usage)
        }
        return time
    }

    /// A Unix time as people read it here: `2026-12-01 18:00:00` in local time.
    package static func localText(_ unixTime: Double) -> String {
        var seconds = time_t(unixTime.rounded(.down))
        var fields = tm()
        guard localtime_r(&seconds, &fields) != nil else { return formatDecimal(unixTime) }
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S", &fields)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The Unix time now.
    package static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}
