import Foundation
import Testing

/// The manual pages scripts/install installs, against the command lines they describe.
@Suite("Manual pages")
struct ManualPageTests {
    /// The page rendered as man(1) shows it, wide enough that no option is broken across lines.
    static func rendered(_ page: String) throws -> String {
        let path = Binaries.packageRoot.appendingPathComponent("docs/man/\(page)").path
        let result = try runCommand(
            URL(fileURLWithPath: "/usr/bin/env"), ["MANWIDTH=250", "MANPAGER=cat", "man", "-l", path])
        try #require(result.status == 0, "man -l \(path): \(result)")
        return result.stdout
    }

    /// The long options `--help` lists.
    static func options(_ help: String) -> Set<String> {
        var found = Set<String>()
        for line in help.split(separator: "\n") where line.hasPrefix("  -") {
            for word in line.split(separator: " ") where word.hasPrefix("--") {
                // `--python,` and `--plot=<plot>` name `--python` and `--plot`; the dashes stay
                // (trimming them made `python` match any mention of Python).
                var option = String(word.split(separator: "=").first ?? word)
                while let last = option.last, last == "," || last == "." || last == ")" { option.removeLast() }
                found.insert(option)
            }
        }
        found.subtract(["--help", "--version", "--"])
        return found
    }

    @Test("concurctl(1) has every subcommand and every option; concurd(8) every option of serve and compare")
    func complete() throws {
        let concurctl = try Self.rendered("concurctl.1")
        let subcommands = [
            "submit", "wait", "cancel", "resize", "model", "pause", "resume", "reload", "shutdown", "status",
            "stats", "top", "jobs", "logs", "bridge",
        ]
        for subcommand in subcommands {
            let help = try runCommand(Binaries.concurctl, [subcommand, "--help"]).stdout
            let lines = concurctl.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(lines.contains { $0 == subcommand || $0.hasPrefix("\(subcommand)  ") }, "no entry for \(subcommand)")
            for option in Self.options(help) {
                #expect(
                    concurctl.contains(option),
                    "concurctl \(subcommand) \(option) is missing from docs/man/concurctl.1: run scripts/generate-manuals")
            }
        }
        let concurd = try Self.rendered("concurd.8")
        for subcommand in ["serve", "compare"] {
            for option in Self.options(try runCommand(Binaries.concurd, [subcommand, "--help"]).stdout) {
                #expect(
                    concurd.contains(option),
                    "concurd \(subcommand) \(option) is missing from docs/man/concurd.8: run scripts/generate-manuals")
            }
        }
        // The hidden helpers are not for people.
        #expect(!concurd.contains("__worker") && !concurd.contains("__guard"))
    }
}
