/// Where the shared job store is: a `postgres://` URL in libpq's form, checked part by part.
///
/// `postgres://USER@HOST:PORT/DATABASE?host=/socket/dir&port=5432&sslmode=disable&schema=concur`.
/// With no host, or with `?host=` naming a directory, the server is reached on its Unix socket
/// (`DIR/.s.PGSQL.PORT`, Debian's default directory being `/var/run/postgresql`), as libpq does.
/// The user defaults to the one running concurd and the database to the user's name, as in libpq.
///
/// A password in the URL is refused: the URL sits in a config file or on a command line, where
/// other users may read it; the password comes from a password file (``PasswordFile``). Parsing is
/// pure: no file is read and no name is resolved.
package struct StoreAddress: Sendable, Equatable, CustomStringConvertible {
    /// How the server is reached.
    package enum Endpoint: Sendable, Equatable {
        /// A Unix socket in `directory`, the file `directory/.s.PGSQL.port`.
        case socket(directory: String)
        /// TCP to a host name or address.
        case tcp(host: String)
    }

    /// Whether TCP is encrypted, as libpq's `sslmode` (the values that never downgrade in silence).
    package enum TLSMode: String, Sendable, Equatable, CaseIterable {
        /// Plain TCP. The default for a socket, where TLS means nothing.
        case disable
        /// Encrypted, the server's certificate not checked.
        case require
        /// Encrypted, and the certificate must be trusted by the system and name the host. The
        /// default for TCP.
        case verifyFull = "verify-full"
    }

    /// libpq's default socket directory on Debian.
    package static let defaultSocketDirectory = "/var/run/postgresql"
    /// The schema concur keeps its tables in unless `?schema=` names another.
    package static let defaultSchema = "concur"

    /// A socket directory or a TCP host.
    package var endpoint: Endpoint
    /// The port, 5432 unless given (for a socket, the number in its file name).
    package var port: Int
    /// The role to log in as.
    package var user: String
    /// The database, the user's name unless given.
    package var database: String
    /// TLS on TCP; always `.disable` on a socket.
    package var tls: TLSMode
    /// The schema the store's tables live in: a plain lower-case identifier, so it never needs quoting.
    package var schema: String

    /// The socket file to connect to, for a socket endpoint.
    package var socketPath: String? {
        guard case .socket(let directory) = endpoint else { return nil }
        return "\(directory)/.s.PGSQL.\(port)"
    }

    /// The server, as messages name it: the socket file, or HOST:PORT.
    package var serverName: String {
        switch endpoint {
        case .socket: socketPath ?? ""
        case .tcp(let host): "\(host):\(port)"
        }
    }

    /// The URL again, in a normal form: what the log and `status` print.
    package var description: String {
        var text = "postgres://\(Self.percentEncoded(user))@"
        var query: [String] = []
        switch endpoint {
        case .socket(let directory):
            if directory != Self.defaultSocketDirectory { query.append("host=\(directory)") }
        case .tcp(let host):
            text += host.contains(":") ? "[\(host)]" : host
            if port != 5432 { text += ":\(port)" }
        }
        if case .socket = endpoint, port != 5432 { query.append("port=\(port)") }
        text += "/\(Self.percentEncoded(database))"
        if case .tcp = endpoint, tls != .verifyFull { query.append("sslmode=\(tls.rawValue)") }
        if schema != Self.defaultSchema { query.append("schema=\(schema)") }
        return query.isEmpty ? text : text + "?" + query.joined(separator: "&")
    }

    /// Parses `text`; `defaultUser` stands in for a URL that names no user (the effective user).
    ///
    /// - Throws: ``StoreAddressError`` naming the part that is wrong and what to write instead.
    package init(parsing text: String, defaultUser: String) throws(StoreAddressError) {
        let schemes = ["postgres://", "postgresql://"]
        guard let scheme = schemes.first(where: { text.hasPrefix($0) }) else {
            throw StoreAddressError(text, "it must start with postgres:// (as postgres://USER@HOST/DATABASE)")
        }
        var rest = Substring(text.dropFirst(scheme.count))
        var queryText: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            queryText = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        if rest.contains("#") { throw StoreAddressError(text, "a fragment (#...) means nothing here: remove it") }
        var authority = rest
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        }

        var user = defaultUser
        var hostPort = authority
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            hostPort = authority[authority.index(after: at)...]
            if userInfo.contains(":") {
                throw StoreAddressError(
                    text,
                    "it holds a password, which would sit in a config file or on a command line: remove it and put it in a password file (PGPASSFILE or store_password_file)"
                )
            }
            guard let decoded = Self.percentDecoded(userInfo), !decoded.isEmpty else {
                throw StoreAddressError(text, "the user name before @ is empty or badly escaped")
            }
            user = decoded
        }

        var host: String?
        var port: Int?
        if !hostPort.isEmpty {
            let (hostPart, portPart) = try Self.split(hostPort, in: text)
            guard let decoded = Self.percentDecoded(hostPart), !decoded.isEmpty else {
                throw StoreAddressError(text, "the host is badly escaped")
            }
            host = decoded
            if let portPart { port = try Self.port(portPart, in: text) }
        }

        guard !path.contains("/") else {
            throw StoreAddressError(text, "the database is one name after the host (postgres://USER@HOST/DATABASE)")
        }
        guard let database = Self.percentDecoded(path) else {
            throw StoreAddressError(text, "the database name is badly escaped")
        }

        var tls: TLSMode?
        var schema = Self.defaultSchema
        var seen: Set<String> = []
        for item in queryText.split(separator: "&", omittingEmptySubsequences: true) {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(pair[0])
            guard pair.count == 2, let value = Self.percentDecoded(pair[1]), !value.isEmpty else {
                throw StoreAddressError(text, "the parameter \(key) has no value (write \(key)=VALUE)")
            }
            guard seen.insert(key).inserted else {
                throw StoreAddressError(text, "the parameter \(key) is given twice")
            }
            switch key {
            case "host":
                host = value
            case "port":
                port = try Self.port(Substring(value), in: text)
            case "sslmode":
                guard let mode = TLSMode(rawValue: value) else {
                    let hint =
                        ["prefer", "allow"].contains(value)
                        ? "sslmode=\(value) falls back to plain text without a word, which concurd does not do"
                        : "sslmode \(value) is not known"
                    throw StoreAddressError(
                        text, "\(hint): use \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                tls = mode
            case "schema":
                guard Self.isPlainIdentifier(value) else {
                    throw StoreAddressError(
                        text,
                        "the schema \(value) is not a plain name: use 1 to 63 of a-z, 0-9 and _, starting with a letter or _"
                    )
                }
                schema = value
            default:
                throw StoreAddressError(text, "the parameter \(key) is not known: use host, port, sslmode or schema")
            }
        }

        let endpoint: Endpoint
        switch host {
        case nil: endpoint = .socket(directory: Self.defaultSocketDirectory)
        case let host? where host.hasPrefix("/"):
            endpoint = .socket(directory: host.count > 1 && host.hasSuffix("/") ? String(host.dropLast()) : host)
        case let host?: endpoint = .tcp(host: host)
        }
        if case .socket = endpoint, let tls, tls != .disable {
            throw StoreAddressError(text, "sslmode=\(tls.rawValue) means nothing on a Unix socket: remove it")
        }
        self.endpoint = endpoint
        self.port = port ?? 5432
        self.user = user
        self.database = database.isEmpty ? user : database
        if case .tcp = endpoint { self.tls = tls ?? .verifyFull } else { self.tls = .disable }
        self.schema = schema
    }

    /// Splits `host:port`, `[v6]:port` or a bare host.
    private static func split(_ text: Substring, in url: String) throws(StoreAddressError) -> (Substring, Substring?) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw StoreAddressError(url, "an IPv6 address in [ ] has no closing ]")
            }
            let host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if after.isEmpty { return (host, nil) }
            guard after.hasPrefix(":") else { throw StoreAddressError(url, "only :PORT may follow ]") }
            return (host, after.dropFirst())
        }
        guard let colon = text.lastIndex(of: ":") else { return (text, nil) }
        return (text[..<colon], text[text.index(after: colon)...])
    }

    private static func port(_ text: Substring, in url: String) throws(StoreAddressError) -> Int {
        guard let port = Int(text), (1...65535).contains(port) else {
            throw StoreAddressError(url, "the port \(text) is not a number from 1 to 65535")
        }
        return port
    }

    private static func isPlainIdentifier(_ text: String) -> Bool {
        guard let first = text.utf8.first, text.utf8.count <= 63 else { return false }
        let letter = { (byte: UInt8) in (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || byte == UInt8(ascii: "_") }
        let digit = { (byte: UInt8) in (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
        return letter(first) && text.utf8.allSatisfy { letter($0) || digit($0) }
    }

    /// `%XX` decoded; nil if an escape is broken or the result is not UTF-8.
    private static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        guard !bytes.contains(0) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            let plain =
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || "-._~".utf8.contains(byte)
            if plain {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let digits = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 15)]], as: UTF8.self)
            }
        }
        return out
    }
}

/// A store URL that cannot be used, with the part that is wrong.
package struct StoreAddressError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The URL as given. It holds no password: one in it is refused before anything else is read.
    package let url: String
    /// What is wrong and what to write instead.
    package let problem: String

    init(_ url: String, _ problem: String) {
        // A URL with a password is refused; what is echoed leaves the password out.
        self.url = Self.withoutPassword(url)
        self.problem = problem
    }

    /// The sentence shown to people.
    package var description: String { "the job store address \(url) cannot be used: \(problem)" }

    private static func withoutPassword(_ url: String) -> String {
        guard let scheme = url.firstIndex(of: ":"), url[scheme...].hasPrefix("://") else { return url }
        let rest = url[url.index(scheme, offsetBy: 3)...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@"),
            let colon = rest[..<at].firstIndex(of: ":")
        else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }
}
