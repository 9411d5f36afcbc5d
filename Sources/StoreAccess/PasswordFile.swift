import Glibc
import PathTrust

/// The password for a ``StoreAddress``, from a file in libpq's `.pgpass` form, the only place
/// concurd takes one from (never a URL, a command line or the environment's `PGPASSWORD`).
///
/// Each line is `hostname:port:database:username:password`; `*` in one of the first four fields
/// matches anything, `\:` and `\\` escape, `#` starts a comment line, and the first matching line
/// wins. For a Unix socket the hostname field is the socket directory, or `localhost` when the
/// socket is in the default directory, as libpq reads it. Unlike libpq, which skips a file others
/// can read with a warning, concurd refuses it: a store password that leaked is a way to plant
/// jobs on every node.
package struct PasswordFile: Sendable, Equatable {
    /// One line of the file, its escapes undone.
    package struct Entry: Sendable, Equatable {
        /// The host field: a name, a socket directory, `localhost` or `*`.
        package var host: String
        /// The port field, or `*`.
        package var port: String
        /// The database field, or `*`.
        package var database: String
        /// The user field, or `*`.
        package var user: String
        /// The password, colons in it kept.
        package var password: String
    }

    /// Where the file was read from, for messages.
    package let path: String
    /// The lines that have five fields, in file order (the first match wins).
    package let entries: [Entry]

    /// Parses the text of a password file. Lines with fewer than five fields are skipped, as
    /// libpq skips them.
    package init(path: String, text: String) {
        self.path = path
        var entries: [Entry] = []
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) where !line.hasPrefix("#") {
            let fields = Self.fields(of: line)
            guard fields.count >= 5 else { continue }
            // A colon escaped or not in the password is the password's: libpq joins what is left.
            entries.append(
                Entry(
                    host: fields[0], port: fields[1], database: fields[2], user: fields[3],
                    password: fields[4...].joined(separator: ":")))
        }
        self.entries = entries
    }

    /// The password of the first line matching `address`, or nil when none does.
    package func password(for address: StoreAddress) -> String? {
        let hosts: [String]
        switch address.endpoint {
        case .socket(let directory):
            hosts = directory == StoreAddress.defaultSocketDirectory ? [directory, "localhost"] : [directory]
        case .tcp(let host):
            hosts = [host]
        }
        let port = String(address.port)
        return entries.first { entry in
            (entry.host == "*" || hosts.contains(entry.host)) && (entry.port == "*" || entry.port == port)
                && (entry.database == "*" || entry.database == address.database)
                && (entry.user == "*" || entry.user == address.user)
        }?.password
    }

    /// Reads the password file that applies: `configured` (the config's `store_password_file`) if
    /// set, else `PGPASSFILE`, else `~/.pgpass` if it exists. Returns nil when no file applies.
    ///
    /// - Throws: ``PasswordFileError`` when the file named cannot be read, is not trusted
    ///   (``PathTrust``), or can be read by group or others.
    package static func load(configured: String?, environment: [String: String]) throws(PasswordFileError) -> PasswordFile? {
        let path: String
        if let configured {
            path = configured
        } else if let named = environment["PGPASSFILE"], !named.isEmpty {
            path = named
        } else if let home = environment["HOME"], !home.isEmpty, access("\(home)/.pgpass", F_OK) == 0 {
            path = "\(home)/.pgpass"
        } else {
            return nil
        }
        do {
            try PathTrust.check(path, as: .linkedFile)
        } catch {
            throw PasswordFileError(path: path, problem: "is not trusted: \(error)")
        }
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw PasswordFileError(path: path, problem: "cannot be read (\(String(cString: strerror(errno))))")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw PasswordFileError(
                path: path,
                problem:
                    "can be read by others (mode \(String(info.st_mode & 0o777, radix: 8))): chmod 600 \(path), and change the password if others read it"
            )
        }
        guard let text = Self.read(path) else {
            throw PasswordFileError(path: path, problem: "cannot be read (\(String(cString: strerror(errno))))")
        }
        return PasswordFile(path: path, text: text)
    }

    /// The fields of one line, split at unescaped colons, escapes undone.
    private static func fields(of line: Substring) -> [String] {
        var fields: [String] = []
        var current = ""
        var escaped = false
        for character in line {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == ":" {
                fields.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        fields.append(current)
        return fields
    }

    /// The file's bytes, at most 1 MiB (a password file is a few lines).
    private static func read(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 { return nil }
            if count == 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A password file that cannot be used.
package struct PasswordFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file's path.
    package let path: String
    /// What is wrong, as a phrase after the path, with the fix.
    package let problem: String
    /// The sentence shown to people.
    package var description: String { "the password file \(path) \(problem)" }
}
