import ConcurProtocol
import ConcurTestSupport
import Testing

@testable import ConcurCore

@Suite("A worker's busy share over the last ten seconds")
struct RecentBusyTests {
    static let second: UInt64 = 1_000_000_000

    @Test("fully busy after an idle hour reads as busy, not as a share of the worker's life")
    func busyAfterIdle() {
        var window = RecentBusy()
        let hour = 3_600 * Self.second
        // Back-to-back jobs of 250 ms for the last 20 s of the hour.
        var time = hour - 20 * Self.second
        while time < hour {
            window.record(from: time, to: time + Self.second / 4)
            time += Self.second / 4
        }
        #expect(window.fraction(now: hour, createdAt: 0, runningSince: nil) > 0.99)
        // Ten seconds later, idle: nothing of those jobs is left in the window.
        #expect(window.fraction(now: hour + 10 * Self.second, createdAt: 0, runningSince: nil) == 0)
        // Half the window idle, half busy.
        #expect(abs(window.fraction(now: hour + 5 * Self.second, createdAt: 0, runningSince: nil) - 0.5) < 0.11)
    }

    @Test("a job still running counts from its start; a young worker's window starts at its birth")
    func runningAndYoung() {
        let window = RecentBusy()
        let now = 100 * Self.second
        // On a second's boundary the window holds the nine whole seconds before it.
        #expect(abs(window.fraction(now: now, createdAt: 0, runningSince: now - 3 * Self.second) - 3.0 / 9) < 1e-9)
        #expect(window.fraction(now: now, createdAt: 0, runningSince: now - 60 * Self.second) == 1)
        // Born two seconds ago and busy for one of them.
        #expect(window.fraction(now: now, createdAt: now - 2 * Self.second, runningSince: now - Self.second) == 0.5)
        #expect(window.fraction(now: now, createdAt: now, runningSince: nil) == 0)
        #expect(window.fraction(now: now, createdAt: now, runningSince: now) == 1)
    }

    @Test("a run longer than the window counts only its last ten seconds; a late or empty record changes nothing wrong")
    func longLateAndEmpty() {
        var window = RecentBusy()
        let now = 1_000 * Self.second
        window.record(from: now - 500 * Self.second, to: now)
        #expect(window.fraction(now: now, createdAt: 0, runningSince: nil) == 1)
        // A record that ended before the window, received late, adds nothing.
        var late = RecentBusy()
        late.record(from: now - Self.second, to: now)
        late.record(from: now - 60 * Self.second, to: now - 30 * Self.second)
        #expect(abs(late.fraction(now: now, createdAt: 0, runningSince: nil) - 1.0 / 9) < 1e-9)
        late.record(from: now, to: now)
        late.record(from: now, to: now - Self.second)
        #expect(abs(late.fraction(now: now, createdAt: 0, runningSince: nil) - 1.0 / 9) < 1e-9)
        // Overlapping records cannot make a second more than fully busy.
        var twice = RecentBusy()
        twice.record(from: now - Self.second, to: now)
        twice.record(from: now - Self.second, to: now)
        #expect(twice.fraction(now: now, createdAt: now - Self.second, runningSince: nil) <= 1)
    }
}

@Suite("The worker rows a pool reports")
struct WorkerRowBusyTests {
    @Test("a worker busy for the last ten seconds after an idle hour: recent busy near 1, busy over its life near 0")
    func rowAfterIdleHour() throws {
        let second = RecentBusyTests.second
        var pool = try PoolFixture.pool(workers: 1)
        let hour = 3_600 * second
        var time = hour - 12 * second
        _ = try pool.submit(PoolFixture.specs(12), now: time)
        for _ in 0..<12 {
            let job = try #require(PoolFixture.take(&pool, 1, now: time).first)
            time += second
            _ = pool.finish(worker: 1, job: job.id, outcome: PoolFixture.ok, now: time)
        }
        let row = try #require(pool.workerRows(now: hour).first)
        #expect(row.busyFraction < 0.01)
        #expect(try #require(row.recentBusyFraction) > 0.99)
        let later = try #require(pool.workerRows(now: hour + 20 * second).first)
        #expect(later.recentBusyFraction == 0)
    }
}
