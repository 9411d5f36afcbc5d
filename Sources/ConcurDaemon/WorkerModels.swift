import ConcurCore
import ConcurProtocol

/// The worker models this build runs.
enum WorkerModels {
    /// Every model, ready to start workers. The processes model starts its spawner thread here,
    /// so call it after the signal watcher (threads inherit its blocked signals).
    static func all() -> [any WorkerModel] {
        var models: [any WorkerModel] = [ThreadModel()]
        do {
            models.append(try ProcessModel())
        } catch {
            StandardStreams.printError("concurd: the processes model is unavailable: \(error)")
        }
        return models
    }
}
