import Testing

@testable import ConcurCore

@Suite("Stopping a child: asked, then SIGTERM, then SIGKILL")
struct ChildEscalationTests {
    static let grace = ChildEscalation.stopGrace

    func ready(at start: UInt64 = 0) -> ChildEscalation {
        var child = ChildEscalation(startedAt: start)
        #expect(child.childSaidHello() && !child.childSaidHello())
        return child
    }

    @Test("an interrupt the job honours in time sends nothing")
    func honoured() {
        var child = ready()
        child.interruptSent(job: 7, now: 100)
        #expect(child.deadlines(now: 100 + Self.grace - 1, running: 7) == nil)
        #expect(child.pollTimeout(now: 100) == Int32(Self.grace / 1_000_000 + 1))
        // The job ended (the page shows another one, or none): the interrupt is over.
        #expect(child.deadlines(now: 200, running: 8) == nil)
        #expect(child.deadlines(now: 100 + 5 * Self.grace, running: 8) == nil && !child.stopping)
        #expect(child.pollTimeout(now: 300) == -1)
    }

    @Test("an interrupt not honoured becomes SIGTERM after the grace, and SIGKILL one grace later")
    func escalates() {
        var child = ready()
        child.interruptSent(job: 7, now: 100)
        #expect(child.deadlines(now: 100 + Self.grace, running: 7) == .terminate)
        #expect(child.stopping && !child.killSent && !child.mayInterrupt)
        #expect(child.deadlines(now: 100 + Self.grace + 1, running: 7) == nil)
        #expect(child.pollTimeout(now: 100 + Self.grace) == Int32(Self.grace / 1_000_000 + 1))
        #expect(child.deadlines(now: 100 + 2 * Self.grace, running: 7) == .kill && child.killSent)
        #expect(child.deadlines(now: 100 + 9 * Self.grace, running: 7) == nil, "SIGKILL is sent once")
        #expect(child.pollTimeout(now: 100 + 9 * Self.grace) == -1)
    }

    @Test("an interrupt of whatever runs holds as long as any job runs")
    func anyJob() {
        var child = ready()
        child.interruptSent(job: nil, now: 0)
        #expect(child.deadlines(now: Self.grace, running: 3) == .terminate)
    }

    @Test("a child that never says hello is killed after the hello timeout; one that does is not")
    func hello() {
        var silent = ChildEscalation(startedAt: 1_000)
        #expect(silent.deadlines(now: 1_000 + ChildEscalation.helloTimeout - 1, running: nil) == nil)
        #expect(silent.pollTimeout(now: 1_000) == Int32(ChildEscalation.helloTimeout / 1_000_000 + 1))
        #expect(silent.deadlines(now: 1_000 + ChildEscalation.helloTimeout, running: nil) == .kill)
        #expect(silent.stopping && silent.killSent && !silent.ready)
        var polite = ready(at: 1_000)
        #expect(polite.deadlines(now: 1_000 + 2 * ChildEscalation.helloTimeout, running: nil) == nil)
    }

    @Test("a child that speaks nonsense is killed once, at once")
    func unreadable() {
        var child = ready()
        #expect(child.unreadable(now: 5) == .kill && child.stopping && child.killSent)
        #expect(child.unreadable(now: 6) == nil)
        var stopping = ready()
        stopping.interruptSent(job: 1, now: 0)
        #expect(stopping.deadlines(now: Self.grace, running: 1) == .terminate)
        #expect(stopping.unreadable(now: Self.grace + 1) == nil, "already being stopped: SIGKILL comes after the grace")
        #expect(stopping.deadlines(now: 2 * Self.grace, running: 1) == .kill)
    }

    @Test("a time from before the interrupt (another thread's clock read) never wraps around")
    func staleNow() {
        var child = ready()
        child.interruptSent(job: 1, now: 10 * Self.grace)
        #expect(child.deadlines(now: 5, running: 1) == nil)
        #expect(child.pollTimeout(now: 20 * Self.grace) == 1)
    }
}
