internal import CTrackSQLite

/// An error reported by SQLite: the extended result code, SQLite's message,
/// and the SQL that was running, so that a failure says what it was doing.
///
///     SQLite error 19: UNIQUE constraint failed: runs.name - while executing `INSERT INTO runs …`
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    /// The extended result code (e.g. 2067 for SQLITE_CONSTRAINT_UNIQUE).
    public let extendedCode: Int32
    public let message: String
    public let sql: String?

    /// The primary result code (the low byte of the extended one).
    public var code: Int32 { extendedCode & 0xff }

    public var isBusy: Bool { code == SQLITE_BUSY || code == SQLITE_LOCKED }
    public var isConstraint: Bool { code == SQLITE_CONSTRAINT }
    /// SQLITE_CONSTRAINT_PRIMARYKEY (a macro Swift does not import).
    public var isPrimaryKeyViolation: Bool { extendedCode == 1555 }
    public var isNotADatabase: Bool { code == SQLITE_NOTADB || code == SQLITE_CORRUPT }

    public init(extendedCode: Int32, message: String, sql: String? = nil) {
        self.extendedCode = extendedCode
        self.message = message
        self.sql = sql
    }

    public var description: String {
        var text: String
        switch code {
        case 13: text = "the disk is full (SQLite error 13: \(message)); the transaction was rolled back: nothing of it was written"
        case 10: text = "a disk input/output error (SQLite error 10: \(message)); the transaction was rolled back: nothing of it was written"
        default: text = "SQLite error \(code): \(message)"
        }
        // The statement, shortened: generated SQL can be long, and the message is for people.
        if let sql { text += " - while executing `\(sql.count > 200 ? sql.prefix(200) + "…" : Substring(sql))`" }
        return text
    }
}
