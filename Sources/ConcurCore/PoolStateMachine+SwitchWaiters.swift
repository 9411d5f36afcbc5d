package import ConcurProtocol

// Those who asked for a switch and wait until it serves, fails, is superseded or meets a
// shutdown: the pool keeps their completions by ticket, the rules decide when each is told.
extension PoolStateMachine {
    /// A caller of ``requestSwitch(to:preempt:now:)`` waiting for the new model to serve.
    struct SwitchWaiter: Sendable, Equatable {
        let ticket: Int
        let model: ConcurrencyModel
    }

    /// Switches to `model` (see ``setModel(_:preempt:now:)``) for a caller who waits for the
    /// outcome: it is told, through a `.settleSwitch` action with the returned ticket, once a
    /// worker of the new model serves, at once if the pool already runs `model` (or when the
    /// switch already under way to it settles), or when the switch is superseded by one to
    /// another model, fails, or meets a shutdown.
    package mutating func requestSwitch(to model: ConcurrencyModel, preempt: Bool, now: UInt64) throws(SwitchError)
        -> (previous: ConcurrencyModel, ticket: Int, actions: [PoolAction])
    {
        var (previous, actions) = try setModel(model, preempt: preempt, now: now)
        let ticket = nextSwitchTicket
        nextSwitchTicket += 1
        guard previous != model else {
            if switchProgress == .starting {
                // A switch to this model is under way: its caller waits like the first one.
                switchWaiters.append(SwitchWaiter(ticket: ticket, model: model))
            } else {
                actions.append(.settleSwitch(ticket: ticket, .unchanged))
            }
            return (previous, ticket, actions)
        }
        for waiter in switchWaiters where waiter.model != model {
            actions.append(.settleSwitch(ticket: waiter.ticket, .superseded(by: model)))
        }
        switchWaiters.removeAll { $0.model != model }
        switchWaiters.append(SwitchWaiter(ticket: ticket, model: model))
        return (previous, ticket, actions + settleSwitches(now: now))
    }

    /// Tells the waiters of a switch that has settled how it ended. A switch whose model could
    /// not start goes back to the model it came from (unless that one cannot start either), so
    /// the pool keeps running jobs; its waiters learn both.
    package mutating func settleSwitches(now: UInt64) -> [PoolAction] {
        var actions: [PoolAction] = []
        let outcome: SwitchOutcome
        switch switchProgress {
        case .starting: return []
        case .serving:
            guard !switchWaiters.isEmpty else { return [] }
            outcome = lastSwitch.map { .serving($0) } ?? .unchanged
        case .failed(var reason):
            if let record = lastSwitch, events.fatal[record.from] == nil,
                let (_, fallback) = try? setModel(record.from, preempt: false, now: now)
            {
                reason += "; the pool went back to the \(record.from.rawValue) model"
                actions = fallback
            }
            outcome = .failed(reason: reason)
        case .shuttingDown: outcome = .shuttingDown
        }
        actions += switchWaiters.map { .settleSwitch(ticket: $0.ticket, outcome) }
        switchWaiters.removeAll()
        return actions
    }
}
