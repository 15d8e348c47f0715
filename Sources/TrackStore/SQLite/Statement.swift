internal import CTrackSQLite

typealias SQLiteStatement = OpaquePointer

/// SQLite's `SQLITE_TRANSIENT`, which the C macro hides from Swift: SQLite
/// copies bound text and blobs before the call returns.
private var sqliteTransient: sqlite3_destructor_type {
    unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
}

/// A value that can be bound to a statement parameter.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
}

/// One prepared statement; finalised when released.
public final class Statement {
    let handle: SQLiteStatement
    public let sql: String
    unowned let database: Database

    /// Wraps a statement prepared elsewhere (e.g. one of a script).
    init(database: Database, handle: SQLiteStatement, sql: String) {
        self.handle = handle
        self.sql = sql
        self.database = database
    }

    /// Whether running it leaves the database file unchanged.
    public var isReadOnly: Bool { sqlite3_stmt_readonly(handle) != 0 }

    init(database: Database, sql: String) throws(SQLiteError) {
        var statement: SQLiteStatement?
        let code = sqlite3_prepare_v2(database.handle, sql, Int32(sql.utf8.count), &statement, nil)
        guard code == SQLITE_OK, let statement else {
            throw database.error(code: code, sql: sql)
        }
        self.handle = statement
        self.sql = sql
        self.database = database
    }

    deinit { sqlite3_finalize(handle) }

    // MARK: - Binding (1-based indexes, as in SQLite)

    // Every bind is checked: the first failure (a wrong index, text too long) is kept and
    // thrown by the next `step`, so a value is never silently left unbound.
    private var bindFailure: (code: Int32, index: Int32)?

    @inline(__always)
    private func checked(_ code: Int32, _ index: Int32) {
        if code != SQLITE_OK, bindFailure == nil { bindFailure = (code, index) }
    }

    public func bind(_ value: Int64, at index: Int32) { checked(sqlite3_bind_int64(handle, index, value), index) }
    public func bind(_ value: Int, at index: Int32) { checked(sqlite3_bind_int64(handle, index, Int64(value)), index) }
    public func bind(_ value: Double, at index: Int32) { checked(sqlite3_bind_double(handle, index, value), index) }
    public func bindNull(at index: Int32) { checked(sqlite3_bind_null(handle, index), index) }
    public func bind(_ value: String, at index: Int32) {
        // With its byte length: an embedded NUL must not cut the text short.
        let count = value.utf8.count
        guard count <= Int(Int32.max) else { return checked(SQLITE_TOOBIG, index) }
        checked(sqlite3_bind_text(handle, index, value, Int32(count), sqliteTransient), index)
    }
    public func bind(_ value: String?, at index: Int32) {
        if let value { bind(value, at: index) } else { bindNull(at: index) }
    }
    public func bind(_ value: Int64?, at index: Int32) {
        if let value { bind(value, at: index) } else { bindNull(at: index) }
    }
    public func bind(_ value: Double?, at index: Int32) {
        if let value { bind(value, at: index) } else { bindNull(at: index) }
    }
    public func bind(_ value: SQLValue, at index: Int32) {
        switch value {
        case .null: bindNull(at: index)
        case .integer(let v): bind(v, at: index)
        case .real(let v): bind(v, at: index)
        case .text(let v): bind(v, at: index)
        case .blob(let bytes):
            bytes.withUnsafeBytes { raw in
                checked(raw.count <= Int(Int32.max) ? sqlite3_bind_blob(handle, index, raw.baseAddress, Int32(raw.count), sqliteTransient)
                                                     : SQLITE_TOOBIG, index)
            }
        }
    }
    public func bind(_ values: [SQLValue]) {
        for (offset, value) in values.enumerated() { bind(value, at: Int32(offset + 1)) }
    }

    // MARK: - Stepping

    /// Advances the statement: `true` when a row is available, `false` when done.
    @discardableResult
    public func step() throws(SQLiteError) -> Bool {
        if let failure = bindFailure {
            bindFailure = nil
            sqlite3_reset(handle)
            throw SQLiteError(extendedCode: failure.code,
                              message: "cannot bind parameter \(failure.index): \(String(cString: sqlite3_errstr(failure.code)))", sql: sql)
        }
        let code = sqlite3_step(handle)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = database.error(code: code, sql: sql)
            sqlite3_reset(handle)
            throw error
        }
    }

    /// Resets the statement and clears its bindings, ready for the next use.
    public func reset() {
        bindFailure = nil
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// Runs the statement to completion with the given bindings.
    public func execute(_ values: [SQLValue] = []) throws(SQLiteError) {
        reset()
        bind(values)
        defer { sqlite3_reset(handle) }
        while try step() {}
    }

    // MARK: - Columns (0-based indexes, as in SQLite)

    public var columnCount: Int32 { sqlite3_column_count(handle) }
    public func columnName(_ index: Int32) -> String { String(cString: sqlite3_column_name(handle, index)) }
    public func isNull(_ index: Int32) -> Bool { sqlite3_column_type(handle, index) == SQLITE_NULL }
    public func int64(_ index: Int32) -> Int64 { sqlite3_column_int64(handle, index) }
    public func int(_ index: Int32) -> Int { Int(sqlite3_column_int64(handle, index)) }
    public func double(_ index: Int32) -> Double { sqlite3_column_double(handle, index) }
    /// The column as text, or nil for NULL (reading NULL through `String(cString:)` would trap).
    public func string(_ index: Int32) -> String? {
        guard let text = sqlite3_column_text(handle, index) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, index))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }
    public func optionalInt64(_ index: Int32) -> Int64? { isNull(index) ? nil : int64(index) }
    public func optionalDouble(_ index: Int32) -> Double? { isNull(index) ? nil : double(index) }

    // MARK: - Columns by name (the SELECT's names or aliases)

    private lazy var columnIndexes: [String: Int32] = {
        var map: [String: Int32] = [:]
        for i in 0..<columnCount where map[columnName(i)] == nil { map[columnName(i)] = i }
        return map
    }()

    /// The index of the result column called `name`; a query and its reader that
    /// disagree on a name is a programming error, caught the first time it runs.
    public func column(_ name: String) -> Int32 {
        guard let index = columnIndexes[name] else {
            preconditionFailure("no column '\(name)' in: \(sql)")
        }
        return index
    }
    // Read by name through `SQLRow` (int64("run_id"), string("name"), …).

    /// Steps to the end, collecting the column names and every row.
    public func allRows() throws(SQLiteError) -> QueryResult {
        let columns = (0..<columnCount).map(columnName)
        var rows: [[SQLValue]] = []
        while try step() { rows.append((0..<columnCount).map(value)) }
        return QueryResult(columns: columns, rows: rows)
    }

    /// The column as a dynamically typed value.
    public func value(_ index: Int32) -> SQLValue {
        switch sqlite3_column_type(handle, index) {
        case SQLITE_INTEGER: return .integer(int64(index))
        case SQLITE_FLOAT: return .real(double(index))
        case SQLITE_TEXT: return .text(string(index) ?? "")
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(handle, index))
            guard count > 0, let pointer = sqlite3_column_blob(handle, index) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: pointer, count: count)))
        default: return .null
        }
    }
}
