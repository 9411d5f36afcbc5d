import ConcurPostgres
import Testing

/// How deep a lane claims: about 0.2 s of work at the workers' pace, within its bounds.
@Suite("A lane's claim depth")
struct ClaimDepthTests {
    /// Feeds `depth` a pace of `perSecond` jobs taken, one call every `step` seconds from
    /// `start` for `seconds`, claiming what it wants; returns the time it stopped at.
    func run(_ depth: inout ClaimDepth, perSecond: Double, step: Double = 0.002, from start: Double = 0, for seconds: Double)
        -> Double
    {
        var buffered = 0
        var owed = 0.0
        var now = start
        while now < start + seconds {
            owed += perSecond * step
            let taken = min(buffered, Int(owed))
            owed -= Double(taken)
            buffered -= taken
            let wanted = depth.wanted(buffered: buffered, workers: 2, at: now)
            depth.claimed(wanted)
            buffered += wanted
            now += step
        }
        return now
    }

    @Test("starts at twice the workers, never under 4 nor over 4,096")
    func start() {
        #expect(ClaimDepth(workers: 2).depth == 4)
        #expect(ClaimDepth(workers: 8).depth == 16)
        #expect(ClaimDepth(workers: 10_000).depth == ClaimDepth.maximum)
        var depth = ClaimDepth(workers: 8)
        #expect(depth.wanted(buffered: 0, workers: 8, at: 0) == 16)
    }

    @Test("claims only once the buffer is down to half the depth, and tops it up")
    func half() {
        var depth = ClaimDepth(workers: 2)
        #expect(depth.wanted(buffered: 3, workers: 2, at: 0) == 0)
        #expect(depth.wanted(buffered: 2, workers: 2, at: 0.001) == 2)
    }

    @Test("short jobs: deepens to what the workers take in 0.2 s, up to 4,096")
    func deepens() {
        var depth = ClaimDepth(workers: 2)
        _ = run(&depth, perSecond: 5_000, for: 1)
        #expect((900...1_100).contains(depth.depth))
        _ = run(&depth, perSecond: 1_000_000, from: 1, for: 1)
        #expect(depth.depth == ClaimDepth.maximum)
    }

    @Test("long jobs: stays at twice the workers")
    func slowJobs() {
        var depth = ClaimDepth(workers: 2)
        _ = run(&depth, perSecond: 2, for: 5)
        #expect(depth.depth == 4)
    }

    @Test("shallows again once the jobs slow down")
    func shallows() {
        var depth = ClaimDepth(workers: 2)
        let end = run(&depth, perSecond: 1_000_000, for: 1)
        #expect(depth.depth == ClaimDepth.maximum)
        _ = run(&depth, perSecond: 100, from: end, for: 1)
        #expect(depth.depth <= 30)
    }

    @Test("jobs given back are not taken for the workers' pace")
    func givenBack() {
        var depth = ClaimDepth(workers: 2)
        #expect(depth.wanted(buffered: 0, workers: 2, at: 0) == 4)
        depth.claimed(4)
        // A claim of 60 long jobs, 52 of them given back: the pace stays at what the workers took.
        _ = depth.wanted(buffered: 0, workers: 2, at: 0.01)
        depth.claimed(60)
        depth.gaveBack(52)
        #expect(depth.wanted(buffered: 8, workers: 2, at: 0.1) == 0)
        // The 4 the workers took in 0.1 s, not the 56 that left.
        #expect(depth.depth == 8)
        // Without being told, the 52 would look like 520 jobs a second taken, and be claimed again.
        var told = ClaimDepth(workers: 2)
        _ = told.wanted(buffered: 0, workers: 2, at: 0)
        told.claimed(60)
        #expect(told.wanted(buffered: 8, workers: 2, at: 0.1) > 0)
    }

    @Test("follows a resize: more workers raise the floor at once")
    func resized() {
        var depth = ClaimDepth(workers: 2)
        #expect(depth.wanted(buffered: 0, workers: 64, at: 0) == 128)
    }

    @Test("a clock that goes back or stands still changes nothing")
    func clock() {
        var depth = ClaimDepth(workers: 2)
        _ = depth.wanted(buffered: 0, workers: 2, at: 10)
        // The queue had 3 of the 4 asked for: a short claim does not deepen the buffer.
        depth.claimed(3)
        #expect(depth.wanted(buffered: 0, workers: 2, at: 5) == 4)
        #expect(depth.wanted(buffered: 0, workers: 2, at: 5) == 4)
        #expect(depth.depth == 4)
    }

    @Test("workers that emptied a full claim before the next look deepen it fourfold at once, up to 4,096")
    func starved() {
        var depth = ClaimDepth(workers: 2)
        var sizes: [Int] = []
        for step in 0..<8 {
            let wanted = depth.wanted(buffered: 0, workers: 2, at: Double(step) * 0.001)
            sizes.append(wanted)
            depth.claimed(wanted)
        }
        #expect(sizes == [4, 16, 64, 256, 1_024, 4_096, 4_096, 4_096], "\(sizes)")
        // A claim that came back short (the queue ran out) stops the growth.
        var short = ClaimDepth(workers: 2)
        short.claimed(short.wanted(buffered: 0, workers: 2, at: 0))
        short.claimed(short.wanted(buffered: 0, workers: 2, at: 0.001) - 1)
        #expect(short.wanted(buffered: 0, workers: 2, at: 0.002) == 16)
        // An empty claim neither.
        short.claimed(0)
        #expect(short.wanted(buffered: 0, workers: 2, at: 0.003) == 16)
    }
}
