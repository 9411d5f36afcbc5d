package import ArgumentParser
import ConcurProtocol
import Glibc

/// Runs concurd's and concurctl's command lines by the same conventions, on top of
/// swift-argument-parser's `main()`:
///
/// - options that every subcommand takes may come before the subcommand too
///   (`concurctl --socket S status`): ``hoisting(_:globals:subcommands:)`` moves them after it;
/// - an unknown subcommand is named, with the closest one ("did you mean");
/// - every error is one line `NAME: what is wrong` on standard error (then the usage lines
///   the parser gives), the parse errors the parser words as "Error: ..." included;
/// - a wrong argument exits with `usageStatus` (concurctl 64, concurd 2, as their help and
///   the README say), help and `--version` with 0.
///
/// Never returns. The body of a subcommand runs on the calling thread.
package enum CommandLineRun {
    /// Parses `arguments` for `Root` and runs the subcommand they name, or says what is wrong
    /// and exits; `globals` are the options (with whether each takes a value) that may come
    /// before the subcommand.
    package static func run<Root: ParsableCommand>(
        _ root: Root.Type, arguments: [String], usageStatus: Int32, globals: [String: Bool] = [:]
    ) -> Never {
        let name = Root.configuration.commandName ?? "command"
        let subcommands = Root.configuration.subcommands.map { $0._commandName }
        let arguments = hoisting(arguments, globals: globals, subcommands: Set(subcommands))
        if let first = arguments.first, !first.hasPrefix("-"), !subcommands.isEmpty, !subcommands.contains(first),
            first != "help", Root.configuration.defaultSubcommand == nil
        {
            let visible = Root.configuration.subcommands.filter { $0.configuration.shouldDisplay }.map { $0._commandName }
            let hint = suggestion(for: first, among: visible).map { "; did you mean '\($0)'?" } ?? ""
            StandardStreams.printError(
                "\(name): unknown command '\(first)'\(hint) (\(name) --help lists them)")
            exit(usageStatus)
        }
        do {
            var command = try Root.parseAsRoot(arguments)
            try command.run()
            exit(0)
        } catch {
            exit(report(error, of: Root.self, name: name, usageStatus: usageStatus))
        }
    }

    /// Prints what `error` says (help and the version on standard output) and returns the exit
    /// status it stands for.
    static func report<Root: ParsableCommand>(_ error: any Error, of root: Root.Type, name: String, usageStatus: Int32)
        -> Int32
    {
        // A subcommand that already said why (concurctl's failures) ends with its status alone.
        if let exit = error as? ExitCode { return exit.rawValue }
        let code = Root.exitCode(for: error)
        let message = Root.fullMessage(for: error)
        if code == .success {
            StandardStreams.printLine(message)
            return 0
        }
        var lines = message.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        while lines.last?.isEmpty == true { lines.removeLast() }
        let first = lines.first.map(Self.sentence) ?? "failed"
        StandardStreams.printError(([("\(name): \(first)")] + lines.dropFirst()).joined(separator: "\n"))
        return code == .validationFailure ? usageStatus : code.rawValue
    }

    /// The parser's first line without its `Error: ` and with a lower-case start, as concur's
    /// other messages read.
    package static func sentence(_ line: String) -> String {
        var text = line.hasPrefix("Error: ") ? String(line.dropFirst("Error: ".count)) : line
        if let first = text.first, first.isUppercase, text.dropFirst().first?.isLowercase == true {
            text = first.lowercased() + text.dropFirst()
        }
        return text
    }

    /// `arguments` with the `globals` given before the subcommand moved after its name, where
    /// the parser looks for them; anything else is left as it is. `globals` maps each option
    /// (`--socket`) to whether it takes a value (`--socket S` or `--socket=S`).
    package static func hoisting(_ arguments: [String], globals: [String: Bool], subcommands: Set<String>) -> [String] {
        var leading: [String] = []
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            let option = String(word.split(separator: "=", maxSplits: 1).first ?? "")
            guard let takesValue = globals[option] else { break }
            leading.append(word)
            if takesValue && !word.contains("=") && index + 1 < arguments.count {
                leading.append(arguments[index + 1])
                index += 1
            }
            index += 1
        }
        guard !leading.isEmpty, index < arguments.count, subcommands.contains(arguments[index]) else { return arguments }
        return [arguments[index]] + leading + arguments[(index + 1)...]
    }

    /// The candidate closest to `word` when it is close enough to be a slip (at most a third
    /// of its letters off, or a prefix of one): what "did you mean" offers; nil otherwise.
    package static func suggestion(for word: String, among candidates: [String]) -> String? {
        let word = word.lowercased()
        if let prefixed = candidates.filter({ $0.hasPrefix(word) && word.count >= 2 }).min(by: { $0.count < $1.count }) {
            return prefixed
        }
        let scored = candidates.map { ($0, distance(word, $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(1, word.count / 3) else { return nil }
        return best.0
    }

    /// The Damerau-Levenshtein distance (with transpositions) between `a` and `b`.
    package static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var table = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
                }
            }
        }
        return table[a.count][b.count]
    }
}
