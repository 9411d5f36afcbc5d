import CConcurShims
import Glibc

/// The number of columns `concurctl`'s tables and sentences are laid out for.
///
/// `COLUMNS`, when it holds a whole number, wins (as for `ls` and `ps`); otherwise the width of
/// the terminal standard output is; a pipe or a file gets whole lines (no limit), so that
/// `grep` sees every word. Read once per command; `top` reads the terminal's size at each
/// redraw instead.
package enum TerminalWidth {
    /// The narrowest layout: below it, tables would be more ellipsis than text.
    package static let minimum = 40

    /// The width for this process's standard output, or nil for no limit.
    package static func current() -> Int? {
        var rows: Int32 = 0
        var columns: Int32 = 0
        if isatty(1) == 1 { concur_terminal_size(1, &rows, &columns) }
        return resolve(columns: getenv("COLUMNS").map { String(cString: $0) }, terminal: columns > 0 ? Int(columns) : nil)
    }

    /// The width given `COLUMNS` (nil when unset) and the terminal's width (nil when standard
    /// output is not a terminal). A `COLUMNS` that is not a positive whole number is ignored,
    /// as the shells that set it expect; a narrow one is raised to ``minimum``.
    package static func resolve(columns: String?, terminal: Int?) -> Int? {
        if let columns, let value = Int(columns.trimmingSpaces), value > 0 { return max(minimum, value) }
        return terminal.map { max(minimum, $0) }
    }
}

extension String {
    fileprivate var trimmingSpaces: Substring {
        let start = firstIndex { $0 != " " } ?? endIndex
        let end = lastIndex { $0 != " " }.map { index(after: $0) } ?? start
        return self[start..<max(start, end)]
    }
}
