import ConcurCore
import ConcurProtocol
import ConcurRuntime
import Glibc

/// The worker models this build runs.
enum WorkerModels {
    /// Every model, ready to start workers. The processes model starts its spawner thread and
    /// the tasks model its executor's threads here, so call it after the signal watcher
    /// (threads inherit its blocked signals). `taskThreads` nil means one per core; workers run
    /// `nice` levels below the control plane; with a forkserver, it forks the child workers.
    static func all(taskThreads: Int? = nil, nice: Int = 0, forkServer: ForkServer? = nil) -> [any WorkerModel] {
        var models: [any WorkerModel] = [ThreadModel(nice: nice)]
        do {
            models.append(try forkServer.map { ProcessModel(forkServer: $0) } ?? ProcessModel(nice: nice))
        } catch {
            StandardStreams.printError("concurd: the processes model is unavailable: \(error)")
        }
        do {
            models.append(try TaskModel(threads: taskThreads ?? cores, nice: nice))
        } catch {
            StandardStreams.printError("concurd: the tasks model is unavailable: \(error)")
        }
        return models
    }

    /// The cores online.
    static var cores: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}
