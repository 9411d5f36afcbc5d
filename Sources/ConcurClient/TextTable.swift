import ConcurProtocol

/// A table of aligned columns laid out to fit a width.
///
/// Each column has the width it was designed with; a flexible one (a pool's or a job's name)
/// gives up room down to its minimum, widest first, so that the row fits, and a text cell
/// longer than its column is cut with an ellipsis (numbers never are). A right-aligned column
/// followed by a left-aligned one is kept two spaces from it. The last column takes what is
/// left, cut at the width. Without a width (a pipe, a file) every column keeps its width and
/// the last is whole.
struct TextTable {
    enum Alignment {
        case left, right
    }

    struct Column {
        var title: String
        /// Columns including the padding before the next one.
        var width: Int
        var alignment: Alignment = .left
        /// The narrowest a flexible column may become; nil: it keeps `width`.
        var minimum: Int?

        static func left(_ title: String, _ width: Int, shrinksTo minimum: Int? = nil) -> Column {
            Column(title: title, width: width, alignment: .left, minimum: minimum)
        }

        static func right(_ title: String, _ width: Int) -> Column {
            Column(title: title, width: width, alignment: .right)
        }
    }

    var columns: [Column]
    /// Written before the header and before each row, in as many columns (such as the marker of
    /// the pool `top` shows).
    var indent = 0
    /// The last column, taking the rest of the line: its title.
    var last: String?

    /// The widths of `columns` for a line of at most `width` columns, the last column's room
    /// left at no less than `room` when the others can give it.
    func widths(fitting width: Int?, lastRoom room: Int = 12) -> [Int] {
        var widths = columns.map(\.width)
        guard let width else { return widths }
        var excess = indent + widths.reduce(0, +) + gaps + (last == nil ? 0 : 2 + room) - width
        while excess > 0 {
            // The widest flexible column still above its minimum gives one column.
            let candidates = columns.indices.filter { index in columns[index].minimum.map { widths[index] > $0 } ?? false }
            guard let widest = candidates.max(by: { widths[$0] < widths[$1] }) else { break }
            widths[widest] -= 1
            excess -= 1
        }
        return widths
    }

    /// Spaces between a right-aligned column and a left-aligned one after it.
    private func gap(before index: Int) -> Int {
        index > 0 && columns[index - 1].alignment == .right && columns[index].alignment == .left ? 2 : 0
    }

    private var gaps: Int { columns.indices.reduce(0) { $0 + gap(before: $1) } }

    /// The header and one line per row; `rows` hold a cell per column and, with `last`, one more.
    func lines(_ rows: [[String]], width: Int?, prefixes: [String]? = nil) -> [String] {
        let widths = widths(fitting: width)
        func line(_ cells: [String], prefix: String, isHeader: Bool = false) -> String {
            var text = rightPad(prefix, indent)
            for (index, column) in columns.enumerated() where index < cells.count {
                let room = widths[index]
                text += String(repeating: " ", count: gap(before: index))
                // A left-aligned cell keeps a space before the next column.
                text +=
                    column.alignment == .left
                    ? rightPad(TerminalText.cut(cells[index], to: max(1, room - 1)), room) : leftPad(cells[index], room)
            }
            if last != nil, cells.count > columns.count {
                // The header's last title shows whole or not at all.
                let cell = cells[columns.count]
                if !isHeader || width.map({ text.count + 2 + cell.count <= $0 }) ?? true { text += "  " + cell }
            }
            // Padding after the last cell would only be trailing blanks in a copy or a capture.
            while text.last == " " { text.removeLast() }
            return TerminalText.cut(text, to: width)
        }
        let header = columns.map(\.title) + (last.map { [$0] } ?? [])
        return [line(header, prefix: "", isHeader: true)]
            + rows.enumerated().map { index, cells in line(cells, prefix: prefixes?[index] ?? "") }
    }
}
