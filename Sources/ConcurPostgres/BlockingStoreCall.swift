package import ConcurRuntime

/// Runs store operations from the store's OS threads (each thread owns its session): the
/// operation runs as a task on `executor`, the calling thread sleeps until it ends.
///
/// The operation always ends (``StoreSession`` guarantees it), so the thread is never held for
/// good. Call it only from threads that are not the executor's own.
package struct BlockingStoreCall: Sendable {
    /// Where the operations run.
    package let executor: ThreadTaskExecutor

    /// Calls on `executor`.
    package init(executor: ThreadTaskExecutor) { self.executor = executor }

    /// Runs `operation` and returns what it returns.
    ///
    /// - Throws: what `operation` throws.
    package func run<Value: Sendable>(
        _ operation: @escaping @Sendable () async throws(StoreFailure) -> Value
    ) throws(StoreFailure) -> Value {
        let box = ResultBox<Value>()
        Task(executorPreference: executor) {
            let result: Result<Value, StoreFailure>
            do throws(StoreFailure) {
                result = .success(try await operation())
            } catch {
                result = .failure(error)
            }
            box.set(result)
        }
        return try box.wait().get()
    }
}

/// One result, set by a task and awaited by a thread.
private final class ResultBox<Value: Sendable>: @unchecked Sendable {
    private let lock = ConditionLock()
    private var result: Result<Value, StoreFailure>?

    func set(_ value: Result<Value, StoreFailure>) {
        lock.withLock {
            result = value
            lock.broadcast()
        }
    }

    func wait() -> Result<Value, StoreFailure> {
        lock.withLock {
            while result == nil { lock.wait() }
            return result!
        }
    }
}
