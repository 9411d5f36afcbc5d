// swift-tools-version: 6.2
import PackageDescription

/// Settings shared by every target of ours: Swift 6 mode (the tools default), explicit
/// `public`/`package import`, and zero warnings enforced by the compiler rather than by
/// convention. concur's own modules use `package` access (nothing outside this package links
/// them); the generic ones (Varlink, VarlinkServer, Systemd, PathTrust) stay `public`.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("InternalImportsByDefault"),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "concur",
    products: [
        .executable(name: "concurd", targets: ["concurd"]),
        .executable(name: "concurd-postgres", targets: ["concurd-postgres"]),
        .executable(name: "concurctl", targets: ["concurctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "CConcurShims"),
        .target(
            name: "Systemd", dependencies: ["CSystemd", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        .target(name: "Varlink", swiftSettings: strict),
        .target(name: "PathTrust", swiftSettings: strict),
        .target(
            name: "VarlinkServer",
            dependencies: [
                "Varlink", "CConcurShims", "PathTrust",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(name: "ConcurProtocol", dependencies: ["Varlink"], swiftSettings: strict),
        .target(
            name: "ConcurArguments",
            dependencies: ["ConcurProtocol", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        // The pool's rules: decisions only. No C shims, no locks, no threads, no clock (a test,
        // RulesPurityTests, checks the imports the compiler cannot forbid, such as Glibc).
        .target(
            name: "ConcurCore",
            dependencies: [
                "ConcurProtocol",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strict
        ),
        // The machinery that carries the rules out: the pool shell, the threads, processes and
        // tasks runtimes, the child proxy and its wire format, the fork server, OS helpers.
        .target(
            name: "ConcurRuntime",
            dependencies: [
                "ConcurCore", "ConcurProtocol", "CConcurShims",
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "ConcurJournal",
            dependencies: ["ConcurCore", "ConcurRuntime", "ConcurProtocol", "Varlink", "CSQLite", "PathTrust"],
            swiftSettings: strict),
        // Where the shared store is, its password and what a node is called there: parsing
        // and a file, no client, so concurd checks a `store` setting without PostgreSQL's.
        .target(name: "StoreAccess", dependencies: ["PathTrust"], swiftSettings: strict),
        // The PostgreSQL job store several nodes share: its connections, its schema, the queue
        // and the nodes' leases. postgres-nio brings Foundation (and ICU) with it, 8 MiB of
        // resident code and 100 MB of binary: only `concurd-postgres` links it, so neither
        // concurctl nor a single-host concurd pays for it.
        .target(
            name: "ConcurPostgres",
            dependencies: [
                "ConcurProtocol", "ConcurCore", "ConcurRuntime", "PathTrust", "StoreAccess", "Varlink",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict),
        .target(
            name: "ConcurDaemon",
            dependencies: [
                "ConcurCore", "ConcurRuntime", "ConcurJournal", "ConcurProtocol", "ConcurArguments", "Varlink",
                "VarlinkServer", "Systemd", "StoreAccess",
                "PathTrust",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "ConcurClient",
            dependencies: [
                "ConcurProtocol", "ConcurArguments", "Varlink", "CConcurShims", "PathTrust",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // The daemon as a node of a shared PostgreSQL queue: ConcurDaemon with the store joined.
        .target(
            name: "ConcurdPostgres",
            dependencies: [
                "ConcurDaemon", "ConcurPostgres", "ConcurCore", "ConcurProtocol", "StoreAccess",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .executableTarget(name: "concurd", dependencies: ["ConcurDaemon"], swiftSettings: strict),
        .executableTarget(name: "concurd-postgres", dependencies: ["ConcurdPostgres"], swiftSettings: strict),
        .executableTarget(name: "concurctl", dependencies: ["ConcurClient"], swiftSettings: strict),
        .executableTarget(
            name: "concur-bench", dependencies: ["Varlink", "ConcurCore", "ConcurRuntime", "ConcurProtocol"],
            path: "Benchmarks/concur-bench",
            swiftSettings: strict),
        // What tests share: waiting for a condition, a tiny disk, the state machine's fixture.
        .target(
            name: "ConcurTestSupport", dependencies: ["ConcurCore", "ConcurProtocol"], path: "Tests/ConcurTestSupport",
            swiftSettings: strict),
        .testTarget(name: "VarlinkTests", dependencies: ["Varlink"], swiftSettings: strict),
        .testTarget(name: "PathTrustTests", dependencies: ["PathTrust"], swiftSettings: strict),
        .testTarget(name: "ConcurProtocolTests", dependencies: ["ConcurProtocol", "Varlink"], swiftSettings: strict),
        .testTarget(
            name: "ConcurJournalTests",
            dependencies: ["ConcurJournal", "ConcurCore", "ConcurRuntime", "ConcurProtocol", "ConcurTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "ConcurCoreTests", dependencies: ["ConcurCore", "ConcurProtocol", "ConcurTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "ConcurRuntimeTests", dependencies: ["ConcurRuntime", "ConcurCore", "ConcurProtocol", "ConcurTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "ConcurDaemonTests",
            dependencies: [
                "ConcurDaemon", "ConcurCore", "ConcurRuntime", "ConcurProtocol", "Varlink", "VarlinkServer", "Systemd",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "ConcurPostgresTests",
            dependencies: [
                "ConcurPostgres", "ConcurRuntime", "ConcurTestSupport", "StoreAccess",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "ConcurClientTests", dependencies: ["ConcurClient", "ConcurProtocol", "ConcurArguments", "Varlink"],
            swiftSettings: strict),
        .testTarget(
            name: "EndToEndTests", dependencies: ["ConcurProtocol", "Varlink", "ConcurTestSupport"], exclude: ["Clients"],
            swiftSettings: strict),
    ]
)
