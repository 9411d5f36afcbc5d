import CSQLite

/// An SQLite call that failed: the library's message and code, with what was being done.
package struct SQLiteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// SQLite's primary result code (SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_FULL, ...).
    package let code: Int32
    /// SQLite's message.
    package let message: String
    /// What was being done.
    package let context: String

    /// The text shown to people.
    package var description: String { "\(context): \(message)" }

    /// Whether the file is damaged or not a database at all.
    package var isCorruption: Bool { code == SQLITE_CORRUPT || code == SQLITE_NOTADB }

    /// Whether the file could not be opened or written (permissions, an immutable file, a
    /// read-only file system): its content may be fine.
    package var isUnwritable: Bool { code == SQLITE_READONLY || code == SQLITE_PERM || code == SQLITE_CANTOPEN }
}

/// One connection to an SQLite database, used from one thread at a time (the journal's).
final class SQLiteDatabase {
    private let handle: OpaquePointer
    private var closed = false

    /// Opens the database at `path`, creating it only if `create` says so.
    init(path: String, create: Bool = true) throws(SQLiteError) {
        _ = Self.configured
        var opened: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &opened, flags, nil)
        guard code == SQLITE_OK, let opened else {
            let message = opened.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
            sqlite3_close(opened)
            throw SQLiteError(code: code & 0xff, message: message, context: "opening \(path)")
        }
        // A file the OS will not let us write is opened read-only without a word: say so now.
        if sqlite3_db_readonly(opened, "main") == 1 {
            sqlite3_close(opened)
            throw SQLiteError(
                code: SQLITE_READONLY, message: "the file (or its directory) is read-only to this user",
                context: "opening \(path)")
        }
        handle = opened
        sqlite3_extended_result_codes(handle, 0)
    }

    deinit {
        if !closed { sqlite3_close_v2(handle) }
    }

    /// Closes the connection (statements still open are finalized as they go); nothing may be
    /// run on it afterwards.
    func close() {
        guard !closed else { return }
        closed = true
        sqlite3_close_v2(handle)
    }

    /// Process-wide settings, applied once before the first connection opens.
    private static let configured: Void = {
        _ = concur_sqlite_disable_memory_statistics()
    }()

    func error(_ code: Int32, _ context: String) -> SQLiteError {
        SQLiteError(code: code & 0xff, message: String(cString: sqlite3_errmsg(handle)), context: context)
    }

    /// Runs statements that return nothing (or whose rows are ignored).
    func execute(_ sql: String) throws(SQLiteError) {
        let code = sqlite3_exec(handle, sql, nil, nil, nil)
        guard code == SQLITE_OK else { throw error(code, sql.prefix(60).description) }
    }

    /// Compiles a statement.
    func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard code == SQLITE_OK, let statement else { throw error(code, "preparing \(sql.prefix(60))") }
        return SQLiteStatement(database: self, handle: statement, sql: sql)
    }

    /// The first column of the first row of `sql`, as an integer (nil without rows).
    func integer(_ sql: String) throws(SQLiteError) -> Int64? {
        let statement = try prepare(sql)
        return try statement.step() ? statement.int64(0) : nil
    }

    /// The first column of every row of `sql`, as text.
    func texts(_ sql: String) throws(SQLiteError) -> [String] {
        let statement = try prepare(sql)
        var found: [String] = []
        while try statement.step() { found.append(statement.text(0) ?? "") }
        return found
    }
}

/// A compiled statement, reused: bind, step, reset.
final class SQLiteStatement {
    private let database: SQLiteDatabase
    private let handle: OpaquePointer
    private let sql: String

    init(database: SQLiteDatabase, handle: OpaquePointer, sql: String) {
        self.database = database
        self.handle = handle
        self.sql = sql
    }

    deinit {
        sqlite3_finalize(handle)
    }

    /// Binds `values` to the parameters 1, 2, ... after a reset.
    func bind(_ values: [SQLiteValue]) {
        sqlite3_reset(handle)
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            switch value {
            case .null: sqlite3_bind_null(handle, index)
            case .integer(let number): sqlite3_bind_int64(handle, index, number)
            case .real(let number): sqlite3_bind_double(handle, index, number)
            case .text(let text):
                // With its length: a NUL inside the text is kept, not taken for the end.
                let bytes = Array(text.utf8)
                guard !bytes.isEmpty else {
                    sqlite3_bind_text(handle, index, "", 0, concur_sqlite_transient())
                    continue
                }
                bytes.withUnsafeBufferPointer { buffer in
                    buffer.withMemoryRebound(to: CChar.self) { chars in
                        _ = sqlite3_bind_text(handle, index, chars.baseAddress, Int32(chars.count), concur_sqlite_transient())
                    }
                }
            }
        }
    }

    /// Steps once: true when a row is available.
    @discardableResult
    func step() throws(SQLiteError) -> Bool {
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            sqlite3_reset(handle)
            throw database.error(code, "running \(sql.prefix(60))")
        }
    }

    /// Binds `values` and steps to the end.
    func run(_ values: SQLiteValue...) throws(SQLiteError) {
        bind(values)
        while try step() {}
    }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }
    func text(_ column: Int32) -> String? {
        guard let bytes = sqlite3_column_text(handle, column) else { return nil }
        // By its length: a NUL inside the text is part of it.
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: count), as: UTF8.self)
    }
    func optionalInt64(_ column: Int32) -> Int64? { isNull(column) ? nil : int64(column) }
    func optionalDouble(_ column: Int32) -> Double? { isNull(column) ? nil : double(column) }
}

/// A value bound to a statement's parameter.
enum SQLiteValue {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    static func int(_ value: Int?) -> SQLiteValue { value.map { .integer(Int64($0)) } ?? .null }
    static func real(_ value: Double?) -> SQLiteValue { value.map { .real($0) } ?? .null }
    static func text(_ value: String?) -> SQLiteValue { value.map { .text($0) } ?? .null }
}
