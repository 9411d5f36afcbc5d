package import ConcurProtocol

extension ConcurrencyModel {
    /// Whether its workers run inside concurd (threads, tasks), where the pool can take back a
    /// worker's unstarted jobs itself; a child process must be asked.
    package var runsInProcess: Bool { self != .processes }
}
