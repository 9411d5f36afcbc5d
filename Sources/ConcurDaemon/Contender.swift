package import ConcurProtocol

/// What ran a workload in `concurd compare`: one of concur's models, or one of the seeds'
/// Python pools run beside them with `--python`.
package enum Contender: Hashable, Sendable {
    /// A concur pool of this model.
    case concur(ConcurrencyModel)
    /// A Python pool (``PythonPool``).
    case python(PythonPool)

    /// The name in the JSON and the chart's legend: `threads`, `python-threads`.
    package var name: String {
        switch self {
        case .concur(let model): model.rawValue
        case .python(let pool): pool.rawValue
        }
    }

    /// The name in the table's first column, at most 10 characters: `threads`, `py-threads`.
    package var label: String {
        switch self {
        case .concur(let model): model.rawValue
        case .python(.threads): "py-threads"
        case .python(.processes): "py-procs"
        case .python(.asyncio): "py-asyncio"
        }
    }

    /// The name in a sentence: `threads`, `Python's ThreadPoolExecutor`.
    package var title: String {
        switch self {
        case .concur(let model): model.rawValue
        case .python(let pool): pool.title
        }
    }

    /// The concur model, for a concur pool.
    package var model: ConcurrencyModel? {
        if case .concur(let model) = self { return model }
        return nil
    }
}
