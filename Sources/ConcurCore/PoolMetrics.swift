package import ConcurProtocol
package import Histogram

/// Latency distributions of finished jobs, in nanoseconds (HdrHistogram, 3 significant digits).
package struct LatencyRecorder: Sendable {
    /// From submission to the start of the last attempt.
    package private(set) var queueWait: Histogram<UInt64>
    /// From start to finish of the last attempt.
    package private(set) var run: Histogram<UInt64>
    /// From submission to finish.
    package private(set) var endToEnd: Histogram<UInt64>
    /// The three latencies added up, in nanoseconds (clamped as recorded).
    private var sums: (queueWait: UInt64, run: UInt64, endToEnd: UInt64) = (0, 0, 0)

    /// The longest latency told apart from longer ones: one hour. Longer samples count as one hour.
    package static let highestTrackable: UInt64 = 3_600 * 1_000_000_000

    /// Empty distributions.
    package init() {
        queueWait = Histogram(
            lowestDiscernibleValue: 1, highestTrackableValue: Self.highestTrackable, numberOfSignificantValueDigits: .three)
        run = queueWait
        endToEnd = queueWait
    }

    /// The same latencies over the last 10 seconds.
    package private(set) var window = LatencyWindow()

    /// Adds one job's latencies (`finished` is now).
    package mutating func record(submitted: UInt64, started: UInt64, finished: UInt64) {
        let wait = Self.clamp(started &- submitted, started >= submitted)
        let ran = Self.clamp(finished &- started, finished >= started)
        let total = Self.clamp(finished &- submitted, finished >= submitted)
        _ = queueWait.record(wait)
        _ = run.record(ran)
        _ = endToEnd.record(total)
        sums = (sums.queueWait &+ wait, sums.run &+ ran, sums.endToEnd &+ total)
        window.record(queueWait: wait, run: ran, endToEnd: total, now: finished)
    }

    private static func clamp(_ value: UInt64, _ valid: Bool) -> UInt64 {
        valid ? min(value, highestTrackable) : 0
    }

    /// The three distributions as percentiles in seconds.
    package var summary: LatencySummary {
        LatencySummary(
            queueWait: Self.percentiles(queueWait, sum: sums.queueWait), run: Self.percentiles(run, sum: sums.run),
            endToEnd: Self.percentiles(endToEnd, sum: sums.endToEnd))
    }

    /// p50, p90, p99 and max in one pass over the recorded values, with the same meaning as
    /// `valueAtPercentile` (the highest value equivalent to the one the percentile's count
    /// reaches). `valueAtPercentile` is not inlinable: called generically it scans the whole
    /// count array once per percentile, which made a snapshot of the statistics cost milliseconds.
    ///
    /// `sum` is the samples' total in nanoseconds.
    static func percentiles<Count>(_ histogram: Histogram<Count>, sum: UInt64) -> Percentiles {
        let total = histogram.totalCount
        guard total > 0 else { return .empty }
        func seconds(_ nanoseconds: UInt64) -> Double { Double(nanoseconds) / 1e9 }
        let levels = [50.0, 90.0, 99.0]
        let targets = levels.map { level in max(1, UInt64((level.nextDown * Double(total) / 100).rounded(.up))) }
        var values = [UInt64](repeating: histogram.maxRecorded, count: levels.count)
        var next = 0
        for step in histogram.recordedValues() {
            while next < targets.count && step.totalCountToThisValue >= targets[next] {
                values[next] = max(min(step.value, histogram.maxRecorded), histogram.min)
                next += 1
            }
            if next == targets.count { break }
        }
        return Percentiles(
            count: Int(total), p50: seconds(values[0]), p90: seconds(values[1]), p99: seconds(values[2]),
            max: seconds(histogram.max), sum: seconds(sum))
    }
}

/// Latency distributions of the jobs that finished in the last ``seconds`` seconds: one small
/// histogram per second in a ring (2 significant digits: 1% resolution), merged when asked.
///
/// Recording touches only the current second's histograms; a slot is cleared when its second
/// comes round again, so nothing runs on a timer.
package struct LatencyWindow: Sendable {
    /// The window's length in seconds.
    package static let seconds = 10

    private struct Slot: Sendable {
        var second: UInt64 = .max
        var queueWait: Histogram<UInt32>
        var run: Histogram<UInt32>
        var endToEnd: Histogram<UInt32>
        /// The second's latencies added up, in nanoseconds.
        var sums: (queueWait: UInt64, run: UInt64, endToEnd: UInt64) = (0, 0, 0)
    }

    private var slots: [Slot]

    /// An empty window.
    package init() {
        let empty = Histogram<UInt32>(
            lowestDiscernibleValue: 1, highestTrackableValue: LatencyRecorder.highestTrackable,
            numberOfSignificantValueDigits: .two)
        slots = Array(repeating: Slot(queueWait: empty, run: empty, endToEnd: empty), count: Self.seconds)
    }

    /// Adds one job's latencies (nanoseconds) at monotonic time `now`.
    mutating func record(queueWait: UInt64, run: UInt64, endToEnd: UInt64, now: UInt64) {
        let second = now / 1_000_000_000
        let index = Int(second % UInt64(Self.seconds))
        if slots[index].second != second {
            slots[index].second = second
            slots[index].queueWait.reset()
            slots[index].run.reset()
            slots[index].endToEnd.reset()
            slots[index].sums = (0, 0, 0)
        }
        _ = slots[index].queueWait.record(queueWait)
        _ = slots[index].run.record(run)
        _ = slots[index].endToEnd.record(endToEnd)
        let sums = slots[index].sums
        slots[index].sums = (sums.queueWait &+ queueWait, sums.run &+ run, sums.endToEnd &+ endToEnd)
    }

    /// The percentiles of the jobs that finished in the window ending at `now`.
    package func summary(now: UInt64) -> LatencySummary {
        let second = now / 1_000_000_000
        let current = slots.filter { $0.second <= second && second - $0.second < UInt64(Self.seconds) }
        guard var merged = current.first else {
            return LatencySummary(queueWait: .empty, run: .empty, endToEnd: .empty)
        }
        for slot in current.dropFirst() {
            merged.queueWait.add(slot.queueWait)
            merged.run.add(slot.run)
            merged.endToEnd.add(slot.endToEnd)
            merged.sums = (
                merged.sums.queueWait &+ slot.sums.queueWait, merged.sums.run &+ slot.sums.run,
                merged.sums.endToEnd &+ slot.sums.endToEnd
            )
        }
        return LatencySummary(
            queueWait: LatencyRecorder.percentiles(merged.queueWait, sum: merged.sums.queueWait),
            run: LatencyRecorder.percentiles(merged.run, sum: merged.sums.run),
            endToEnd: LatencyRecorder.percentiles(merged.endToEnd, sum: merged.sums.endToEnd))
    }
}

/// Jobs finished per second over sliding windows of 1, 10 and 60 seconds.
///
/// The supervisor loop samples the finished total about once a second; a rate is the
/// difference between the total now and the sample closest to the window's start.
package struct ThroughputMeter: Sendable {
    private var samples: [(time: UInt64, total: Int)] = []
    private var next = 0
    private static let capacity = 64

    /// A meter with no samples.
    package init() {}

    /// Records the finished total at `time` (monotonic nanoseconds).
    package mutating func sample(at time: UInt64, total: Int) {
        if samples.count < Self.capacity {
            samples.append((time, total))
        } else {
            samples[next] = (time, total)
        }
        next = (next + 1) % Self.capacity
    }

    /// The rates at `time`, given the finished total then.
    package func throughput(at time: UInt64, total: Int) -> Throughput {
        Throughput(
            last1s: rate(window: 1_000_000_000, at: time, total: total),
            last10s: rate(window: 10_000_000_000, at: time, total: total),
            last60s: rate(window: 60_000_000_000, at: time, total: total), history: history(at: time))
    }

    /// The rate between each pair of consecutive samples of the last minute, oldest first.
    func history(at time: UInt64) -> [Double] {
        let recent = samples.filter { $0.time <= time && time - $0.time <= 61_000_000_000 }.sorted { $0.time < $1.time }
        return zip(recent, recent.dropFirst()).map { earlier, later in
            later.time > earlier.time ? Double(later.total - earlier.total) / (Double(later.time - earlier.time) / 1e9) : 0
        }
    }

    private func rate(window: UInt64, at time: UInt64, total: Int) -> Double {
        let past = samples.filter { $0.time < time }
        // The oldest sample inside the window, with 10% slack for the sampling jitter; without
        // one, the newest sample there is.
        let inside = past.filter { time - $0.time <= window + window / 10 }
        guard let start = inside.min(by: { $0.time < $1.time }) ?? past.max(by: { $0.time < $1.time }) else {
            return 0
        }
        return Double(total - start.total) / (Double(time - start.time) / 1e9)
    }
}
