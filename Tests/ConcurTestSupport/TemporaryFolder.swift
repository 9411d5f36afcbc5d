import Foundation

/// A fresh directory under /tmp (mode 0700) for one test, removed with everything in it when
/// released.
package final class TemporaryFolder {
    /// The folder's absolute path.
    package let path: String

    package init(prefix: String = "concur-test") throws {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw TestSupportError("mkdtemp: \(String(cString: strerror(errno)))")
        }
        path = String(cString: made)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `text` to `file` (an absolute path) with `mode`, replacing what was there.
    package func write(_ file: String, _ text: String, mode: UInt32 = 0o644) throws {
        unlink(file)
        let descriptor = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw TestSupportError("open \(file): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ Foundation.write(descriptor, $0.baseAddress, $0.count) }) == bytes.count else {
            throw TestSupportError("write \(file): \(String(cString: strerror(errno)))")
        }
        fchmod(descriptor, mode)
    }
}
