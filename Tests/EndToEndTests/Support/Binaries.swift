import Foundation
import Testing

/// Where the built executables and test clients are.
enum Binaries {
    /// The build folder holding this test bundle, `concurd` and `concurctl`.
    static let directory: URL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()

    /// The `concurd` executable.
    static var concurd: URL { directory.appendingPathComponent("concurd") }

    /// `concurd` with PostgreSQL's client, which `concurd --store` hands over to.
    static var concurdPostgres: URL { directory.appendingPathComponent("concurd-postgres") }

    /// The `concurctl` executable.
    static var concurctl: URL { directory.appendingPathComponent("concurctl") }

    /// The package's own folder (where scripts/install-deps puts `.test-tools/`).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The Python clients next to these tests.
    static let clients = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Clients")

    /// Fails the test unless the executables were built (`swift build` builds them; `swift build
    /// --build-tests` alone does not).
    static func check() throws {
        for url in [concurd, concurdPostgres, concurctl] {
            try #require(
                FileManager.default.isExecutableFile(atPath: url.path),
                "\(url.path) is missing: run `swift build` before the tests")
        }
    }
}
