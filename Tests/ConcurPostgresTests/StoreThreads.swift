import ConcurRuntime
import Testing

/// Runs a suite's tests on threads of their own rather than on the global pool, where the
/// end-to-end tests beside them block the runner's few threads for seconds at a time: a store
/// test left waiting there for a minute lost its transaction to the server's idle timeout.
struct StoreThreads: SuiteTrait, TestTrait, TestScoping {
    /// The threads (two: a test and what it awaits may overlap).
    static let executor: ThreadTaskExecutor = {
        do {
            return try ThreadTaskExecutor(threads: 2, name: "store-tests")
        } catch {
            fatalError("the store tests' threads: \(error)")
        }
    }()

    var isRecursive: Bool { true }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await withTaskExecutorPreference(Self.executor) { try await function() }
    }
}

extension Trait where Self == StoreThreads {
    /// Run on the store tests' own threads.
    static var storeThreads: Self { StoreThreads() }
}
