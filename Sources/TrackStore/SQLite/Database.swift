internal import CTrackSQLite
import Foundation

typealias SQLiteConnection = OpaquePointer

/// One SQLite connection, configured as `track` needs it: extended result
/// codes, a busy timeout, WAL, `synchronous = NORMAL`, foreign keys on, and a
/// first read so that a file that is not a database fails at once.
public final class Database {
    let handle: SQLiteConnection
    public let path: String
    public let isReadOnly: Bool
    private var statementCache: [String: Statement] = [:]
    private var transactionDepth = 0

    /// Opens (creating if asked) the database at `path`.
    /// - Parameter busyTimeout: how long to wait for another writer's lock, in seconds.
    public init(path: String, readOnly: Bool = false, create: Bool = true,
                busyTimeout: Double = 10) throws(SQLiteError) {
        var connection: SQLiteConnection?
        var flags = SQLITE_OPEN_NOMUTEX
        if readOnly {
            flags |= SQLITE_OPEN_READONLY
        } else {
            flags |= SQLITE_OPEN_READWRITE
            if create { flags |= SQLITE_OPEN_CREATE }
        }
        let code = sqlite3_open_v2(path, &connection, flags, nil)
        guard code == SQLITE_OK, let connection else {
            let message = connection.map { String(cString: sqlite3_errmsg($0)) }
                ?? String(cString: sqlite3_errstr(code))
            if let connection { sqlite3_close_v2(connection) }
            throw SQLiteError(extendedCode: code, message: message)
        }
        self.handle = connection
        self.path = path
        self.isReadOnly = readOnly
        sqlite3_extended_result_codes(connection, 1)
        sqlite3_busy_timeout(connection, Self.milliseconds(busyTimeout))
        Self.registerNumber(connection)
        do throws(SQLiteError) {
            // A first read: "file is not a database" surfaces here, not later.
            try execute("SELECT count(*) FROM sqlite_master")
            if readOnly {
                try execute("PRAGMA query_only = ON")
            } else {
                let mode = try scalarText("PRAGMA journal_mode = WAL")
                guard mode?.lowercased() == "wal" else {
                    throw SQLiteError(extendedCode: SQLITE_ERROR,
                                      message: "could not enable WAL (journal_mode is \(mode ?? "unknown"))")
                }
                try execute("PRAGMA synchronous = NORMAL")
                // 64 MiB of page cache: bulk inserts touch the question index at random.
                try execute("PRAGMA cache_size = -65536")
            }
            try execute("PRAGMA foreign_keys = ON")
        } catch {
            statementCache.removeAll()
            sqlite3_close_v2(connection)
            throw error
        }
    }

    deinit {
        statementCache.removeAll()
        sqlite3_close_v2(handle)
    }

    /// `track_number(x)`: x as a number when it is one (an integer, a real, or text in decimal
    /// notation), else NULL — as PostgreSQL's dialect spells it (`SQLDialect.number`), where
    /// SQLite's CAST would read 'abc' as 0 and '5e-7x' as 5e-7.
    static func registerNumber(_ connection: SQLiteConnection) {
        sqlite3_create_function_v2(connection, "track_number", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nil, { context, _, arguments in
            guard let value = arguments?[0] else { sqlite3_result_null(context); return }
            switch sqlite3_value_type(value) {
            case SQLITE_INTEGER, SQLITE_FLOAT:
                sqlite3_result_double(context, sqlite3_value_double(value))
            case SQLITE_TEXT:
                let text = sqlite3_value_text(value).map { String(cString: $0) } ?? ""
                if let number = decimalNumber(text) { sqlite3_result_double(context, number) } else { sqlite3_result_null(context) }
            default:
                sqlite3_result_null(context)
            }
        }, nil, nil, nil)
    }

    func error(code: Int32, sql: String?) -> SQLiteError {
        let extended = sqlite3_extended_errcode(handle)
        let message = String(cString: sqlite3_errmsg(handle))
        return SQLiteError(extendedCode: extended != 0 ? extended : code, message: message, sql: sql)
    }

    // MARK: - Statements

    /// A new, uncached prepared statement.
    public func makeStatement(_ sql: String) throws(SQLiteError) -> Statement {
        try Statement(database: self, sql: sql)
    }

    /// A prepared statement from the cache, reset and with cleared bindings.
    public func cachedStatement(_ sql: String) throws(SQLiteError) -> Statement {
        if let statement = statementCache[sql] {
            statement.reset()
            return statement
        }
        let statement = try Statement(database: self, sql: sql)
        statementCache[sql] = statement
        return statement
    }

    /// Runs one or more SQL statements separated by semicolons.
    public func executeScript(_ sql: String) throws(SQLiteError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        if code != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(code))
            sqlite3_free(errorMessage)
            throw SQLiteError(extendedCode: sqlite3_extended_errcode(handle), message: message,
                              sql: sql.count > 200 ? String(sql.prefix(200)) + "…" : sql)
        }
    }

    /// Runs one statement with bindings, through the statement cache.
    public func execute(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) {
        try cachedStatement(sql).execute(values)
    }

    /// Calls `row` for every row the query returns.
    public func forEachRow(_ sql: String, _ values: [SQLValue] = [],
                           _ row: (Statement) throws -> Void) throws {
        let statement = try cachedStatement(sql)
        statement.bind(values)
        defer { statement.reset() }
        while try statement.step() { try row(statement) }
    }

    public func scalarInt(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) -> Int64? {
        let statement = try cachedStatement(sql)
        statement.bind(values)
        defer { statement.reset() }
        guard try statement.step(), !statement.isNull(0) else { return nil }
        return statement.int64(0)
    }

    public func scalarDouble(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) -> Double? {
        let statement = try cachedStatement(sql)
        statement.bind(values)
        defer { statement.reset() }
        guard try statement.step(), !statement.isNull(0) else { return nil }
        return statement.double(0)
    }

    public func scalarText(_ sql: String, _ values: [SQLValue] = []) throws(SQLiteError) -> String? {
        let statement = try cachedStatement(sql)
        statement.bind(values)
        defer { statement.reset() }
        guard try statement.step() else { return nil }
        return statement.string(0)
    }

    /// How long to wait for another connection's lock, in seconds.
    public func setBusyTimeout(_ seconds: Double) {
        sqlite3_busy_timeout(handle, Self.milliseconds(seconds))
    }

    /// A timeout in whole milliseconds, clamped to 0 ... 1 day (NaN: 0).
    static func milliseconds(_ seconds: Double) -> Int32 {
        guard seconds > 0 else { return 0 }
        return Int32(min(seconds, 86_400) * 1000)
    }

    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    public var changes: Int { Int(sqlite3_changes(handle)) }
    public var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    // MARK: - Transactions

    /// Whether triggers fire on this connection. track's own writers maintain
    /// the stored summaries themselves and write with them off; the triggers
    /// (views.sql) are for other clients and for `track sql --write`.
    public var triggersEnabled: Bool {
        get { track_db_config_int(handle, SQLITE_DBCONFIG_ENABLE_TRIGGER, -1) == 1 }
        set { _ = track_db_config_int(handle, SQLITE_DBCONFIG_ENABLE_TRIGGER, newValue ? 1 : 0) }
    }

    /// Runs `body` with foreign-key checks off, restoring them after, for writers that check
    /// their references themselves (track's own rows name a run they hold and questions they
    /// inserted or read in the same transaction) and for migrations that rebuild a referenced
    /// table. The pragma cannot change inside a transaction, so this must wrap one.
    public func withoutForeignKeyChecks<T>(_ body: () throws -> T) throws -> T {
        try execute("PRAGMA foreign_keys = OFF")
        defer { try? execute("PRAGMA foreign_keys = ON") }
        return try body()
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back
    /// when it throws (the first error wins). Nested calls use savepoints.
    /// Write transactions start `IMMEDIATE`, so that the busy timeout applies
    /// to taking the write lock rather than failing on upgrade.
    public func transaction<T>(immediate: Bool = true, _ body: () throws -> T) throws -> T {
        let savepoint = "track_\(transactionDepth)"
        if transactionDepth == 0 {
            try executeScript(immediate && !isReadOnly ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED")
        } else {
            try executeScript("SAVEPOINT \(savepoint)")
        }
        transactionDepth += 1
        let result: T
        do {
            result = try body()
        } catch {
            transactionDepth -= 1
            if transactionDepth == 0 {
                if isInTransaction { try? executeScript("ROLLBACK") }
            } else {
                try? executeScript("ROLLBACK TO \(savepoint)")
                try? executeScript("RELEASE \(savepoint)")
            }
            throw error
        }
        transactionDepth -= 1
        do {
            try executeScript(transactionDepth == 0 ? "COMMIT" : "RELEASE \(savepoint)")
        } catch {
            if transactionDepth == 0, isInTransaction { try? executeScript("ROLLBACK") }
            throw error
        }
        return result
    }

    // MARK: - Ad-hoc SQL

    /// Runs every statement of `script` in order, collecting the rows of each
    /// one that returns columns. With `refuseWrites`, a statement that would
    /// change the file (even `VACUUM INTO`) is refused before it runs. An
    /// empty script is an error, never silently nothing.
    public func runScript(_ script: String, refuseWrites: Bool) throws -> [QueryResult] {
        var bytes = Array(script.utf8)
        bytes.append(0)
        var results: [QueryResult] = []
        var sawStatement = false
        try bytes.withUnsafeBufferPointer { buffer in
            try buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { start in
                var cursor: UnsafePointer<CChar>? = start
                let end = start + buffer.count - 1
                while let current = cursor, current < end {
                    var handle: SQLiteStatement?
                    var tail: UnsafePointer<CChar>?
                    let code = sqlite3_prepare_v2(self.handle, current, Int32(end - current), &handle, &tail)
                    let text = String(decoding: UnsafeRawBufferPointer(start: current, count: (tail ?? end) - current), as: UTF8.self)
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                    guard code == SQLITE_OK else { throw self.error(code: code, sql: text) }
                    cursor = tail
                    guard let handle else { continue }    // whitespace or a comment
                    sawStatement = true
                    let statement = Statement(database: self, handle: handle, sql: text)
                    if refuseWrites, !statement.isReadOnly {
                        throw StoreError("`\(text.prefix(80))` would change the store, which is opened read-only")
                    }
                    let result = try statement.allRows()
                    if !result.columns.isEmpty { results.append(result) }
                }
            }
        }
        guard sawStatement else { throw StoreError("no SQL statement given") }
        return results
    }

    /// Limits what ad-hoc SQL on this connection may do: SQLite's defensive
    /// mode, no ATTACH/DETACH, no `fts3_tokenizer` or `load_extension`, and,
    /// with a `timeout` (seconds), an interrupt when a query runs longer.
    public func restrictForAdHocSQL(timeout: Double?) {
        _ = track_db_config_int(handle, SQLITE_DBCONFIG_DEFENSIVE, 1)
        _ = track_db_config_int(handle, SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, 0)
        sqlite3_set_authorizer(handle, { _, action, first, second, _, _ in
            if action == SQLITE_ATTACH || action == SQLITE_DETACH { return SQLITE_DENY }
            // track's stores stay in WAL mode (several writers at once): no changing it from ad-hoc SQL.
            if action == SQLITE_PRAGMA, let name = first, second != nil {
                let pragma = String(cString: name).lowercased()
                if pragma == "journal_mode" || pragma == "locking_mode" { return SQLITE_DENY }
            }
            if action == SQLITE_FUNCTION, let name = second {
                let function = String(cString: name).lowercased()
                if function == "fts3_tokenizer" || function == "load_extension" { return SQLITE_DENY }
            }
            return SQLITE_OK
        }, nil)
        if let timeout {
            deadline.value = Date().timeIntervalSince1970 + timeout
            sqlite3_progress_handler(handle, 10_000, { context in
                guard let context else { return 0 }
                let deadline = Unmanaged<Deadline>.fromOpaque(context).takeUnretainedValue()
                return Date().timeIntervalSince1970 > deadline.value ? 1 : 0
            }, Unmanaged.passUnretained(deadline).toOpaque())
        }
    }

    /// When the running query must stop (see `restrictForAdHocSQL`).
    final class Deadline { var value = Double.infinity }
    private let deadline = Deadline()

    /// The SQLite library version, e.g. "3.40.1".
    public static var sqliteVersion: String { String(cString: sqlite3_libversion()) }
}

/// `text` as a finite number in decimal notation, else nil: no "inf", "nan" or hexadecimal,
/// which `Double.init` would read. Spaces around it are allowed when `trimming` (stored
/// parameters), not otherwise (option values).
public func decimalNumber(_ text: String, trimming: Bool = true) -> Double? {
    let trimmed = trimming ? text.trimmingCharacters(in: .whitespaces) : text
    guard !trimmed.isEmpty, trimmed.utf8.allSatisfy({ (48...57).contains($0) || $0 == 43 || $0 == 45 || $0 == 46 || $0 == 101 || $0 == 69 }),
          let value = Double(trimmed), value.isFinite else { return nil }
    return value
}
