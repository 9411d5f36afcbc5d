import ConcurProtocol
import TOMLKit

/// A setting's value as a config file or a flag gives it, before it is checked.
enum SettingValue: Equatable {
    case integer(Int)
    case seconds(Double)
    case text(String)
    case toggle(Bool)
    case names([String])
}

/// Where a value came from: its errors are worded for the place the user wrote it.
enum SettingSource {
    /// The command line (`--workers 4`).
    case flag
    /// A config file (`workers = 4` in this file).
    case file(String)
}

/// One setting of concurd, declared once: its config key, its flag, the type of its value and
/// how it is checked, its default (from ``DaemonConfiguration``'s initializer) and whether a
/// reload applies it. ``DaemonSettings/all`` lists them; TOML parsing, the flag-over-file merge,
/// validation, the reload's diff and the option table of docs/operations.md come from that list.
struct DaemonSetting {
    /// What a reload does with a changed value.
    enum Reload {
        /// Applied while concurd runs.
        case live
        /// Logged as needing a restart; the running value stays.
        case restart
        /// Not compared (a test hook, a test's log).
        case ignored
    }

    /// The key in a config file (`max_queue`).
    let key: String
    /// The command-line flag (`--max-queue`), nil if only a config file sets it.
    let flag: String?
    /// Whether a config file may set it.
    let inFile: Bool
    /// What a reload does with it.
    let reload: Reload
    /// The flag's value in docs/operations.md's table (`N`, `S`, `PATH`), empty for a switch.
    let placeholder: String
    /// The "default" column of docs/operations.md's table; nil: not shown there (hidden flags, file-only lists).
    let defaultText: String?
    /// The "meaning" column of docs/operations.md's table.
    let meaning: String
    /// What a config file must give, as its error says ("an integer").
    let expectation: String
    /// The value of a TOML entry, nil if it has the wrong type.
    let readTOML: (TOMLValueConvertible) -> SettingValue?
    /// Stores a value; a value that is not one of the choices is refused, worded for `source`.
    let assign: (SettingValue, inout DaemonConfiguration, SettingSource) throws(ConfigurationError) -> Void
    /// Checks the merged value (ranges, paths, existence); nil: nothing to check.
    let check: ((DaemonConfiguration) throws(ConfigurationError) -> Void)?
    /// The value as a reload's log line shows it.
    let describe: (DaemonConfiguration) -> String

    /// The error of a merged value, naming both the flag and the key.
    static func failure(key: String, flag: String?, _ problem: String) -> ConfigurationError {
        if let flag { return ConfigurationError("\(flag) (config key '\(key)') \(problem)") }
        return ConfigurationError("\(key) \(problem)")
    }

    /// A check of a merged configuration; `fail` words a problem for this setting.
    typealias Check = (DaemonConfiguration, _ fail: (String) -> ConfigurationError) throws(ConfigurationError) -> Void
}

// The kinds of setting, each built from a key path of ``DaemonConfiguration``.
extension DaemonSetting {
    /// An integer, within `range` (nil: checked by `extraCheck` alone).
    static func integer(
        _ key: String, _ flag: String?, _ path: WritableKeyPath<DaemonConfiguration, Int>, range: ClosedRange<Int>?,
        reload: Reload, meaning: String, defaultText: String? = nil,
        extraCheck: Check? = nil
    ) -> DaemonSetting {
        let fail = { (problem: String) in Self.failure(key: key, flag: flag, problem) }
        return DaemonSetting(
            key: key, flag: flag, inFile: true, reload: reload, placeholder: "N",
            defaultText: defaultText ?? "\(DaemonConfiguration()[keyPath: path])", meaning: meaning,
            expectation: "an integer", readTOML: { $0.int.map(SettingValue.integer) },
            assign: { value, configuration, _ in
                if case .integer(let number) = value { configuration[keyPath: path] = number }
            },
            check: { configuration throws(ConfigurationError) in
                let value = configuration[keyPath: path]
                if let range, !range.contains(value) {
                    throw fail("must be between \(range.lowerBound) and \(range.upperBound), not \(value)")
                }
                try extraCheck?(configuration, fail)
            },
            describe: { "\($0[keyPath: path])" })
    }

    /// An integer that may be unset (nil: the default rule), within `range` when set.
    static func optionalInteger(
        _ key: String, _ flag: String?, _ path: WritableKeyPath<DaemonConfiguration, Int?>, range: ClosedRange<Int>,
        reload: Reload, meaning: String, defaultText: String
    ) -> DaemonSetting {
        let fail = { (problem: String) in Self.failure(key: key, flag: flag, problem) }
        return DaemonSetting(
            key: key, flag: flag, inFile: true, reload: reload, placeholder: "N", defaultText: defaultText, meaning: meaning,
            expectation: "an integer", readTOML: { $0.int.map(SettingValue.integer) },
            assign: { value, configuration, _ in
                if case .integer(let number) = value { configuration[keyPath: path] = number }
            },
            check: { configuration throws(ConfigurationError) in
                if let value = configuration[keyPath: path], !range.contains(value) {
                    throw fail("must be between \(range.lowerBound) and \(range.upperBound), not \(value)")
                }
            },
            describe: { $0[keyPath: path].map { "\($0)" } ?? "none" })
    }

    /// Seconds, within `range`; `rangeText` is how the error states it ("between 1 and 3600 seconds").
    static func seconds(
        _ key: String, _ flag: String?, _ path: WritableKeyPath<DaemonConfiguration, Double>, range: ClosedRange<Double>,
        rangeText: String, reload: Reload, meaning: String
    ) -> DaemonSetting {
        let fail = { (problem: String) in Self.failure(key: key, flag: flag, problem) }
        return DaemonSetting(
            key: key, flag: flag, inFile: true, reload: reload, placeholder: "S",
            defaultText: formatDecimal(DaemonConfiguration()[keyPath: path]), meaning: meaning,
            expectation: "a number of seconds", readTOML: readSeconds,
            assign: { value, configuration, _ in
                if case .seconds(let seconds) = value { configuration[keyPath: path] = seconds }
            },
            check: { configuration throws(ConfigurationError) in
                let value = configuration[keyPath: path]
                guard range.contains(value) else { throw fail("must be \(rangeText), not \(formatDecimal(value))") }
            },
            describe: { "\($0[keyPath: path])" })
    }

    /// Seconds that may be unset (nil: no limit).
    static func optionalSeconds(
        _ key: String, _ flag: String?, _ path: WritableKeyPath<DaemonConfiguration, Double?>, range: ClosedRange<Double>,
        rangeText: String, reload: Reload, meaning: String, defaultText: String
    ) -> DaemonSetting {
        let fail = { (problem: String) in Self.failure(key: key, flag: flag, problem) }
        return DaemonSetting(
            key: key, flag: flag, inFile: true, reload: reload, placeholder: "S", defaultText: defaultText, meaning: meaning,
            expectation: "a number of seconds", readTOML: readSeconds,
            assign: { value, configuration, _ in
                if case .seconds(let seconds) = value { configuration[keyPath: path] = seconds }
            },
            check: { configuration throws(ConfigurationError) in
                if let value = configuration[keyPath: path], !range.contains(value) {
                    throw fail("must be \(rangeText), not \(formatDecimal(value))")
                }
            },
            describe: { $0[keyPath: path].map { "\($0)" } ?? "none" })
    }

    /// One of a set of names (a model, a start method, a log level).
    static func choice<Value: RawRepresentable & CaseIterable & Equatable>(
        _ key: String, _ flag: String?, _ path: WritableKeyPath<DaemonConfiguration, Value>, placeholder: String = "M",
        reload: Reload, meaning: String,
        extraCheck: Check? = nil
    ) -> DaemonSetting where Value.RawValue == String {
        let names = Value.allCases.map(\.rawValue)
        let expectation = "one of \(names.map { "\"\($0)\"" }.joined(separator: ", "))"
        let fail = { (problem: String) in Self.failure(key: key, flag: flag, problem) }
        return DaemonSetting(
            key: key, flag: flag, inFile: true, reload: reload, placeholder: placeholder,
            defaultText: "`\(DaemonConfiguration()[keyPath: path].rawValue)`", meaning: meaning,
            expectation: expectation,
            readTOML: { $0.string.map(SettingValue.text) },
            assign: { value, configuration, source throws(ConfigurationError) in
                guard case .text(let name) = value else { return }
                guard let parsed = Value(rawValue: name) else {
                    switch source {
                    case .flag:
                        throw ConfigurationError(
                            "\(flag ?? key) must be one of \(names.joined(separator: ", ")), not '\(name)'")
                    case .file(let file):
                        throw ConfigurationError("\(file): \(key) must be \(expectation)")
                    }
                }
                configuration[keyPath: path] = parsed
            },
            check: bound(extraCheck, fail),
            describe: { "\($0[keyPath: path])" })
    }

    /// A path, or any text, that may be unset; `check` says what it must be.
    static func text(
        _ key: String, _ flag: String?, _ path: WritableKeyPath<DaemonConfiguration, String?>, placeholder: String,
        inFile: Bool = true, reload: Reload, meaning: String, defaultText: String?,
        check: Check? = nil
    ) -> DaemonSetting {
        let fail = { (problem: String) in Self.failure(key: key, flag: flag, problem) }
        return DaemonSetting(
            key: key, flag: flag, inFile: inFile, reload: reload, placeholder: placeholder, defaultText: defaultText,
            meaning: meaning, expectation: "a string (an absolute path)", readTOML: { $0.string.map(SettingValue.text) },
            assign: { value, configuration, _ in
                if case .text(let text) = value { configuration[keyPath: path] = text }
            },
            check: bound(check, fail),
            describe: { $0[keyPath: path] ?? "none" })
    }

    /// On or off; a flag can only turn it on (over a file's `false`).
    static func toggle(
        _ key: String, _ flag: String?, _ path: WritableKeyPath<DaemonConfiguration, Bool>, reload: Reload, meaning: String,
        shown: Bool = true
    ) -> DaemonSetting {
        DaemonSetting(
            key: key, flag: flag, inFile: true, reload: reload, placeholder: "",
            defaultText: shown ? (DaemonConfiguration()[keyPath: path] ? "on" : "off") : nil, meaning: meaning,
            expectation: "true or false", readTOML: { $0.bool.map(SettingValue.toggle) },
            assign: { value, configuration, _ in
                if case .toggle(let enabled) = value { configuration[keyPath: path] = enabled }
            },
            check: nil, describe: { "\($0[keyPath: path])" })
    }

    /// A list of user or group names or ids, set in a config file only; `check` says what
    /// each must be.
    static func names(
        _ key: String, _ path: WritableKeyPath<DaemonConfiguration, [String]>, reload: Reload,
        check: @escaping (DaemonConfiguration) throws(ConfigurationError) -> Void
    ) -> DaemonSetting {
        DaemonSetting(
            key: key, flag: nil, inFile: true, reload: reload, placeholder: "", defaultText: nil, meaning: "",
            expectation: "a list of names or ids, such as [\"alice\", 1001]",
            readTOML: { value in
                guard let array = value.array else { return nil }
                var names: [String] = []
                for element in array {
                    if let name = element.string {
                        names.append(name)
                    } else if let number = element.int, number >= 0 {
                        names.append(String(number))
                    } else {
                        return nil
                    }
                }
                return .names(names)
            },
            assign: { value, configuration, _ in
                if case .names(let names) = value { configuration[keyPath: path] = names }
            },
            check: check, describe: { "\($0[keyPath: path])" })
    }

    /// `check` with its wording for one setting.
    private static func bound(_ check: Check?, _ fail: @escaping (String) -> ConfigurationError)
        -> ((DaemonConfiguration) throws(ConfigurationError) -> Void)?
    {
        guard let check else { return nil }
        return { configuration throws(ConfigurationError) in try check(configuration, fail) }
    }

    /// A number of seconds in TOML: a float or an integer.
    private static func readSeconds(_ value: TOMLValueConvertible) -> SettingValue? {
        (value.double ?? value.int.map(Double.init)).map(SettingValue.seconds)
    }
}
