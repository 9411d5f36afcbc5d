import ConcurProtocol
import Glibc

/// A vertical axis of `concurd compare`'s chart: where a value is drawn, and its ticks.
///
/// Linear from 0 with round steps, or, when the values span more than a factor of 20 (concur's
/// models and Python's pools on one chart), logarithmic over whole decades, so that the slow
/// ones are not a flat line at 0. A pure value.
struct ChartAxis {
    /// The panel's top and bottom, in pixels.
    var top: Double
    var bottom: Double
    /// Whether the scale is logarithmic.
    var logarithmic: Bool
    /// The lowest value shown (0 on a linear axis, a power of ten on a log one) and the highest.
    var low: Double
    var high: Double
    /// The values ticked and labelled.
    var ticks: [Double]

    /// An axis for `values` (each at least 0) over the panel from `top` to `bottom`, reaching
    /// at least `floor` (the cores, on the CPU panel).
    init(values: [Double], top: Double, bottom: Double, atLeast floor: Double = 0, allowLog: Bool = false) {
        self.top = top
        self.bottom = bottom
        let highest = max(floor, values.max() ?? 1)
        let positive = values.filter { $0 > 0 }
        if allowLog, let smallest = positive.min(), highest / smallest > 20 {
            logarithmic = true
            low = pow(10, (log10(smallest)).rounded(.down))
            high = pow(10, (log10(highest)).rounded(.up))
            var decade = low
            var ticks: [Double] = []
            while decade <= high * 1.0001 {
                ticks.append(decade)
                decade *= 10
            }
            self.ticks = ticks
        } else {
            logarithmic = false
            let step = Comparison.niceStep(highest)
            low = 0
            high = Comparison.axisTop(highest, step: step)
            ticks = stride(from: 0.0, through: high + step / 1000, by: step).map { $0 }
        }
    }

    /// The vertical place of `value`, clamped to the axis.
    func y(_ value: Double) -> Double {
        let share =
            logarithmic
            ? (log10(Swift.min(Swift.max(value, low), high)) - log10(low)) / (log10(high) - log10(low))
            : Swift.min(value, high) / high
        return bottom - share * (bottom - top)
    }
}
