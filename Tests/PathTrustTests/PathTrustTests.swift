import Foundation
import Glibc
import PathTrust
import Testing

/// The rule a daemon applies before it trusts a path: only root and its own user may change it.
@Suite("Whether a path can be changed only by root and us")
struct PathTrustTests {
    /// A private directory for one test, removed afterwards.
    final class Scratch {
        let path: String
        init() throws {
            path = NSTemporaryDirectory() + "concur-trust-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            chmod(path, 0o700)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    func problem(_ path: String, as kind: PathTrust.Kind = .directory, uid: UInt32? = nil) -> String? {
        do {
            try PathTrust.check(path, as: kind, uid: uid)
            return nil
        } catch {
            return error.description
        }
    }

    @Test("a private directory of ours under a sticky /tmp is trusted, and so is a file in it")
    func trusted() throws {
        let scratch = try Scratch()
        #expect(problem(scratch.path) == nil)
        let file = scratch.path + "/file"
        _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8), attributes: [.posixPermissions: 0o644])
        #expect(problem(file, as: .file) == nil)
    }

    @Test("writable by group or others, even sticky, is not trusted for the path itself", arguments: [0o770, 0o707, 0o1777])
    func writable(mode: Int) throws {
        let scratch = try Scratch()
        chmod(scratch.path, mode_t(mode))
        let message = try #require(problem(scratch.path))
        #expect(message.contains("is writable by its group or by others"), "\(message)")
        #expect(message.contains("chmod go-w \(scratch.path)"))
    }

    @Test("a directory above that others may write without the sticky bit is not trusted")
    func writableParent() throws {
        let scratch = try Scratch()
        let child = scratch.path + "/child"
        try FileManager.default.createDirectory(atPath: child, withIntermediateDirectories: true)
        chmod(scratch.path, 0o777)
        #expect(problem(child)?.contains("\(scratch.path) is writable by its group or by others") == true)
        chmod(scratch.path, 0o1777)
        #expect(problem(child) == nil, "a sticky directory above is fine: others cannot move ours")
    }

    @Test("someone else's directory is not trusted; ours is, when we are that user", .enabled(if: getuid() == 0))
    func otherOwner() throws {
        let scratch = try Scratch()
        chown(scratch.path, 65534, 65534)
        #expect(problem(scratch.path)?.contains("belongs to another user (uid 65534)") == true)
        // Seen as uid 65534, the same directory is its own; but /tmp's parents are root's, fine.
        #expect(problem(scratch.path, uid: 65534) == nil)
    }

    @Test("a link made by another user is not followed; a file must not be a link at all", .enabled(if: getuid() == 0))
    func links() throws {
        let scratch = try Scratch()
        let target = scratch.path + "/target"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let link = scratch.path + "/link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        #expect(problem(link) == nil, "a link of ours to a directory of ours")
        lchown(link, 65534, 65534)
        #expect(problem(link)?.contains("is a symbolic link made by another user (uid 65534)") == true)
        let file = scratch.path + "/file"
        _ = FileManager.default.createFile(atPath: file, contents: nil)
        let fileLink = scratch.path + "/file-link"
        try FileManager.default.createSymbolicLink(atPath: fileLink, withDestinationPath: file)
        #expect(problem(fileLink, as: .file)?.contains("is a symbolic link") == true)
    }

    @Test(
        "a linked file: our link to our file is trusted; a chain through another user's link is not", .enabled(if: getuid() == 0))
    func linkChains() throws {
        let scratch = try Scratch()
        let file = scratch.path + "/concurd.toml"
        _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8), attributes: [.posixPermissions: 0o644])
        let link = scratch.path + "/link.toml"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "concurd.toml")
        #expect(problem(link, as: .linkedFile) == nil, "a relative link of ours")
        #expect(problem(link, as: .file)?.contains("is a symbolic link") == true)
        // Ours -> theirs -> our file: the middle one could be pointed elsewhere later.
        let middle = scratch.path + "/middle.toml"
        try FileManager.default.createSymbolicLink(atPath: middle, withDestinationPath: file)
        #expect(lchown(middle, 65534, 65534) == 0)
        let outer = scratch.path + "/outer.toml"
        try FileManager.default.createSymbolicLink(atPath: outer, withDestinationPath: middle)
        #expect(
            problem(outer, as: .linkedFile)?.contains("\(middle) is a symbolic link made by another user (uid 65534)") == true)
        // A directory link whose target passes through theirs, then a file of ours below it.
        let directory = scratch.path + "/dir"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: directory + "/f", contents: nil)
        let theirs = scratch.path + "/theirs"
        try FileManager.default.createSymbolicLink(atPath: theirs, withDestinationPath: directory)
        #expect(lchown(theirs, 65534, 65534) == 0)
        let ours = scratch.path + "/ours"
        try FileManager.default.createSymbolicLink(atPath: ours, withDestinationPath: "theirs")
        #expect(problem(ours + "/f", as: .file)?.contains("\(theirs) is a symbolic link made by another user") == true)
        // A loop is refused, not followed forever.
        let loop = scratch.path + "/loop"
        try FileManager.default.createSymbolicLink(atPath: loop, withDestinationPath: "loop")
        #expect(problem(loop, as: .linkedFile)?.contains("too many symbolic links") == true)
    }

    @Test(
        "a path that passes through another user's directory is refused, even when `..` leaves it again",
        .enabled(if: getuid() == 0))
    func dotDotThroughTheirs() throws {
        let scratch = try Scratch()
        let file = scratch.path + "/concurd.toml"
        _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8), attributes: [.posixPermissions: 0o644])
        let theirs = scratch.path + "/theirs"
        try FileManager.default.createDirectory(atPath: theirs + "/sub", withIntermediateDirectories: true)
        #expect(chown(theirs, 65534, 65534) == 0)
        let path = theirs + "/sub/../../concurd.toml"
        #expect(problem(path, as: .linkedFile)?.contains("\(theirs) belongs to another user (uid 65534)") == true)
        #expect(problem(scratch.path + "/./concurd.toml", as: .linkedFile) == nil, "a `.` in a trusted directory is fine")
    }

    @Test("wrong kinds and paths are refused with what is wrong")
    func wrongPaths() throws {
        let scratch = try Scratch()
        #expect(problem("relative/path")?.contains("is not an absolute path") == true)
        #expect(problem(scratch.path + "/missing")?.contains("cannot be examined") == true)
        #expect(problem(scratch.path, as: .file)?.contains("is not a regular file") == true)
        let file = scratch.path + "/file"
        _ = FileManager.default.createFile(atPath: file, contents: nil)
        #expect(problem(file, as: .directory)?.contains("is not a directory") == true)
    }
}
