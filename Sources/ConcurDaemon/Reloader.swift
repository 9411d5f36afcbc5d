import ConcurCore
import ConcurProtocol
import ConcurRuntime
import Logging
import Synchronization
import Systemd

/// Applies a changed configuration file to the running daemon, for SIGHUP and `Reload()`:
/// RELOADING=1, the file read and checked again (with the command line's options on top, as at
/// start), the changes applied through the same paths as `Resize` and `SetModel`, then READY=1.
/// A configuration that does not pass its checks changes nothing.
///
/// One reload at a time: a second waits for the first.
final class Reloader: Sendable {
    /// What a reload did.
    struct Outcome: Sendable, Equatable {
        /// The settings changed, as `key: old -> new`.
        var applied: [String] = []
        /// Settings that differ but take effect only at the next start.
        var needRestart: [String] = []
    }

    private let supervisor: Supervisor
    private let notifier: SystemdNotifier
    private let logger: Logger
    private let logLevel: LogLevelControl
    private let load: @Sendable () throws(ConfigurationError) -> DaemonConfiguration
    private let refreshStatus: @Sendable () -> Void
    private let addPool: @Sendable (PoolName, Supervisor.Configuration, DaemonConfiguration) throws -> Void
    private let current: Mutex<DaemonConfiguration>
    private let accessChanged = Mutex<(@Sendable (AccessPolicy) -> Void)?>(nil)
    private let retentionChanged = Mutex<(@Sendable (DaemonConfiguration) -> Void)?>(nil)
    private let serial = ConditionLock()
    /// Seconds a reload waits for a new model to serve.
    static let switchTimeout = 120.0

    init(
        configuration: DaemonConfiguration, supervisor: Supervisor, notifier: SystemdNotifier, logger: Logger,
        logLevel: LogLevelControl, load: @escaping @Sendable () throws(ConfigurationError) -> DaemonConfiguration,
        refreshStatus: @escaping @Sendable () -> Void,
        addPool: @escaping @Sendable (PoolName, Supervisor.Configuration, DaemonConfiguration) throws -> Void
    ) {
        self.addPool = addPool
        current = Mutex(configuration)
        self.supervisor = supervisor
        self.notifier = notifier
        self.logger = logger
        self.logLevel = logLevel
        self.load = load
        self.refreshStatus = refreshStatus
    }

    /// Registers what applies a changed access policy (the control socket's check).
    func onAccessChange(_ apply: @escaping @Sendable (AccessPolicy) -> Void) {
        accessChanged.withLock { $0 = apply }
    }

    /// Registers what applies a changed retention (the journal's pruning).
    func onRetentionChange(_ apply: @escaping @Sendable (DaemonConfiguration) -> Void) {
        retentionChanged.withLock { $0 = apply }
    }

    /// The configuration in force.
    var configuration: DaemonConfiguration { current.withLock { $0 } }

    /// Reads the configuration again and applies what changed; throws (changing nothing) if it
    /// does not pass its checks or cannot be applied.
    func reload() throws(ConfigurationError) -> Outcome {
        try serial.withLock { () throws(ConfigurationError) -> Outcome in
            notifier.reloading()
            defer { notifier.ready(status: supervisor.statusLine()) }
            // A pool added now would not be drained with the others.
            guard supervisor.pool.read({ $0.intakeOpen }) else {
                throw ConfigurationError("concurd is shutting down: the configuration was not read again")
            }
            let new: DaemonConfiguration
            do throws(ConfigurationError) {
                new = try load()
            } catch {
                logger.error("reload refused, nothing changed: \(error.message)")
                throw error
            }
            let old = configuration
            var outcome = Outcome()
            for setting in DaemonSettings.all where setting.reload != .ignored {
                let (before, after) = (setting.describe(old), setting.describe(new))
                guard before != after else { continue }
                let change = "\(setting.key): \(before) -> \(after)"
                if setting.reload == .live { outcome.applied.append(change) } else { outcome.needRestart.append(change) }
            }

            try apply(new.supervisor, to: supervisor.pool)
            logLevel.level = new.logLevel
            if let apply = accessChanged.withLock({ $0 }) { apply(new.accessPolicy) }
            if let apply = retentionChanged.withLock({ $0 }) { apply(new) }
            var inForce = old.pools
            do throws(ConfigurationError) {
                try reloadPools(from: old, to: new, outcome: &outcome, inForce: &inForce)
            } catch {
                // What was applied before the failure stays, and the configuration in force says
                // so: the next reload compares against it.
                var partial = new
                partial.pools = inForce
                current.withLock { $0 = partial }
                refreshStatus()
                let applied = outcome.applied.isEmpty ? "nothing" : outcome.applied.joined(separator: ", ")
                logger.error("reload stopped part-way: \(error.message); applied before it: \(applied)")
                throw ConfigurationError(
                    "\(error.message); the reload stopped there, and what it applied before stays: \(applied)")
            }
            current.withLock { $0 = new }
            refreshStatus()
            let applied = outcome.applied.isEmpty ? "nothing changed" : outcome.applied.joined(separator: ", ")
            let later = outcome.needRestart.isEmpty ? "" : "; at the next start: \(outcome.needRestart.joined(separator: ", "))"
            logger.notice("reloaded: \(applied)\(later)")
            return outcome
        }
    }

    /// Applies one pool's configuration: limits first (a larger max_workers makes room for more
    /// workers), then size, then model.
    private func apply(_ configuration: Supervisor.Configuration, to pool: Pool) throws(ConfigurationError) {
        let named = pool.name == .default ? "the pool" : "pool \(pool.name)"
        do {
            var limits = configuration.limits
            limits.maxWorkers = max(limits.maxWorkers, pool.read { $0.target })
            try pool.updateConfiguration(limits)
            if configuration.workers != pool.read({ $0.target }) { _ = try pool.resize(to: configuration.workers) }
            try pool.updateConfiguration(configuration.limits)
        } catch {
            throw ConfigurationError("reload could not resize \(named): \(error); the previous limits stay")
        }
        if configuration.model != pool.read({ $0.model }) { try switchModel(pool, to: configuration.model) }
    }

    /// Adds the pools the new configuration names first (or takes back removed ones with their
    /// kept jobs), changes those whose settings differ, and removes those it no longer names:
    /// their workers retire after their running job, and their unfinished jobs are kept.
    ///
    /// `inForce` follows the pools as each step leaves them, for a reload that stops part-way.
    private func reloadPools(
        from old: DaemonConfiguration, to new: DaemonConfiguration, outcome: inout Outcome,
        inForce: inout [PoolConfiguration]
    ) throws(ConfigurationError) {
        let wanted = Dictionary(uniqueKeysWithValues: new.supervisorPools.map { ($0.name, $0.configuration) })
        let before = Dictionary(old.pools.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for pool in new.pools {
            let configuration = wanted[pool.name]!
            let running = try? supervisor.pool(named: pool.name)
            guard let running else {
                let kept = (try? supervisor.anyPool(named: pool.name)).map { $0.read { $0.acceptedWaiting } } ?? 0
                do {
                    try addPool(pool.name, configuration, new)
                } catch {
                    throw ConfigurationError("reload could not add pool \(pool.name): \(error)")
                }
                inForce.removeAll { $0.name == pool.name }
                inForce.append(pool)
                outcome.applied.append(
                    "pools.\(pool.name): added (\(pool.model.rawValue), \(pool.workers) worker\(pool.workers == 1 ? "" : "s"))"
                        + (kept > 0 ? "; the unfinished jobs it kept (\(kept)) run again" : ""))
                continue
            }
            let previous = before[pool.name]
            for (key, was, now) in [
                ("model", previous?.model.rawValue, pool.model.rawValue),
                ("workers", previous.map { "\($0.workers)" }, "\(pool.workers)"),
                ("max_queue", "\(previous?.maxQueue ?? old.maxQueue)", "\(pool.maxQueue ?? new.maxQueue)"),
            ] where was != now {
                outcome.applied.append("pools.\(pool.name).\(key): \(was ?? "?") -> \(now)")
            }
            try apply(configuration, to: running)
            inForce.removeAll { $0.name == pool.name }
            inForce.append(pool)
        }
        for name in supervisor.activeNames where name != .default && wanted[name] == nil {
            guard let pool = try? supervisor.pool(named: name) else { continue }
            supervisor.removePool(name)
            inForce.removeAll { $0.name == name }
            let (running, kept) = pool.read { ($0.runningCount, $0.acceptedWaiting) }
            outcome.applied.append(
                "pools.\(name): removed (\(running) running finish; \(kept) unfinished kept; add it back to run them)")
        }
    }

    /// A graceful switch, waited for until the new model serves.
    private func switchModel(_ pool: Pool, to model: ConcurrencyModel) throws(ConfigurationError) {
        let done = ConditionLock()
        let result = Mutex<SwitchOutcome?>(nil)
        do {
            _ = try pool.setModel(model, preempt: false) { outcome in
                done.withLock {
                    result.withLock { $0 = outcome }
                    done.broadcast()
                }
            }
        } catch {
            throw ConfigurationError("reload could not switch to the \(model.rawValue) model: \(error)")
        }
        let deadline = MonotonicClock.now() + UInt64(Self.switchTimeout * 1e9)
        let outcome = done.withLock { () -> SwitchOutcome? in
            while result.withLock({ $0 }) == nil {
                if !done.wait(untilMonotonic: deadline) { break }
            }
            return result.withLock { $0 }
        }
        switch outcome {
        case .serving, .unchanged: return
        case .failed(let reason): throw ConfigurationError("reload could not switch to the \(model.rawValue) model: \(reason)")
        case .superseded(let other):
            throw ConfigurationError("the switch to \(model.rawValue) was replaced by one to \(other.rawValue)")
        case .shuttingDown: throw ConfigurationError("concurd began shutting down during the reload")
        case nil:
            throw ConfigurationError(
                "the \(model.rawValue) model did not serve within \(Int(Self.switchTimeout)) s; the switch goes on")
        }
    }
}
