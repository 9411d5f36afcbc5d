/// Jobs waiting for others (`after`) to end `done`, and the reverse links from each job to
/// those waiting for it.
///
/// Only jobs that still wait are held: a job leaves once the last of its jobs ended done (it is
/// then queued or scheduled) or one of them failed or was cancelled (it is then cancelled).
package struct JobDependencies: Sendable {
    /// For each waiting job, the jobs it still waits for.
    private var remaining: [JobID: Set<JobID>] = [:]
    /// For each job waited for, those waiting for it.
    private var dependents: [JobID: [JobID]] = [:]

    /// Nothing waiting.
    package init() {}

    /// Jobs waiting.
    package var count: Int { remaining.count }

    /// Whether no job waits.
    package var isEmpty: Bool { remaining.isEmpty }

    /// The jobs `id` still waits for, if it waits.
    package func waitingFor(_ id: JobID) -> Set<JobID>? { remaining[id] }

    /// Makes `id` wait for `others` (none of which may have ended).
    package mutating func add(_ id: JobID, waitingFor others: Set<JobID>) {
        remaining[id] = others
        for other in others { dependents[other, default: []].append(id) }
    }

    /// Settles those waiting for `id`, which just ended (`done` or not): returns the jobs that
    /// wait no more, in id order, each cancelled or released. A job released waits for nothing;
    /// one cancelled is taken off all its other waits too.
    package mutating func settle(_ id: JobID, done: Bool) -> (released: [JobID], cancelled: [JobID]) {
        guard let waiting = dependents.removeValue(forKey: id) else { return ([], []) }
        var released: [JobID] = []
        var cancelled: [JobID] = []
        for dependent in waiting.sorted() {
            guard var others = remaining[dependent] else { continue }
            others.remove(id)
            if !done {
                remove(dependent)
                cancelled.append(dependent)
            } else if others.isEmpty {
                remaining[dependent] = nil
                released.append(dependent)
            } else {
                remaining[dependent] = others
            }
        }
        return (released, cancelled)
    }

    /// Takes `id` off its waits (it was cancelled); returns whether it waited.
    @discardableResult
    package mutating func remove(_ id: JobID) -> Bool {
        guard let others = remaining.removeValue(forKey: id) else { return false }
        for other in others {
            dependents[other]?.removeAll { $0 == id }
            if dependents[other]?.isEmpty == true { dependents[other] = nil }
        }
        return true
    }

    /// Takes every waiting job, in id order.
    package mutating func removeAll() -> [JobID] {
        let all = remaining.keys.sorted()
        remaining.removeAll()
        dependents.removeAll()
        return all
    }

    /// The waiting jobs, in id order.
    package var ids: [JobID] { remaining.keys.sorted() }

    /// The jobs waited for, in id order.
    package var awaited: [JobID] { dependents.keys.sorted() }
}
