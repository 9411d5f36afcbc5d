import Glibc

/// A small tmpfs mounted for one test (root only), to run out of space on purpose: ``fill()``
/// writes a filler file until the disk is full, ``free()`` removes it. Unmounted and removed
/// when released.
package final class TinyDisk {
    /// Where it is mounted.
    package let path: String
    private var filler: String { path + "/filler" }

    /// Mounts a tmpfs of `bytes` at a new directory under /tmp.
    package init(bytes: Int) throws {
        var template = Array("/tmp/concur-disk-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw TestSupportError("mkdtemp: \(String(cString: strerror(errno)))")
        }
        path = String(cString: made)
        guard mount("tmpfs", path, "tmpfs", 0, "size=\(bytes),mode=0755") == 0 else {
            let reason = String(cString: strerror(errno))
            rmdir(path)
            throw TestSupportError("cannot mount a tmpfs at \(path): \(reason) (the test needs root)")
        }
    }

    deinit {
        umount2(path, Int32(MNT_DETACH))
        rmdir(path)
    }

    /// Writes a filler file until no byte is left; returns how many it took.
    @discardableResult
    package func fill() -> Int {
        let fd = open(filler, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0x5A, count: 4096)
        var total = 0
        while true {
            let written = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { break }
            total += written
        }
        // The last partial page, byte by byte.
        var byte: UInt8 = 0
        while write(fd, &byte, 1) == 1 { total += 1 }
        return total
    }

    /// Removes the filler: the space is back.
    package func free() {
        unlink(filler)
    }
}

/// A helper of the test kit failed.
package struct TestSupportError: Error, CustomStringConvertible {
    /// What went wrong.
    package let description: String

    /// An error saying `description`.
    package init(_ description: String) { self.description = description }
}
