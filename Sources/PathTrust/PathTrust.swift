import Glibc

/// Whether a path on disk can be changed only by root and this process's own user: the check
/// a daemon makes before it trusts what a directory holds (a job journal, a lock) or puts a
/// listener in it (a control socket).
///
/// A path is trusted when it and every directory above it belong to root or to the effective
/// user, and none of them is writable by group or others, except for a directory above with
/// the sticky bit (`/tmp`: others may create entries there but not rename or remove ours). A
/// symbolic link on the way is followed only if root or this user made it (its directory being
/// trusted too), so another user cannot point the path elsewhere later. The checks read the
/// file system (lstat, realpath) and are meant for start-up, not a hot path.
public enum PathTrust {
    /// What the path is expected to be.
    public enum Kind: Sendable, Equatable {
        /// A directory.
        case directory
        /// A regular file, not reached through a symbolic link of its own.
        case file
        /// A regular file that may itself be a symbolic link (root's or this user's, like every
        /// link on the way): a config file that configuration management links into `/etc`.
        case linkedFile
    }

    /// Checks `path` (which must exist) and everything above it; `uid` is the user trusted
    /// besides root (by default this process's effective user).
    ///
    /// - Throws: ``UntrustedPath`` naming the first offending path and what to do about it.
    public static func check(_ path: String, as kind: Kind, uid: UInt32? = nil) throws(UntrustedPath) {
        let uid = uid ?? geteuid()
        guard path.hasPrefix("/") else {
            throw UntrustedPath(path: path, problem: "is not an absolute path", fix: "give an absolute path")
        }
        var info = stat()
        guard lstat(path, &info) == 0 else {
            throw UntrustedPath(path: path, problem: "cannot be examined (\(String(cString: strerror(errno))))", fix: nil)
        }
        if kind == .file && (info.st_mode & S_IFMT) == S_IFLNK {
            throw UntrustedPath(
                path: path, problem: "is a symbolic link", fix: "remove the link and put the file itself in its place")
        }
        try checkLinks(on: path, uid: uid, depth: 0)
        guard let resolved = realPath(path) else {
            throw UntrustedPath(path: path, problem: "cannot be resolved (\(String(cString: strerror(errno))))", fix: nil)
        }
        guard stat(resolved, &info) == 0 else {
            throw UntrustedPath(path: resolved, problem: "cannot be examined (\(String(cString: strerror(errno))))", fix: nil)
        }
        let type = info.st_mode & S_IFMT
        switch kind {
        case .directory where type != S_IFDIR:
            throw UntrustedPath(path: resolved, problem: "is not a directory", fix: nil)
        case .file where type != S_IFREG, .linkedFile where type != S_IFREG:
            throw UntrustedPath(path: resolved, problem: "is not a regular file", fix: "move it aside")
        default: break
        }
        try checkOwnerAndMode(resolved, info, uid: uid, allowSticky: false)
        var ancestor = parent(of: resolved)
        while let directory = ancestor {
            guard stat(directory, &info) == 0 else {
                throw UntrustedPath(
                    path: directory, problem: "cannot be examined (\(String(cString: strerror(errno))))", fix: nil)
            }
            try checkOwnerAndMode(directory, info, uid: uid, allowSticky: true)
            ancestor = parent(of: directory)
        }
    }

    /// Every directory the kernel passes through on the way to `path` (as written, `..` and
    /// all) and every symbolic link met must be root's or `uid`'s, the directories not writable
    /// by others unless sticky; a link's target is walked the same way, so a chain of links
    /// cannot pass through one that another user could point elsewhere later.
    private static func checkLinks(on path: String, uid: UInt32, depth: Int) throws(UntrustedPath) {
        guard depth < 40 else { throw UntrustedPath(path: path, problem: "goes through too many symbolic links", fix: nil) }
        var prefix = ""
        var info = stat()
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        for (index, component) in components.enumerated() {
            let directory = prefix.isEmpty ? "/" : prefix
            prefix += "/" + component
            guard lstat(prefix, &info) == 0 else { return }  // the final check reports it
            guard (info.st_mode & S_IFMT) == S_IFLNK else {
                // A directory the walk passes through (`..` after it included) must be one only
                // root or we can change: its entries could be swapped under the walk otherwise.
                if index < components.count - 1 { try checkOwnerAndMode(prefix, info, uid: uid, allowSticky: true) }
                continue
            }
            guard info.st_uid == 0 || info.st_uid == uid else {
                throw UntrustedPath(
                    path: prefix, problem: "is a symbolic link made by another user (uid \(info.st_uid))",
                    fix: "remove it, or use the directory it points to directly if that one is yours")
            }
            if let resolved = realPath(directory) { try check(resolved, as: .directory, uid: uid) }
            guard let target = linkTarget(prefix) else {
                throw UntrustedPath(path: prefix, problem: "cannot be read (\(String(cString: strerror(errno))))", fix: nil)
            }
            let rest = components[(index + 1)...].joined(separator: "/")
            let followed = (target.hasPrefix("/") ? target : directory + "/" + target) + (rest.isEmpty ? "" : "/" + rest)
            try checkLinks(on: followed, uid: uid, depth: depth + 1)
            return
        }
    }

    /// What the symbolic link at `path` points to, as written in the link; nil if `path` is
    /// not a link or cannot be read.
    public static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, Int(PATH_MAX))
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func checkOwnerAndMode(_ path: String, _ info: stat, uid: UInt32, allowSticky: Bool) throws(UntrustedPath) {
        let owner = info.st_uid
        guard owner == 0 || owner == uid else {
            let who = uid == 0 ? "root" : "root or uid \(uid)"
            throw UntrustedPath(
                path: path, problem: "belongs to another user (uid \(owner)), who could change what it holds",
                fix: "chown \(uid == 0 ? "root" : String(uid)) \(path), or choose a path that belongs to \(who)")
        }
        let writableByOthers = info.st_mode & (S_IWGRP | S_IWOTH) != 0
        let sticky = info.st_mode & S_ISVTX != 0
        guard !writableByOthers || (allowSticky && sticky) else {
            throw UntrustedPath(
                path: path, problem: "is writable by its group or by others (mode \(String(info.st_mode & 0o7777, radix: 8)))",
                fix: "chmod go-w \(path)")
        }
    }

    private static func parent(of path: String) -> String? {
        guard path != "/", let slash = path.lastIndex(of: "/") else { return nil }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// A path another user could change: which one, what is wrong with it, and the fix.
public struct UntrustedPath: Error, Sendable, Equatable, CustomStringConvertible {
    /// The path found wanting (the one given, or a directory above it).
    public let path: String
    /// What is wrong, as a phrase after the path ("belongs to another user (uid 65534) ...").
    public let problem: String
    /// What to do about it, if there is a simple fix.
    public let fix: String?

    /// The text shown to people.
    public var description: String {
        "\(path) \(problem)" + (fix.map { "; \($0)" } ?? "")
    }
}
