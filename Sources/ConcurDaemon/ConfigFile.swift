import Glibc
import PathTrust

/// Reads `concurd`'s config file only if no one but root and concurd's own user could have
/// written it: the file and every directory and link on the way to it. A file another user can
/// change could turn on `allow_exec` and have concurd run that user's commands as its own, at
/// start or at the next reload. Reads the file system; called at start and on each reload.
package enum ConfigFile {
    /// The text of the config file at `path` (relative to the working directory if not absolute).
    ///
    /// - Throws: ``ConfigurationError`` naming the path another user could change and the fix,
    ///   or why the file cannot be read.
    package static func read(_ path: String) throws(ConfigurationError) -> String {
        let absolute = path.hasPrefix("/") ? path : workingDirectory() + "/" + path
        do {
            try PathTrust.check(absolute, as: .linkedFile)
        } catch {
            var info = stat()
            if lstat(absolute, &info) != 0 && errno == ENOENT {
                throw ConfigurationError("cannot read \(path): \(String(cString: strerror(ENOENT))); check --config")
            }
            throw ConfigurationError("concurd does not trust its config file: \(error); it reads no setting from it until then")
        }
        let uid = geteuid()
        return try TextFile.read(absolute, flags: O_NONBLOCK) { (info: stat) throws(ConfigurationError) in
            // The path was trusted a moment ago; the file opened must still be a regular file only
            // root or we can change (never a FIFO that would hold a reload for ever).
            guard (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == 0 || info.st_uid == uid,
                info.st_mode & (S_IWGRP | S_IWOTH) == 0
            else {
                throw ConfigurationError("concurd does not trust its config file: \(path) changed as it was opened; try again")
            }
        }
    }

    private static func workingDirectory() -> String {
        guard let directory = getcwd(nil, 0) else { return "." }
        defer { free(directory) }
        return String(cString: directory)
    }
}
