import ArgumentParser
import ConcurProtocol
import Varlink

/// `--pool NAME`: the pool a command addresses (the default one without it). The name is
/// checked here, so a typo in its form fails before concurd is asked; a name concurd does not
/// run fails with the pools it does.
package struct PoolOption: ParsableArguments {
    @Option(help: "The pool (default: the default pool); `concurctl status` lists them.")
    var pool: String?

    /// An empty option, filled in by the argument parser.
    package init() {}

    /// Checks the name's form.
    package func validate() throws {
        if let pool, let problem = PoolName.problem(with: pool) { throw ValidationError("--pool: \(problem)") }
    }

    /// The call's `pool` parameter, if one was given.
    var parameters: JSONObject { pool.map { ["pool": .string($0)] } ?? [:] }

    /// `parameters` added to `base`.
    func adding(to base: JSONObject) -> JSONObject {
        var merged = base
        if let pool { merged["pool"] = .string(pool) }
        return merged
    }

    /// `pool io: ` before a line about pool io; nothing for the default pool.
    var prefix: String { pool.map { $0 == PoolName.default.rawValue ? "" : "pool \($0): " } ?? "" }
}
