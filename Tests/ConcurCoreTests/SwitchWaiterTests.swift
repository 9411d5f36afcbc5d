import ConcurProtocol
import ConcurTestSupport
import Testing

@testable import ConcurCore

/// Who is told what, and when, about a switch they asked for: decided by the rules, carried out
/// by the pool (which only keeps the completions by ticket).
@Suite("Switch waiters")
struct SwitchWaiterTests {
    /// A pool of one idle thread worker asked to switch to processes: the old worker retires
    /// and leaves; worker 2 (processes) is started in its place. Returns the first ticket.
    func switching(_ pool: inout PoolStateMachine, to model: ConcurrencyModel = .processes) throws -> Int {
        let (previous, ticket, actions) = try pool.requestSwitch(to: model, preempt: false, now: 10)
        #expect(previous == .threads && actions == [.wake(1)])
        #expect(pool.nextAssignment(for: 1, now: 11) == .retire)
        #expect(pool.workerExited(1, exit: .retired, now: 12) == [.startWorker(2, model, delay: 0)])
        #expect(pool.settleSwitches(now: 12).isEmpty)
        return ticket
    }

    func settled(_ actions: [PoolAction]) -> [Int: SwitchOutcome] {
        var outcomes: [Int: SwitchOutcome] = [:]
        for case .settleSwitch(let ticket, let outcome) in actions { outcomes[ticket] = outcome }
        return outcomes
    }

    @Test("a switch to the model already running settles at once, unchanged")
    func unchanged() throws {
        var pool = try PoolFixture.pool(workers: 1)
        let (previous, ticket, actions) = try pool.requestSwitch(to: .threads, preempt: false, now: 1)
        #expect(previous == .threads && actions == [.settleSwitch(ticket: ticket, .unchanged)])
        #expect(pool.switches == 0)
    }

    @Test("callers of the same switch all wait for the first worker of the new model to serve")
    func joined() throws {
        var pool = try PoolFixture.pool(workers: 1)
        let first = try switching(&pool)
        let (_, second, actions) = try pool.requestSwitch(to: .processes, preempt: false, now: 13)
        #expect(actions.isEmpty && second != first)
        pool.workerReady(2, osID: 200, now: 20)
        let outcomes = settled(pool.settleSwitches(now: 20))
        guard case .serving(let record)? = outcomes[first] else {
            Issue.record("the first caller was told \(String(describing: outcomes[first]))")
            return
        }
        #expect(record.from == .threads && record.to == .processes && record.firstServingAt == 20)
        #expect(outcomes[second] == outcomes[first] && outcomes.count == 2)
        #expect(pool.settleSwitches(now: 21).isEmpty)
    }

    @Test("a switch to another model supersedes the one under way, whose caller is told at once")
    func superseded() throws {
        var pool = try PoolFixture.pool(workers: 1)
        let first = try switching(&pool)
        let (previous, _, actions) = try pool.requestSwitch(to: .tasks, preempt: false, now: 13)
        #expect(previous == .processes)
        #expect(settled(actions) == [first: .superseded(by: .tasks)])
        pool.workerReady(2, osID: 200, now: 14)
        #expect(pool.settleSwitches(now: 14).isEmpty, "worker 2 runs processes: the tasks switch still waits")
    }

    @Test("a switch whose model cannot start goes back to the previous model, and says so")
    func fallback() throws {
        var pool = try PoolFixture.pool(workers: 1)
        let ticket = try switching(&pool)
        // Worker 2 could not be started at all: none of either model is left.
        _ = pool.abandonWorker(2, now: 13)
        let actions = pool.settleSwitches(now: 13)
        guard case .failed(let reason)? = settled(actions)[ticket] else {
            Issue.record("the caller was told \(String(describing: settled(actions)[ticket]))")
            return
        }
        #expect(reason.contains("no processes worker could be started"))
        #expect(reason.hasSuffix("; the pool went back to the threads model"))
        #expect(pool.model == .threads && pool.switches == 2)
    }

    @Test("a switch that cannot start and has no model to go back to fails without falling back")
    func noFallback() throws {
        var pool = try PoolFixture.pool(workers: 1)
        let ticket = try switching(&pool)
        pool.events.fatal[.threads] = "threads could not start"
        _ = pool.abandonWorker(2, now: 13)
        let outcome = settled(pool.settleSwitches(now: 13))[ticket]
        #expect(outcome == .failed(reason: "no processes worker could be started"))
        #expect(pool.model == .processes && pool.switches == 1)
    }

    @Test("a drain settles the waiting callers: shutting down")
    func shutdown() throws {
        var pool = try PoolFixture.pool(workers: 1)
        let ticket = try switching(&pool)
        _ = pool.beginDrain(now: 13)
        #expect(settled(pool.settleSwitches(now: 13)) == [ticket: .shuttingDown])
        #expect(throws: SwitchError.shuttingDown) { try pool.requestSwitch(to: .tasks, preempt: false, now: 14) }
    }

    @Test("a retiring busy child keeps its jobs until it gives them back; an in-process worker's are taken at once")
    func takeBack() throws {
        var threads = try PoolFixture.pool(workers: 1)
        _ = try threads.submit(PoolFixture.specs(3), now: 0)
        #expect(PoolFixture.take(&threads, 1, limit: 3).count == 3)
        #expect(threads.beginDrain(now: 1) == [.wake(1), .release(1)])
        var processes = try PoolFixture.pool(workers: 1, model: .processes)
        _ = try processes.submit(PoolFixture.specs(3), now: 0)
        #expect(PoolFixture.take(&processes, 1, limit: 3).count == 3)
        #expect(processes.beginDrain(now: 1) == [.wake(1)])
    }
}
