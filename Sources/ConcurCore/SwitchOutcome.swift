package import ConcurProtocol

/// How a model switch ended for the one who asked for it.
package enum SwitchOutcome: Sendable, Equatable {
    /// A worker of the new model serves; the switch's timing so far.
    case serving(SwitchRecord)
    /// The pool already ran that model.
    case unchanged
    /// Another switch, to `by`, was asked for before this one's model served.
    case superseded(by: ConcurrencyModel)
    /// No worker of the model could be started; `reason` says why.
    case failed(reason: String)
    /// The daemon began shutting down first.
    case shuttingDown
}
