import ConcurArguments
package import ConcurProtocol
import TOMLKit

/// One named pool besides `default`, as `[pools.NAME]` in the config file or
/// `--pool NAME=MODEL:WORKERS` on the command line gives it. The default pool is configured by
/// the top-level `model`, `workers` and `max_queue`; the other limits are the daemon's.
package struct PoolConfiguration: Sendable, Equatable {
    /// The pool's name (never `default`).
    package var name: PoolName
    /// The model at start.
    package var model = ConcurrencyModel.threads
    /// Workers at start.
    package var workers = 4
    /// The queue's limit; nil: the top-level `max_queue`.
    package var maxQueue: Int?

    /// A pool with the defaults: threads, 4 workers, the daemon's queue limit.
    package init(name: PoolName, model: ConcurrencyModel = .threads, workers: Int = 4, maxQueue: Int? = nil) {
        self.name = name
        self.model = model
        self.workers = workers
        self.maxQueue = maxQueue
    }

    /// The keys a `[pools.NAME]` table may hold.
    static let keys = ["model", "workers", "max_queue"]

    /// Reads the `pools` value of a config file: a table of tables, one per pool.
    static func read(toml value: TOMLValueConvertible, file: String) throws(ConfigurationError) -> [PoolConfiguration] {
        guard let tables = value.table else {
            throw ConfigurationError("\(file): pools must be tables, one per pool: [pools.NAME] with model, workers, max_queue")
        }
        var pools: [PoolConfiguration] = []
        for key in tables.keys.sorted() {
            guard let name = PoolName(key) else {
                throw ConfigurationError("\(file): [pools.\(key)]: \(PoolName.problem(with: key) ?? PoolName.rule)")
            }
            guard name != .default else {
                throw ConfigurationError(
                    "\(file): [pools.default]: the default pool is set by the top-level model, workers and max_queue; move them there"
                )
            }
            guard let table = tables[key]?.table else {
                throw ConfigurationError("\(file): pools.\(key) must be a table: [pools.\(key)] with model, workers, max_queue")
            }
            var pool = PoolConfiguration(name: name)
            for field in table.keys {
                let value = table[field]!
                switch field {
                case "model":
                    guard let text = value.string else {
                        throw ConfigurationError("\(file): pools.\(key).model must be \(modelChoices)")
                    }
                    pool.model = try model(text, as: "\(file): pools.\(key).model")
                case "workers":
                    guard let number = value.int else {
                        throw ConfigurationError("\(file): pools.\(key).workers must be an integer")
                    }
                    pool.workers = number
                case "max_queue":
                    guard let number = value.int else {
                        throw ConfigurationError("\(file): pools.\(key).max_queue must be an integer")
                    }
                    pool.maxQueue = number
                default:
                    let hint = CommandLineRun.suggestion(for: field, among: keys).map { "did you mean '\($0)'? " } ?? ""
                    throw ConfigurationError(
                        "\(file): unknown key 'pools.\(key).\(field)'; \(hint)a pool's keys: \(keys.joined(separator: ", "))")
                }
            }
            pools.append(pool)
        }
        return pools
    }

    /// Reads one `--pool NAME=MODEL:WORKERS`.
    static func read(flag text: String) throws(ConfigurationError) -> PoolConfiguration {
        let usage = "--pool wants NAME=MODEL:WORKERS, such as io=tasks:64"
        let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw ConfigurationError("\(usage), not '\(text)'") }
        let key = String(parts[0])
        guard let name = PoolName(key) else {
            throw ConfigurationError("\(usage): \(PoolName.problem(with: key) ?? PoolName.rule)")
        }
        guard name != .default else {
            throw ConfigurationError("--pool default=...: the default pool is set by --model and --workers")
        }
        let shape = parts[1].split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard shape.count == 2 else { throw ConfigurationError("\(usage), not '\(text)' (the workers are missing)") }
        let model = try model(String(shape[0]), as: "--pool \(key)")
        guard let workers = Int(shape[1]) else {
            throw ConfigurationError("\(usage): the workers of pool \(key) must be a whole number, not '\(shape[1])'")
        }
        return PoolConfiguration(name: name, model: model, workers: workers)
    }

    private static var modelChoices: String {
        "one of " + DaemonConfiguration.availableModels.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
    }

    private static func model(_ text: String, as place: String) throws(ConfigurationError) -> ConcurrencyModel {
        guard let model = ConcurrencyModel(rawValue: text), DaemonConfiguration.availableModels.contains(model) else {
            throw ConfigurationError("\(place): the model must be \(modelChoices), not '\(text)'")
        }
        return model
    }

    /// Checks the values against the daemon's limits, once everything is merged.
    func validate(maxWorkers: Int) throws(ConfigurationError) {
        guard (1...maxWorkers).contains(workers) else {
            throw ConfigurationError(
                "pool \(name): workers must be between 1 and \(maxWorkers) (the max workers), not \(workers)")
        }
        if let maxQueue, !DaemonConfiguration.Limits.maxQueue.contains(maxQueue) {
            throw ConfigurationError(
                "pool \(name): max_queue must be between \(DaemonConfiguration.Limits.maxQueue.lowerBound) and \(DaemonConfiguration.Limits.maxQueue.upperBound), not \(maxQueue)"
            )
        }
    }
}
