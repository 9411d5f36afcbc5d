package import ConcurProtocol

/// Where the last model switch stands.
package enum SwitchProgress: Sendable, Equatable {
    /// Workers of the new model are starting.
    case starting
    /// A worker of the new model serves.
    case serving
    /// No worker of the new model could be started; `reason` says why.
    case failed(reason: String)
    /// The daemon began shutting down first.
    case shuttingDown
}

/// The timing of the last model switch, for `stats` and the benchmark.
package struct SwitchRecord: Sendable, Equatable {
    /// The model switched from.
    package let from: ConcurrencyModel
    /// The model switched to.
    package let to: ConcurrencyModel
    /// Whether running jobs were preempted.
    package let preempt: Bool
    /// When the switch was asked for (monotonic nanoseconds).
    package let requestedAt: UInt64
    /// When the first worker of the new model served (was ready).
    package var firstServingAt: UInt64?
    /// When a worker of the new model started its first job.
    package var firstJobAt: UInt64?
    /// When the last worker of another model left.
    package var oldRetiredAt: UInt64?
}
