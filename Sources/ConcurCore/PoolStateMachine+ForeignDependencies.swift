package import ConcurProtocol

/// What a pool expects of one job of another pool while submits that wait for it are under way.
struct ExpectedForeign: Sendable {
    /// Submits under way that expect it.
    var submits = 0
    /// How it ended, if its end arrived before those submits were accepted.
    var ended: JobState?
}

// Dependencies across pools: a job may run after jobs of the daemon's other pools. The rules of
// each pool stay its own; the daemon carries the messages between them (a job's end, in
// ``PoolAction/dependencyEnded(_:_:)``, to ``settleForeign(_:ended:now:)``), never holding two
// pools' locks at once.
extension PoolStateMachine {
    /// Whether the pool holds a record of job `id`.
    package func holds(_ id: JobID) -> Bool { table[id] != nil }

    /// For another pool whose job runs after `id`: the state of `id` if this pool holds it (nil
    /// otherwise). While it has not ended, its end will be announced with
    /// ``PoolAction/dependencyEnded(_:_:)``.
    package mutating func awaitFromOutside(_ id: JobID) -> JobState? {
        guard let state = table[id]?.state else { return nil }
        if !state.isFinal { awaitedOutside.insert(id) }
        return state
    }

    /// Notes that a submit is about to ask other pools for `ids` (before it does): an end of one
    /// of them that arrives before the submit is accepted is kept for it, so none is missed.
    /// The submit's `foreign` argument takes the expectation back, accepted or not.
    package mutating func expectForeign(_ ids: some Sequence<JobID>) {
        for id in ids { expectedForeign[id, default: ExpectedForeign()].submits += 1 }
    }

    /// Takes back the expectation of ``expectForeign(_:)`` for `ids` that no pool turned out to
    /// hold (the submit is refused for them).
    package mutating func forgetExpected(_ ids: some Sequence<JobID>) {
        for id in ids {
            guard let expected = expectedForeign[id] else { continue }
            if expected.submits <= 1 { expectedForeign[id] = nil } else { expectedForeign[id]?.submits -= 1 }
        }
    }

    /// Another pool's job `id` ended in `state` (it was announced with
    /// ``PoolAction/dependencyEnded(_:_:)``): jobs here that run after it go on or are cancelled.
    /// An end no job here waits for changes nothing.
    package mutating func settleForeign(_ id: JobID, ended state: JobState, now: UInt64) -> [PoolAction] {
        if expectedForeign[id] != nil { expectedForeign[id]?.ended = state }
        guard !dependencies.isEmpty, table[id] == nil else { return [] }
        return settleDependents(of: id, state: state, now: now)
    }

    /// The jobs of other pools that jobs here wait for (after a restore: to be registered with
    /// their pools).
    package var foreignDependencies: [JobID] {
        dependencies.awaited.filter { table[$0] == nil }
    }

    /// The states `foreign` gives, with the ends that arrived since they were read, the
    /// expectation of ``expectForeign(_:)`` taken back (a submit refused before it reached the
    /// rules calls it too).
    @discardableResult
    package mutating func takeExpected(_ foreign: [JobID: JobState]) -> [JobID: JobState] {
        var states = foreign
        for (id, state) in foreign {
            guard let expected = expectedForeign[id] else { continue }
            if !state.isFinal, let ended = expected.ended { states[id] = ended }
        }
        forgetExpected(foreign.keys)
        return states
    }
}
