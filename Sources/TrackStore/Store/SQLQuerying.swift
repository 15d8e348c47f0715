import Foundation

/// The SQL a store's queries are written in: SQLite's, or PostgreSQL's where they differ.
public enum SQLDialect: Sendable {
    case sqlite, postgres

    /// A stored value (params and tags are text) as a number for sorting and comparing: NULL
    /// when it is not one, on both stores (so 'abc' never matches `params.x < 1`). The
    /// expression appears once (it may hold a parameter).
    func number(_ expression: String) -> String {
        switch self {
        case .sqlite: "track_number(\(expression))"
        case .postgres: "(SELECT CASE WHEN x.v ~ '^\\s*[-+]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?\\s*$' THEN x.v::double precision END FROM (SELECT (\(expression))::text AS v) AS x)"
        }
    }

    /// A case-insensitive LIKE (SQLite's LIKE is, for ASCII; PostgreSQL's is not).
    var like: String { self == .sqlite ? "LIKE" : "ILIKE" }
}

/// One row of a query's result, read by column index (0-based) or by the SELECT's name.
public protocol SQLRow {
    func isNull(_ index: Int32) -> Bool
    func int64(_ index: Int32) -> Int64
    func double(_ index: Int32) -> Double
    func string(_ index: Int32) -> String?
    func value(_ index: Int32) -> SQLValue
    /// The index of the result column called `name`; a query and its reader that disagree on a
    /// name is a programming error, caught the first time it runs.
    func column(_ name: String) -> Int32
}

extension SQLRow {
    public func int(_ index: Int32) -> Int { Int(int64(index)) }
    public func optionalInt64(_ index: Int32) -> Int64? { isNull(index) ? nil : int64(index) }
    public func optionalDouble(_ index: Int32) -> Double? { isNull(index) ? nil : double(index) }
    public func int64(_ name: String) -> Int64 { int64(column(name)) }
    public func int(_ name: String) -> Int { int(column(name)) }
    public func double(_ name: String) -> Double { double(column(name)) }
    public func string(_ name: String) -> String? { string(column(name)) }
    public func optionalInt64(_ name: String) -> Int64? { optionalInt64(column(name)) }
    public func optionalDouble(_ name: String) -> Double? { optionalDouble(column(name)) }
}

/// A connection the store's shared queries run on: a SQLite file or a PostgreSQL server.
/// Queries are written with `?` parameters; PostgreSQL's adapter numbers them.
public protocol SQLQuerying: AnyObject {
    var dialect: SQLDialect { get }
    /// Calls `body` for every row the query returns.
    func eachRow(_ sql: String, _ values: [SQLValue], _ body: (any SQLRow) throws -> Void) throws
    /// Runs one statement that returns no rows.
    func run(_ sql: String, _ values: [SQLValue]) throws
    /// Runs `body` in one transaction (nested calls are savepoints).
    func inTransaction<T>(_ body: () throws -> T) throws -> T
}

extension SQLQuerying {
    /// The first column of the first row, when there is one and it is not NULL.
    public func firstInt(_ sql: String, _ values: [SQLValue] = []) throws -> Int64? {
        var result: Int64?
        var first = true
        try eachRow(sql, values) { row in
            if first, !row.isNull(0) { result = row.int64(0) }
            first = false
        }
        return result
    }

    public func firstText(_ sql: String, _ values: [SQLValue] = []) throws -> String? {
        var result: String?
        var first = true
        try eachRow(sql, values) { row in
            if first { result = row.string(0) }
            first = false
        }
        return result
    }
}

extension Statement: SQLRow {}

extension Database: SQLQuerying {
    public var dialect: SQLDialect { .sqlite }

    public func eachRow(_ sql: String, _ values: [SQLValue], _ body: (any SQLRow) throws -> Void) throws {
        try forEachRow(sql, values) { try body($0) }
    }

    public func run(_ sql: String, _ values: [SQLValue]) throws { try execute(sql, values) }

    public func inTransaction<T>(_ body: () throws -> T) throws -> T { try transaction(body) }
}

/// A row of a PostgreSQL result.
struct PostgresRow: SQLRow {
    let values: [SQLValue]
    let columns: [String: Int32]
    let sql: String

    func isNull(_ index: Int32) -> Bool { values[Int(index)] == .null }
    func int64(_ index: Int32) -> Int64 {
        switch values[Int(index)] {
        case .integer(let i): i
        case .real(let d): Int64(exactly: d.rounded(.towardZero)) ?? 0
        case .text(let s): Int64(s) ?? 0
        default: 0
        }
    }
    func double(_ index: Int32) -> Double {
        switch values[Int(index)] {
        case .integer(let i): Double(i)
        case .real(let d): d
        case .text(let s): PostgresConnection.parseDouble(s) ?? 0
        default: 0
        }
    }
    func string(_ index: Int32) -> String? {
        switch values[Int(index)] {
        case .null: nil
        case .integer(let i): String(i)
        case .real(let d): JSONValue.format(d)
        case .text(let s): s
        case .blob(let b): String(decoding: b, as: UTF8.self)
        }
    }
    func value(_ index: Int32) -> SQLValue { values[Int(index)] }
    func column(_ name: String) -> Int32 {
        guard let index = columns[name] else { preconditionFailure("no column '\(name)' in: \(sql)") }
        return index
    }
}

extension PostgresConnection: SQLQuerying {
    public var dialect: SQLDialect { .postgres }

    public func eachRow(_ sql: String, _ values: [SQLValue], _ body: (any SQLRow) throws -> Void) throws {
        let result = try query(Self.numberedParameters(sql), values)
        var columns: [String: Int32] = [:]
        for (index, name) in result.columns.enumerated() where columns[name] == nil { columns[name] = Int32(index) }
        for row in result.rows { try body(PostgresRow(values: row, columns: columns, sql: sql)) }
    }

    public func run(_ sql: String, _ values: [SQLValue]) throws {
        try query(Self.numberedParameters(sql), values)
    }

    public func inTransaction<T>(_ body: () throws -> T) throws -> T { try transaction(body) }

    /// SQLite's parameters as PostgreSQL's: `?` numbered in order, `?N` as `$N`; quoted text,
    /// quoted names and comments are left as they are.
    static func numberedParameters(_ sql: String) -> String {
        guard sql.contains("?") else { return sql }
        var out = ""
        out.reserveCapacity(sql.utf8.count + 8)
        var next = 1
        var quote: Character?
        let characters = Array(sql)
        var i = 0
        while i < characters.count {
            let c = characters[i]
            if let open = quote {
                out.append(c)
                if c == open { quote = nil }
                i += 1
                continue
            }
            switch c {
            case "'", "\"":
                quote = c
                out.append(c)
                i += 1
            case "-" where i + 1 < characters.count && characters[i + 1] == "-":
                while i < characters.count, characters[i] != "\n" { out.append(characters[i]); i += 1 }
            case "?":
                var digits = ""
                var j = i + 1
                while j < characters.count, characters[j].isASCII, characters[j].isNumber { digits.append(characters[j]); j += 1 }
                if digits.isEmpty {
                    out += "$\(next)"
                    next += 1
                } else {
                    out += "$" + digits
                }
                i = j
            default:
                out.append(c)
                i += 1
            }
        }
        return out
    }
}
