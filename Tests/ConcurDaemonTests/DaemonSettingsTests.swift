import ArgumentParser
import Foundation
import Testing

@testable import ConcurDaemon

/// The settings table against what is declared by hand elsewhere: `concurd serve`'s flags, the
/// flag values it hands to the merge, and the option table of docs/operations.md.
@Suite("Each setting declared once")
struct DaemonSettingsTests {
    /// `--flag` names in `concurd serve --help`, hidden ones included.
    static var declaredFlags: Set<String> {
        let help = ConcurdCommand.helpMessage(for: ConcurdCommand.Serve.self, includeHidden: true, columns: 400)
        let flags = help.split(whereSeparator: \.isWhitespace).compactMap { word -> String? in
            guard word.hasPrefix("--") else { return nil }
            let name = word.prefix { $0 != "<" && $0 != "," && $0 != "=" && $0 != ")" }
            return name.count > 2 ? String(name) : nil
        }
        // `--pool` is a list of pools, not one setting: ``PoolConfiguration`` reads it (see
        // ConfigurationTests), and docs/pools-and-jobs.md has a section of its own for pools.
        return Set(flags).subtracting(["--help", "--config", "--version", "--pool"])
    }

    @Test("every setting with a flag has it declared, and no declared flag lacks a setting")
    func flagsMatch() {
        let table = Set(DaemonSettings.all.compactMap(\.flag))
        #expect(Self.declaredFlags.count > 20, "parsed from the help: \(Self.declaredFlags.sorted())")
        #expect(
            table.subtracting(Self.declaredFlags).isEmpty, "in the table, not declared: \(table.subtracting(Self.declaredFlags))")
        #expect(
            Self.declaredFlags.subtracting(table).isEmpty, "declared, not in the table: \(Self.declaredFlags.subtracting(table))")
    }

    @Test("where `concurd serve --help` states a number as a flag's default, it is the table's")
    func helpDefaults() {
        let help = ConcurdCommand.helpMessage(for: ConcurdCommand.Serve.self, includeHidden: true, columns: 400)
        // An option's entry starts at its flag, its help may wrap onto the lines below.
        var entries: [String] = []
        for line in help.split(separator: "\n") {
            if line.hasPrefix("  --") {
                entries.append(String(line))
            } else if line.hasPrefix("      "), !entries.isEmpty {
                entries[entries.count - 1] += " " + line.trimmingCharacters(in: .whitespaces)
            }
        }
        var checked = 0
        for line in entries {
            guard let flag = line.split(separator: " ").first(where: { $0.hasPrefix("--") }).map(String.init),
                let setting = DaemonSettings.all.first(where: { $0.flag == flag }),
                let range = line.range(of: #"default \d+"#, options: .regularExpression)
            else { continue }
            let stated = String(line[range].dropFirst("default ".count))
            #expect(setting.defaultText == stated, "\(flag): the help says \(stated), the table \(setting.defaultText ?? "-")")
            checked += 1
        }
        #expect(checked >= 10, "found \(checked) stated defaults")
    }

    @Test("every flag given reaches the merge under its setting's key")
    func givenFlags() throws {
        var arguments: [String] = []
        for setting in DaemonSettings.all {
            guard let flag = setting.flag else { continue }
            switch setting.placeholder {
            case "": arguments.append(flag)
            case "PATH", "DIR", "FILE": arguments += [flag, "/tmp/x"]
            case "M", "L": arguments += [flag, setting.expectation.split(separator: "\"")[1].description]
            default: arguments += [flag, "2"]
            }
        }
        let serve = try ConcurdCommand.Serve.parse(arguments)
        let keys = Set(DaemonSettings.all.filter { $0.flag != nil }.map(\.key))
        #expect(Set(serve.givenFlags.keys) == keys, "\(Set(serve.givenFlags.keys).symmetricDifference(keys))")
    }

    @Test("every key a file may set refuses a value of the wrong type, naming the key and what it must be")
    func wrongTypes() {
        for key in DaemonSettings.fileKeys {
            var configuration = DaemonConfiguration()
            #expect {
                try configuration.apply(toml: "\(key) = { nested = 1 }", file: "/etc/c.toml")
            } throws: { error in
                "\(error)".hasPrefix("/etc/c.toml: \(key) must be ")
            }
            #expect(configuration == DaemonConfiguration(), "\(key): nothing changes")
        }
    }

    @Test("keys docs/operations.md's configuration section shows are the table's, and its option table is generated from it")
    func readme() throws {
        let root = String(#filePath).split(separator: "/").dropLast(3).joined(separator: "/")
        let readme = try String(contentsOfFile: "/" + root + "/docs/operations.md", encoding: .utf8)
        #expect(readme.contains(DaemonSettings.markdownTable + "\n"), "regenerate it: \n\(DaemonSettings.markdownTable)")
        let example = try String(contentsOfFile: "/" + root + "/systemd/concurd.toml", encoding: .utf8)
        for line in example.split(separator: "\n") where line.contains("=") {
            let key = line.drop { $0 == "#" || $0 == " " }.prefix { $0 != " " && $0 != "=" }
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0 == "_" }) else { continue }
            #expect(DaemonSettings.fileKeys.contains(String(key)), "systemd/concurd.toml names '\(key)', which no setting has")
        }
    }

    @Test("the shipped systemd/concurd.toml sets every value it names to the built-in default")
    func shippedFileIsTheDefaults() throws {
        let root = String(#filePath).split(separator: "/").dropLast(3).joined(separator: "/")
        let path = "/" + root + "/systemd/concurd.toml"
        let example = try String(contentsOfFile: path, encoding: .utf8)
        var configuration = DaemonConfiguration()
        try configuration.apply(toml: example, file: path)
        #expect(configuration == DaemonConfiguration(), "systemd/concurd.toml differs from the defaults")
        // The commented-out examples parse too, once uncommented (the pools' example as well).
        let uncommented = example.split(separator: "\n").map { line in
            let body = line.dropFirst(2)
            let key = body.prefix { $0.isLetter || $0 == "_" }
            let example = line.hasPrefix("# ") && !key.isEmpty && body.dropFirst(key.count).hasPrefix(" = ")
            return example || line.hasPrefix("# [") ? body : line
        }.joined(separator: "\n")
        var all = DaemonConfiguration()
        try all.apply(toml: uncommented, file: path)
        #expect(all.pools.map(\.name.rawValue) == ["cpu", "io"] && all.allowedUsers == ["alice"])
    }

    @Test("a reload compares every setting but the test hooks: each is applied live or named for a restart")
    func reloadCoverage() {
        let compared = DaemonSettings.all.filter { $0.reload != .ignored }.map(\.key)
        #expect(Set(compared) == Set(DaemonSettings.fileKeys).subtracting(["test_hooks"]))
        #expect(DaemonSettings.all.filter { $0.reload == .restart }.map(\.key).contains("socket"))
    }
}
