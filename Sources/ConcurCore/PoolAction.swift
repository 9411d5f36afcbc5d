package import ConcurProtocol

/// What the caller of a ``PoolStateMachine`` transition must do next, outside the state.
package enum PoolAction: Sendable, Equatable {
    /// Start a worker of `model` with this id after `delay` seconds (0: at once; more after a
    /// worker of that model died, as backoff).
    case startWorker(WorkerID, ConcurrencyModel, delay: Double)
    /// Wake this worker: there are jobs for it, or it must retire.
    case wake(WorkerID)
    /// Interrupt the job the worker is running: `job`, or with nil whatever job it runs (the
    /// worker is retiring and starts no other). The worker's flag is raised; a child process is
    /// told, and stopped if it does not stop the job in time.
    case interrupt(WorkerID, job: JobID?)
    /// Take back the jobs the worker holds but has not started: its running job takes long
    /// while other workers are idle, or (in-process workers only) it retires. An in-process
    /// worker's are taken from its handle at once; a child is asked to give them back.
    case release(WorkerID)
    /// Hand a job that reached its final state to a watch; `last` ends the watch.
    case notify(watch: Int, job: JobInfo, last: Bool)
    /// Tell the caller of ``PoolStateMachine/requestSwitch(to:preempt:now:)`` holding `ticket`
    /// how its switch ended (after unlocking: the caller may reply to a client).
    case settleSwitch(ticket: Int, SwitchOutcome)
    /// Tell the daemon's other pools that this job, which one of their jobs runs after, ended
    /// in this final state (``PoolStateMachine/settleForeign(_:ended:now:)``).
    case dependencyEnded(JobID, JobState)
}

/// What a worker asking for work is told.
package enum Assignment: Sendable, Equatable {
    /// Run these jobs, in order (one for threads; a batch for a child process), then report each.
    case run([Job])
    /// Nothing to do yet: wait to be woken.
    case wait
    /// Leave: the pool is smaller now, or shutting down. A worker still holding jobs gives back
    /// those it has not started, finishes its running one, then exits.
    case retire
}
