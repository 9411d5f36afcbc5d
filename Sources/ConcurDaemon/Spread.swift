/// What repeated runs of one measurement gave: the median and the range.
///
/// `concurd compare` claims a difference only where the ranges of two measurements do not
/// overlap (with three runs on a machine whose second core comes and goes, anything less is
/// noise) and the medians differ by more than 5%. A pure value.
package struct Spread: Sendable, Equatable {
    /// The middle value (the mean of the two middle ones for an even count).
    package var median: Double
    /// The smallest value.
    package var min: Double
    /// The largest value.
    package var max: Double
    /// How many values.
    package var count: Int

    /// The spread of `values`; all zero for none.
    package init(_ values: [Double]) {
        let sorted = values.sorted()
        count = sorted.count
        guard let first = sorted.first, let last = sorted.last else {
            (median, min, max) = (0, 0, 0)
            return
        }
        let middle = sorted.count / 2
        median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        min = first
        max = last
    }

    /// The smallest difference of medians worth a sentence: below it two figures are called
    /// the same even when their runs do not overlap (33.1 against 33.0 jobs/s matters to no one
    /// choosing a model).
    package static let negligible = 0.05

    /// Whether there is no difference worth claiming between the two: their ranges share a
    /// value, or their medians are within ``negligible`` of each other.
    package func overlaps(_ other: Spread) -> Bool { !isAbove(other) && !other.isAbove(self) }

    /// Whether this one is above `other` by a difference worth claiming: every value above
    /// every value of `other`, and the median more than ``negligible`` higher.
    package func isAbove(_ other: Spread) -> Bool { min > other.max && median > other.median * (1 + Self.negligible) }

    /// Half the range as a share of the median (0.05: within 5% either way).
    package var relativeHalfRange: Double { median > 0 ? (max - min) / 2 / median : 0 }
}
