import ArgumentParser

/// Job ids as one command-line word gives them: `12`, `12,15`, `10-20` (a range), or a mix
/// such as `3,10-20,40`. A range spans at most ``maxRange`` ids; whether each id is at least 1
/// is the command's check (it names the id).
struct JobIDWord: ExpressibleByArgument, Sendable {
    /// The ids, in the order given.
    let ids: [Int64]

    /// The most ids one range gives (what one call may name).
    static let maxRange = 10_000

    init?(argument: String) {
        var ids: [Int64] = []
        for part in argument.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            guard let low = Int64(bounds[0]) else { return nil }
            guard bounds.count == 2 else {
                ids.append(low)
                continue
            }
            guard let high = Int64(bounds[1]), low <= high, high - low < Int64(Self.maxRange) else { return nil }
            ids += low...high
        }
        self.ids = ids
    }

    /// Runs of two or more plain ids in `arguments` (after the subcommand, and not the value of
    /// one of `valueOptions`) joined into one word: swift-argument-parser takes a list of
    /// positional values in time quadratic in its length (10,000 ids cost half a minute), one
    /// word in linear time. Nothing after `--` is touched.
    static func compacting(_ arguments: [String], valueOptions: Set<String>) -> [String] {
        var result: [String] = []
        var run: [String] = []
        func flush() {
            if !run.isEmpty { result.append(run.joined(separator: ",")) }
            run = []
        }
        for (index, word) in arguments.enumerated() {
            if word == "--" {
                flush()
                result += arguments[index...]
                return result
            }
            let isValue = index > 0 && valueOptions.contains(arguments[index - 1])
            if index > 0, !isValue, !word.isEmpty, word.allSatisfy(\.isNumber), word.allSatisfy(\.isASCII) {
                run.append(word)
            } else {
                flush()
                result.append(word)
            }
        }
        flush()
        return result
    }
}

extension Array where Element == JobIDWord {
    /// Every id the words give, in order.
    var ids: [Int64] { flatMap(\.ids) }
}
