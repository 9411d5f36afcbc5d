package import ConcurProtocol

/// The checks every submitted job passes before any is accepted, whichever store keeps them: a
/// pool's own queue (``PoolStateMachine/submit(_:now:watch:allocate:foreign:)``) or a queue
/// several nodes share. Pure: the caller gives the time and the pool's rules.
package enum JobAdmission {
    /// Refuses the batch if a job is an `exec` job the pool does not allow, a crash the model
    /// cannot survive, or starts outside the window from now to a year ahead (`unixNow`: a
    /// second's slack, as a client's "now" reaches the daemon a little later).
    package static func check(_ specs: [JobSpec], allowExec: Bool, model: ConcurrencyModel, unixNow: () -> Double)
        throws(SubmitError)
    {
        for spec in specs {
            switch spec.kind {
            case .exec where !allowExec: throw .execDisabled
            case .crash(forced: false) where model != .processes: throw .crashRefused(model: model)
            default: continue
            }
        }
        for (index, spec) in specs.enumerated() {
            guard let startAt = spec.startAt else { continue }
            let now = unixNow()
            if startAt < now - 1 {
                throw .badStartTime(index: index, reason: "its start time lies \(formatDuration(now - startAt)) in the past")
            }
            if startAt > now + JobLimits.furthestStart {
                throw .badStartTime(index: index, reason: "its start time lies more than a year (366 days) ahead")
            }
        }
    }
}
