/// Inserts many rows with multi-row `INSERT … VALUES (…), (…), …` statements:
/// full chunks of `chunkSize` rows through one prepared statement, the rest
/// one row at a time. Per-statement overhead, not SQLite's b-tree work, is
/// what bulk ingest pays per row otherwise.
final class ChunkedInsert {
    let database: Database
    let prefix: String
    let columns: Int
    let chunkSize: Int
    private var chunkStatement: Statement?
    private var singleStatement: Statement?

    /// `prefix` is e.g. `INSERT INTO t(a, b)`; each row has `columns` parameters.
    init(database: Database, prefix: String, columns: Int, chunkSize: Int = 512) {
        self.database = database
        self.prefix = prefix
        self.columns = columns
        self.chunkSize = chunkSize
    }

    /// Inserts rows 0..<count; `bind(row, statement, firstParameterIndex)` binds one row's values.
    @inline(__always)
    func insert(count: Int, bind: (Int, Statement, Int32) -> Void) throws {
        let placeholders = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
        var start = 0
        if count >= chunkSize {
            let statement = try chunkStatement ?? database.makeStatement(
                prefix + " VALUES " + Array(repeating: placeholders, count: chunkSize).joined(separator: ", "))
            chunkStatement = statement
            while count - start >= chunkSize {
                for i in 0..<chunkSize { bind(start + i, statement, Int32(i * columns + 1)) }
                try statement.step()
                statement.reset()
                start += chunkSize
            }
        }
        if start < count {
            let statement = try singleStatement ?? database.makeStatement(prefix + " VALUES " + placeholders)
            singleStatement = statement
            for row in start..<count {
                bind(row, statement, 1)
                try statement.step()
                statement.reset()
            }
        }
    }
}
