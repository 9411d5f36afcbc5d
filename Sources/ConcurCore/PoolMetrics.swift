public import ConcurProtocol
public import Histogram

/// Latency distributions of finished jobs, in nanoseconds (HdrHistogram, 3 significant digits).
public struct LatencyRecorder: Sendable {
    /// From submission to the start of the last attempt.
    public private(set) var queueWait: Histogram<UInt64>
    /// From start to finish of the last attempt.
    public private(set) var run: Histogram<UInt64>
    /// From submission to finish.
    public private(set) var endToEnd: Histogram<UInt64>

    /// The longest latency told apart from longer ones: one hour. Longer samples count as one hour.
    public static let highestTrackable: UInt64 = 3_600 * 1_000_000_000

    /// Empty distributions.
    public init() {
        queueWait = Histogram(
            lowestDiscernibleValue: 1, highestTrackableValue: Self.highestTrackable, numberOfSignificantValueDigits: .three)
        run = queueWait
        endToEnd = queueWait
    }

    /// Adds one job's latencies.
    public mutating func record(submitted: UInt64, started: UInt64, finished: UInt64) {
        _ = queueWait.record(Self.clamp(started &- submitted, started >= submitted))
        _ = run.record(Self.clamp(finished &- started, finished >= started))
        _ = endToEnd.record(Self.clamp(finished &- submitted, finished >= submitted))
    }

    private static func clamp(_ value: UInt64, _ valid: Bool) -> UInt64 {
        valid ? min(value, highestTrackable) : 0
    }

    /// The three distributions as percentiles in seconds.
    public var summary: LatencySummary {
        LatencySummary(queueWait: Self.percentiles(queueWait), run: Self.percentiles(run), endToEnd: Self.percentiles(endToEnd))
    }

    static func percentiles(_ histogram: Histogram<UInt64>) -> Percentiles {
        guard histogram.totalCount > 0 else { return .empty }
        func seconds(_ nanoseconds: UInt64) -> Double { Double(nanoseconds) / 1e9 }
        return Percentiles(
            count: Int(histogram.totalCount), p50: seconds(histogram.valueAtPercentile(50)),
            p90: seconds(histogram.valueAtPercentile(90)), p99: seconds(histogram.valueAtPercentile(99)),
            max: seconds(histogram.max))
    }
}

/// Jobs finished per second over sliding windows of 1, 10 and 60 seconds.
///
/// The supervisor loop samples the finished total about once a second; a rate is the
/// difference between the total now and the sample closest to the window's start.
public struct ThroughputMeter: Sendable {
    private var samples: [(time: UInt64, total: Int)] = []
    private var next = 0
    private static let capacity = 64

    /// A meter with no samples.
    public init() {}

    /// Records the finished total at `time` (monotonic nanoseconds).
    public mutating func sample(at time: UInt64, total: Int) {
        if samples.count < Self.capacity {
            samples.append((time, total))
        } else {
            samples[next] = (time, total)
        }
        next = (next + 1) % Self.capacity
    }

    /// The rates at `time`, given the finished total then.
    public func throughput(at time: UInt64, total: Int) -> Throughput {
        Throughput(
            last1s: rate(window: 1_000_000_000, at: time, total: total),
            last10s: rate(window: 10_000_000_000, at: time, total: total),
            last60s: rate(window: 60_000_000_000, at: time, total: total))
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
