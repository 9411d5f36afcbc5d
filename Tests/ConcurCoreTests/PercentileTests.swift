import ConcurProtocol
import ConcurTestSupport
import Testing

@testable import ConcurCore

@Suite("Latency percentiles")
struct PercentileTests {
    @Test("one pass gives what valueAtPercentile gives, for any shape of samples", arguments: [1, 7, 100, 5_000])
    func matchesValueAtPercentile(samples: Int) {
        var recorder = LatencyRecorder()
        var generator = SplitMix64(seed: UInt64(samples))
        for _ in 0..<samples {
            let started = generator.next() % 5_000_000
            recorder.record(submitted: 0, started: started, finished: started + generator.next() % 2_000_000_000)
        }
        let histogram = recorder.run
        let summary = recorder.summary.run
        #expect(summary.count == samples)
        #expect(summary.p50 == Double(histogram.valueAtPercentile(50)) / 1e9)
        #expect(summary.p90 == Double(histogram.valueAtPercentile(90)) / 1e9)
        #expect(summary.p99 == Double(histogram.valueAtPercentile(99)) / 1e9)
        #expect(summary.max == Double(histogram.max) / 1e9)
    }
}
