import ConcurPostgres
import ConcurTestSupport
import Glibc
import StoreAccess
import Testing

/// libpq's `.pgpass` rules, and the checks concurd adds before it reads a password.
@Suite("The store's password file")
struct PasswordFileTests {
    let socket = try! StoreAddress(parsing: "postgres://concur@/jobs?host=/tmp/pg", defaultUser: "root")
    let defaultSocket = try! StoreAddress(parsing: "postgres://concur@/jobs", defaultUser: "root")
    let tcp = try! StoreAddress(parsing: "postgres://concur@db:6432/jobs", defaultUser: "root")

    @Test("the first matching line wins; * matches anything")
    func matching() {
        let file = PasswordFile(
            path: "/x",
            text: """
                # comment: skipped
                db:6432:other:concur:wrong-database
                db:6432:jobs:concur:right
                *:*:*:*:fallback
                too:few:fields
                """)
        #expect(file.password(for: tcp) == "right")
        #expect(file.password(for: socket) == "fallback")
        #expect(PasswordFile(path: "/x", text: "db:5432:*:*:p").password(for: tcp) == nil)
        #expect(PasswordFile(path: "/x", text: "").password(for: tcp) == nil)
    }

    @Test("a socket matches its directory, and localhost only for the default directory")
    func sockets() {
        let file = PasswordFile(path: "/x", text: "/tmp/pg:5432:*:concur:in-dir\nlocalhost:5432:*:concur:local")
        #expect(file.password(for: socket) == "in-dir")
        #expect(file.password(for: defaultSocket) == "local")
        #expect(PasswordFile(path: "/x", text: "localhost:*:*:*:local").password(for: socket) == nil)
    }

    @Test("escaped colons and backslashes; a colon in the password is kept")
    func escapes() {
        let file = PasswordFile(path: "/x", text: #"db:6432:jobs:concur:a\:b\\c:d"#)
        #expect(file.password(for: tcp) == #"a:b\c:d"#)
    }

    @Test("the file applies in order: the config's, PGPASSFILE, ~/.pgpass; none is fine")
    func order() throws {
        let folder = try TemporaryFolder()
        let configured = folder.path + "/configured"
        let fromEnvironment = folder.path + "/env"
        let home = folder.path + "/home"
        mkdir(home, 0o700)
        for (path, password) in [(configured, "c"), (fromEnvironment, "e"), (home + "/.pgpass", "h")] {
            try folder.write(path, "*:*:*:*:\(password)\n", mode: 0o600)
        }
        let environment = ["PGPASSFILE": fromEnvironment, "HOME": home]
        #expect(try PasswordFile.load(configured: configured, environment: environment)?.password(for: tcp) == "c")
        #expect(try PasswordFile.load(configured: nil, environment: environment)?.password(for: tcp) == "e")
        #expect(try PasswordFile.load(configured: nil, environment: ["HOME": home])?.password(for: tcp) == "h")
        #expect(try PasswordFile.load(configured: nil, environment: ["HOME": folder.path]) == nil)
        #expect(try PasswordFile.load(configured: nil, environment: [:]) == nil)
    }

    @Test("refused: readable by others, missing, a directory, a relative path")
    func refused() throws {
        let folder = try TemporaryFolder()
        let open = folder.path + "/open"
        try folder.write(open, "*:*:*:*:p\n", mode: 0o644)
        func problem(_ path: String) -> String {
            do throws(PasswordFileError) {
                _ = try PasswordFile.load(configured: path, environment: [:])
                return "accepted"
            } catch {
                return error.description
            }
        }
        #expect(problem(open).contains("can be read by others (mode 644): chmod 600"))
        #expect(problem(folder.path + "/missing").contains("cannot be examined"))
        #expect(problem(folder.path).contains("not a regular file"))
        #expect(problem("relative/pgpass").contains("not an absolute path"))
        let missingEnv: String
        do throws(PasswordFileError) {
            _ = try PasswordFile.load(configured: nil, environment: ["PGPASSFILE": folder.path + "/nope"])
            missingEnv = "accepted"
        } catch {
            missingEnv = error.description
        }
        #expect(missingEnv.contains("/nope"))
    }
}
