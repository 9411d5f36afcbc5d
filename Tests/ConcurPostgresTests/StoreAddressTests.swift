import ConcurPostgres
import StoreAccess
import Testing

/// The `store` URL, part by part, and every way of getting it wrong.
@Suite("The job store's address")
struct StoreAddressTests {
    func address(_ text: String) throws(StoreAddressError) -> StoreAddress {
        try StoreAddress(parsing: text, defaultUser: "alice")
    }

    func problem(_ text: String) -> String {
        do {
            _ = try address(text)
            return "accepted"
        } catch {
            return error.problem
        }
    }

    @Test("a socket directory in ?host=, as libpq writes it")
    func socketDirectory() throws {
        let store = try address("postgres://concur@/jobs?host=/tmp/pg-1")
        #expect(store.endpoint == .socket(directory: "/tmp/pg-1"))
        #expect(store.socketPath == "/tmp/pg-1/.s.PGSQL.5432")
        #expect(store.user == "concur")
        #expect(store.database == "jobs")
        #expect(store.tls == .disable)
        #expect(store.schema == "concur")
        #expect(store.description == "postgres://concur@/jobs?host=/tmp/pg-1")
        let escaped = try address("postgresql://concur@%2Ftmp%2Fpg-1:5433/jobs")
        #expect(escaped.socketPath == "/tmp/pg-1/.s.PGSQL.5433")
        #expect(escaped.description == "postgres://concur@/jobs?host=/tmp/pg-1&port=5433")
    }

    @Test("libpq's defaults: the socket in /var/run/postgresql, the user running, the database of that name")
    func defaults() throws {
        let store = try address("postgres://")
        #expect(store.socketPath == "/var/run/postgresql/.s.PGSQL.5432")
        #expect(store.user == "alice")
        #expect(store.database == "alice")
        #expect(store.description == "postgres://alice@/alice")
        #expect(try address("postgres:///jobs?port=6000").socketPath == "/var/run/postgresql/.s.PGSQL.6000")
    }

    @Test("TCP: host, port, IPv6 and sslmode, verify-full unless told otherwise")
    func tcp() throws {
        let store = try address("postgres://concur@db.example:6432/jobs")
        #expect(store.endpoint == .tcp(host: "db.example"))
        #expect(store.port == 6432)
        #expect(store.tls == .verifyFull)
        #expect(store.socketPath == nil)
        #expect(store.description == "postgres://concur@db.example:6432/jobs")
        let v6 = try address("postgres://concur@[::1]/jobs?sslmode=require&schema=queue_2")
        #expect(v6.endpoint == .tcp(host: "::1"))
        #expect(v6.port == 5432)
        #expect(v6.tls == .require)
        #expect(v6.schema == "queue_2")
        #expect(v6.description == "postgres://concur@[::1]/jobs?sslmode=require&schema=queue_2")
        #expect(try address("postgres://concur@10.0.0.5/jobs?sslmode=disable").tls == .disable)
    }

    @Test("a percent-escaped user and database")
    func escapes() throws {
        let store = try address("postgres://ops%40corp@/my%20jobs?host=/tmp/x")
        #expect(store.user == "ops@corp")
        #expect(store.database == "my jobs")
        #expect(store.description == "postgres://ops%40corp@/my%20jobs?host=/tmp/x")
    }

    @Test("wrong addresses are refused, naming the part")
    func wrong() {
        #expect(problem("mysql://x@y/z").contains("must start with postgres://"))
        #expect(problem("/tmp/pg").contains("must start with postgres://"))
        #expect(problem("postgres://concur:secret@/jobs").contains("holds a password"))
        #expect(problem("postgres://@/jobs").contains("user name before @ is empty"))
        #expect(problem("postgres://concur@host:0/jobs").contains("port 0 is not a number from 1 to 65535"))
        #expect(problem("postgres://concur@host:99999/jobs").contains("port 99999"))
        #expect(problem("postgres://concur@host:http/jobs").contains("port http"))
        #expect(problem("postgres://concur@[::1/jobs").contains("no closing ]"))
        #expect(problem("postgres://concur@[::1]x/jobs").contains("only :PORT may follow ]"))
        #expect(problem("postgres://concur@host/a/b").contains("one name after the host"))
        #expect(problem("postgres://concur@host/j%zz").contains("badly escaped"))
        #expect(problem("postgres://concur@host/j%00").contains("badly escaped"))
        #expect(problem("postgres://concur@host/jobs?sslmode=prefer").contains("falls back to plain text"))
        #expect(problem("postgres://concur@host/jobs?sslmode=allow").contains("falls back to plain text"))
        #expect(problem("postgres://concur@host/jobs?sslmode=verify-ca").contains("sslmode verify-ca is not known"))
        #expect(problem("postgres://concur@/jobs?host=/tmp/x&sslmode=require").contains("means nothing on a Unix socket"))
        #expect(problem("postgres://concur@host/jobs?schema=Bad-Name").contains("not a plain name"))
        #expect(problem("postgres://concur@host/jobs?schema=1abc").contains("not a plain name"))
        #expect(problem("postgres://concur@host/jobs?schema=" + String(repeating: "a", count: 64)).contains("not a plain name"))
        #expect(problem("postgres://concur@host/jobs?password=x").contains("parameter password is not known"))
        #expect(problem("postgres://concur@host/jobs?port").contains("parameter port has no value"))
        #expect(problem("postgres://concur@host/jobs?port=").contains("parameter port has no value"))
        #expect(problem("postgres://concur@host/jobs?port=1&port=2").contains("given twice"))
        #expect(problem("postgres://concur@host/jobs#top").contains("fragment"))
    }

    @Test("an error never repeats a password it found")
    func passwordNotEchoed() {
        do throws(StoreAddressError) {
            _ = try address("postgres://concur:hunter2@db/jobs")
            Issue.record("accepted")
        } catch {
            #expect(!error.description.contains("hunter2"))
            #expect(error.description.contains("postgres://concur:***@db/jobs"))
        }
    }
}
