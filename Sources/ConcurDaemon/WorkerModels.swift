import ConcurCore
import ConcurProtocol
import Glibc

/// The worker models this build runs.
enum WorkerModels {
    /// Every model, ready to start workers. The processes model starts its spawner thread and
    /// the tasks model its executor's threads here, so call it after the signal watcher
    /// (threads inherit its blocked signals). `taskThreads` nil means one per core.
    static func all(taskThreads: Int? = nil) -> [any WorkerModel] {
        var models: [any WorkerModel] = [ThreadModel()]
        do {
            models.append(try ProcessModel())
        } catch {
            StandardStreams.printError("concurd: the processes model is unavailable: \(error)")
        }
        do {
            models.append(try TaskModel(threads: taskThreads ?? cores))
        } catch {
            StandardStreams.printError("concurd: the tasks model is unavailable: \(error)")
        }
        return models
    }

    /// The cores online.
    static var cores: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}
