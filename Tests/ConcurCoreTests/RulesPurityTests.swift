import Foundation
import Testing

/// The rules module may import only what decides: ConcurProtocol's types, a deque, a heap, a histogram.
///
/// Package.swift already keeps the C shims, SQLite and libsystemd out of ConcurCore's reach; the
/// compiler cannot forbid Glibc, Synchronization or Foundation (every Linux target may import
/// them) nor the standard library's clocks and tasks, so this test reads the module's sources.
@Suite("The rules module stays pure")
struct RulesPurityTests {
    static let allowedImports: Set<String> = ["ConcurProtocol", "DequeModule", "HeapModule", "Histogram"]
    /// Names that would read a clock, sleep, lock or start a thread from inside the rules.
    static let forbiddenNames = [
        "ContinuousClock", "SuspendingClock", "Date(", "Task.sleep", "Task {", "Task.detached", "Thread", "Mutex",
        "Atomic", "DispatchQueue", "clock_gettime", "usleep", "nanosleep", "pthread",
    ]

    static var sources: [(name: String, text: String)] {
        let directory = String(#filePath).split(separator: "/").dropLast(3).joined(separator: "/")
        let root = "/" + directory + "/Sources/ConcurCore"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.filter { $0.hasSuffix(".swift") }.sorted().map {
            ($0, (try? String(contentsOfFile: root + "/" + $0, encoding: .utf8)) ?? "")
        }
    }

    @Test("imports nothing but the allowed modules")
    func imports() {
        let sources = Self.sources
        #expect(sources.count > 20, "found \(sources.count) sources: is Sources/ConcurCore where this test looks?")
        for (name, text) in sources {
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ").map(String.init)
                guard let index = words.firstIndex(of: "import"), index + 1 < words.count,
                    words[..<index].allSatisfy({ ["public", "package", "internal", "@preconcurrency"].contains($0) })
                else { continue }
                #expect(Self.allowedImports.contains(words[index + 1]), "\(name): \(line)")
            }
        }
    }

    @Test("names no clock, sleep, lock or thread")
    func names() {
        for (name, text) in Self.sources {
            let code = text.split(separator: "\n").filter { !$0.trimmingPrefix(while: \.isWhitespace).hasPrefix("//") }
            for line in code {
                for forbidden in Self.forbiddenNames where line.contains(forbidden) {
                    Issue.record("\(name) names \(forbidden): \(line)")
                }
            }
        }
    }
}
