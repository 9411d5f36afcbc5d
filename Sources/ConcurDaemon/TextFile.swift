import Glibc

/// Reading a small text file (the config) with an error that names it.
package enum TextFile {
    /// The file's contents as UTF-8 text.
    package static func read(_ path: String) throws(ConfigurationError) -> String {
        try read(path) { (_: stat) throws(ConfigurationError) in }
    }

    /// The file's contents as UTF-8 text; `check` sees the opened file's status before a byte
    /// is read (what was opened, not what the path names by then).
    static func read(
        _ path: String, flags: Int32 = 0, checking check: (stat) throws(ConfigurationError) -> Void
    ) throws(ConfigurationError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC | flags)
        guard fd >= 0 else {
            throw ConfigurationError("cannot read \(path): \(String(cString: strerror(errno))); check --config")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ConfigurationError("cannot read \(path): \(String(cString: strerror(errno)))") }
        try check(info)
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw ConfigurationError("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            guard bytes.count <= 1 << 20 else { throw ConfigurationError("\(path) is larger than 1 MiB; is it the right file?") }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigurationError("\(path) is not UTF-8 text")
        }
        return text
    }

    /// Writes `text` to `path` (created or truncated, mode 0644); the error says why not.
    package static func write(_ text: String, to path: String) throws(ConfigurationError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ConfigurationError(String(cString: strerror(errno))) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw ConfigurationError(String(cString: strerror(errno)))
            }
            offset += written
        }
    }
}
