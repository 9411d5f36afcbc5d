package import ConcurProtocol

/// A call named a pool the daemon does not run: never configured, or removed by a reload
/// (`removed`: it still holds jobs, which can be listed and cancelled, but takes no work).
package struct UnknownPoolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name asked for.
    package let name: PoolName
    /// Whether a pool of that name exists but was removed.
    package let removed: Bool
    /// The pools that take work, in order.
    package let pools: [PoolName]

    /// The error for `name`.
    package init(name: PoolName, removed: Bool, pools: [PoolName]) {
        self.name = name
        self.removed = removed
        self.pools = pools
    }

    /// The text shown to people: the name, and the pools that take work.
    package var description: String {
        let list = pools.map(\.rawValue).joined(separator: ", ")
        return removed
            ? "pool \(name) was removed from the configuration and takes no work (its kept jobs can be listed and cancelled); pools: \(list)"
            : "no pool is named \(name); pools: \(list)"
    }
}
