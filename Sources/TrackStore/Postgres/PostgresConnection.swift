import CTrackPQ
import Foundation

/// An error from PostgreSQL or libpq, with the server's SQLSTATE when it sent one.
/// Messages never carry a password: connection strings are shown redacted.
public struct PostgresError: TrackFailure, CustomStringConvertible {
    public var message: String
    public var sqlState: String?
    public var kind: ErrorKind
    public var remedy: Remedy?

    public init(_ message: String, sqlState: String? = nil, kind: ErrorKind = .storage, remedy: Remedy? = nil) {
        self.message = message
        self.sqlState = sqlState
        self.kind = kind
        self.remedy = remedy
    }

    public var description: String { message }

    /// A serialization failure, a deadlock, or a unique key another writer took first (a question
    /// both insert, a run name): the transaction can be retried and sees the other's row.
    var isRetryable: Bool { sqlState == "40001" || sqlState == "40P01" || sqlState == "23505" }
}

/// What a `--db` value names: a SQLite file, or a PostgreSQL database by libpq URI.
public enum StoreLocation {
    /// A libpq connection URI (`postgresql://`, `postgres://`, in any case) or keyword string
    /// (`host=… dbname=…`): never a file path.
    public static func isPostgresURI(_ text: String) -> Bool {
        let lower = text.lowercased()
        if lower.hasPrefix("postgresql://") || lower.hasPrefix("postgres://") { return true }
        return isKeywordString(text)
    }

    /// `key=value` pairs separated by spaces whose first key is one libpq knows.
    static func isKeywordString(_ text: String) -> Bool {
        let trimmed = text.drop(while: { $0 == " " })
        guard let equals = trimmed.firstIndex(of: "=") else { return false }
        let key = trimmed[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
        return ["host", "hostaddr", "port", "dbname", "user", "password", "passfile", "service", "sslmode", "connect_timeout",
                "options", "application_name"].contains(key)
    }

    /// Whether `text` holds "://" or "password" in any case: one pass over its bytes without a
    /// copy, since every line track prints is looked at.
    static func mayHoldPassword(_ text: String) -> Bool {
        let word = Array("password".utf8)
        var colon = 0, matched = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: ":") { colon = 1 } else if colon > 0, byte == UInt8(ascii: "/") {
                colon += 1
                if colon == 3 { return true }
            } else { colon = 0 }
            let lower = byte | (byte >= 0x41 && byte <= 0x5A ? 0x20 : 0)
            matched = lower == word[matched] ? matched + 1 : (lower == word[0] ? 1 : 0)
            if matched == word.count { return true }
        }
        return false
    }

    /// Any text (a message, an error) with every connection password in it redacted: URIs'
    /// `user:secret@`, `password=…` in URIs and keyword strings (quoted values too).
    public static func redactedMessage(_ text: String) -> String {
        guard mayHoldPassword(text) else { return text }
        var result = text.replacingOccurrences(of: #"(?i)(postgres(?:ql)?://[^:/@\s]*):[^@\s/]*@"#, with: "$1:***@", options: .regularExpression)
        result = result.replacingOccurrences(of: #"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s']*)"#, with: "$1***", options: .regularExpression)
        return result
    }

    /// The URI as it may be shown: a password in it (`user:secret@`, `password=`) replaced by `***`.
    public static func redacted(_ uri: String) -> String {
        var text = uri
        if let scheme = text.range(of: "://") {
            let rest = text[scheme.upperBound...]
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                text.replaceSubrange(text.index(after: colon)..<at, with: "***")
            }
        }
        // Every `password=…` parameter, not only the first, in URIs and keyword strings.
        return redactedMessage(text)
    }
}

/// One connection to a PostgreSQL server through libpq. Not shared between threads.
public final class PostgresConnection {
    let connection: OpaquePointer
    /// Open `transaction` calls: nested ones are savepoints.
    private var transactionDepth = 0
    /// The URI with any password redacted: what errors and provenance show.
    public let displayName: String

    /// Connects with a connect timeout (seconds; libpq's `connect_timeout` unless the URI sets
    /// one), so that an unreachable server is an error, never a hang. Passwords come from the URI,
    /// `PGPASSWORD` or `~/.pgpass`, as libpq reads them.
    public init(_ uri: String, connectTimeout: Int = 10) throws {
        displayName = StoreLocation.redacted(uri)
        // The URI (or keyword string) expanded, then connect_timeout from --busy-timeout, which
        // wins over one in the URI (0 there would mean: wait forever).
        let timeout = String(max(1, connectTimeout))
        let keywords = ["dbname", "connect_timeout"], values = [uri, timeout]
        let connection: OpaquePointer? = keywords.withCStrings { keywordPointers in
            values.withCStrings { valuePointers in PQconnectdbParams(keywordPointers, valuePointers, 1) }
        }
        guard let connection else {
            throw PostgresError("cannot connect to \(displayName): out of memory")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            // Not yet owned by self (no deinit runs): finished here, once.
            let reason = Self.clean(String(cString: PQerrorMessage(connection)), uri: uri)
            PQfinish(connection)
            throw PostgresError("cannot connect to \(displayName): \(reason)", kind: .storage)
        }
        self.connection = connection
        // Notices (e.g. "table does not exist, skipping") are not for users.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        // Waiting for another session's lock is bounded as SQLite's busy timeout bounds it.
        try execute("SET lock_timeout = '\(max(1, connectTimeout) * 1000)ms'")
    }

    deinit { PQfinish(connection) }

    /// libpq's message, one line, without the password should the server echo the URI.
    static func clean(_ message: String, uri: String) -> String {
        var text = message.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n\t", with: " ")
            .replacingOccurrences(of: "\n", with: "; ")
        text = StoreLocation.redacted(text)
        if let password = URLComponents(string: uri)?.password, !password.isEmpty {
            text = text.replacingOccurrences(of: password, with: "***")
        }
        return text
    }

    func error(_ result: OpaquePointer?, _ context: String) -> PostgresError {
        let message: String
        var state: String?
        if let result {
            message = String(cString: PQresultErrorMessage(result))
            if let field = PQresultErrorField(result, Int32(UInt8(ascii: "C"))) { state = String(cString: field) }
        } else {
            message = String(cString: PQerrorMessage(connection))
        }
        let text = message.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "\n\t", with: " ").replacingOccurrences(of: "\n", with: "; ")
        let kind: ErrorKind = state == "23505" || state == "23503" ? .conflict : (state?.hasPrefix("42") ?? false) ? .invalidInput : .storage
        return PostgresError("\(context): \(text)", sqlState: state, kind: kind)
    }

    /// Runs one or more statements without parameters (a script); no rows returned.
    public func execute(_ sql: String) throws {
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else { throw error(result, "PostgreSQL") }
    }

    /// Runs one statement with `$1, $2, …` parameters (sent as text) and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [SQLValue] = []) throws -> QueryResult {
        let texts: [String?] = parameters.map { value in
            switch value {
            case .null: nil
            case .integer(let i): String(i)
            case .real(let d): Self.format(d)
            case .text(let s): s
            case .blob(let b): "\\x" + b.map { String(format: "%02x", $0) }.joined()
            }
        }
        let result: OpaquePointer? = withCStrings(texts) { pointers in
            PQexecParams(connection, sql, Int32(pointers.count), nil, pointers, nil, nil, 0)
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else { throw error(result, "PostgreSQL") }
        return Self.rows(result)
    }

    /// A double as PostgreSQL reads it back exactly (the shortest text that round-trips; inf and
    /// nan by PostgreSQL's names).
    static func format(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
        return d.description
    }

    /// The rows of a result, typed by column type: integers, floating point (and numeric) as
    /// numbers, bytea as bytes, everything else as text. A numeric without a fraction is an
    /// integer, as the same sum is in SQLite.
    static func rows(_ result: OpaquePointer?) -> QueryResult {
        guard let result else { return QueryResult(columns: [], rows: []) }
        let columnCount = Int(PQnfields(result)), rowCount = Int(PQntuples(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        let types = (0..<columnCount).map { PQftype(result, Int32($0)) }
        var rows: [[SQLValue]] = []
        rows.reserveCapacity(rowCount)
        for r in 0..<rowCount {
            var row: [SQLValue] = []
            row.reserveCapacity(columnCount)
            for c in 0..<columnCount {
                if PQgetisnull(result, Int32(r), Int32(c)) != 0 { row.append(.null); continue }
                let text = String(cString: PQgetvalue(result, Int32(r), Int32(c)))
                switch types[c] {
                case 20, 21, 23, 26: row.append(Int64(text).map(SQLValue.integer) ?? .text(text))           // int8, int2, int4, oid
                case 16: row.append(.integer(text == "t" ? 1 : 0))                                          // bool
                case 700, 701: row.append(parseDouble(text).map(SQLValue.real) ?? .text(text))              // float4, float8
                case 1700:                                                                                   // numeric
                    if !text.contains("."), !text.contains("e"), let i = Int64(text) { row.append(.integer(i)) }
                    else { row.append(parseDouble(text).map(SQLValue.real) ?? .text(text)) }
                case 17: row.append(.blob(parseBytea(text)))
                default: row.append(.text(text))
                }
            }
            rows.append(row)
        }
        return QueryResult(columns: columns, rows: rows)
    }

    static func parseDouble(_ text: String) -> Double? {
        switch text {
        case "NaN": .nan
        case "Infinity": .infinity
        case "-Infinity": -.infinity
        default: Double(text)
        }
    }

    static func parseBytea(_ text: String) -> [UInt8] {
        guard text.hasPrefix("\\x") else { return Array(text.utf8) }
        let hex = Array(text.utf8.dropFirst(2))
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.count / 2)
        var i = 0
        while i + 1 < hex.count {
            if let byte = UInt8(String(decoding: hex[i...i + 1], as: UTF8.self), radix: 16) { bytes.append(byte) }
            i += 2
        }
        return bytes
    }

    /// Runs `body` in a transaction (committed when it returns, rolled back when it throws).
    /// Track's own writes set `track.writer`, which the plain-SQL triggers honour.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        // Nested: a savepoint inside the caller's transaction (e.g. every run of a merged shard).
        if transactionDepth > 0 {
            let savepoint = "track_\(transactionDepth)"
            try execute("SAVEPOINT \(savepoint)")
            transactionDepth += 1
            defer { transactionDepth -= 1 }
            do {
                let value = try body()
                try execute("RELEASE SAVEPOINT \(savepoint)")
                return value
            } catch {
                try? execute("ROLLBACK TO SAVEPOINT \(savepoint); RELEASE SAVEPOINT \(savepoint)")
                throw error
            }
        }
        try execute("BEGIN; SET LOCAL track.writer = 'on'")
        transactionDepth += 1
        defer { transactionDepth -= 1 }
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Runs a script of statements (no parameters) and returns the rows of each that has columns.
    public func script(_ sql: String) throws -> [QueryResult] {
        guard PQsendQuery(connection, sql) == 1 else { throw error(nil, "PostgreSQL") }
        var results: [QueryResult] = []
        var failure: PostgresError?
        while let result = PQgetResult(connection) {
            switch PQresultStatus(result) {
            case PGRES_TUPLES_OK: results.append(Self.rows(result))
            case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY: break
            default: if failure == nil { failure = error(result, "PostgreSQL") }
            }
            PQclear(result)
        }
        if let failure { throw failure }
        return results
    }

    // MARK: - COPY

    /// `COPY … FROM STDIN` of rows in text format, sent in large chunks.
    public func copyIn(_ sql: String, rows: (inout CopyBuffer) throws -> Void) throws {
        let start = PQexec(connection, sql)
        let status = PQresultStatus(start)
        PQclear(start)
        guard status == PGRES_COPY_IN else { throw error(nil, "COPY") }
        let sender = CopySender(connection: self)
        var buffer = CopyBuffer(sender: sender)
        do {
            try rows(&buffer)
            try buffer.flush()
            try sender.finish()
        } catch {
            sender.abort()
            _ = PQputCopyEnd(connection, "track: aborted")
            while let result = PQgetResult(connection) { PQclear(result) }
            throw error
        }
        guard PQputCopyEnd(connection, nil) == 1 else { throw error(nil, "COPY") }
        var failure: PostgresError?
        while let result = PQgetResult(connection) {
            if PQresultStatus(result) != PGRES_COMMAND_OK, failure == nil { failure = error(result, "COPY") }
            PQclear(result)
        }
        if let failure { throw failure }
    }

    func putCopyData(_ bytes: UnsafeBufferPointer<UInt8>) throws {
        guard bytes.count > 0 else { return }
        let sent = bytes.withMemoryRebound(to: CChar.self) { PQputCopyData(connection, $0.baseAddress, Int32($0.count)) }
        guard sent == 1 else { throw error(nil, "COPY") }
    }

    /// Runs `COPY (query) TO STDOUT …` and hands each CopyData message to `message` (text format:
    /// one row; binary: the header and rows), then collects the command's outcome.
    private func copyOutMessages(_ sql: String, _ message: (UnsafeMutablePointer<CChar>, Int) throws -> Void) throws {
        let start = PQexec(connection, sql)
        let status = PQresultStatus(start)
        defer { PQclear(start) }
        guard status == PGRES_COPY_OUT else { throw error(start, "COPY") }
        var pointer: UnsafeMutablePointer<CChar>?
        while true {
            let length = PQgetCopyData(connection, &pointer, 0)
            if length == -1 { break }
            guard length >= 0, let data = pointer else { throw error(nil, "COPY") }
            defer { PQfreemem(data) }
            try message(data, Int(length))
        }
        var failure: PostgresError?
        while let result = PQgetResult(connection) {
            if PQresultStatus(result) != PGRES_COMMAND_OK, failure == nil { failure = error(result, "COPY") }
            PQclear(result)
        }
        if let failure { throw failure }
    }

    /// `COPY (query) TO STDOUT` in text format: `body` reads each row's fields in place.
    public func copyOut(_ sql: String, _ body: (CopyRow) throws -> Void) throws {
        var row = CopyRow()
        try copyOutMessages(sql) { data, length in
            // Fields end at a tab or the newline: both become NULs, so each field is a C string.
            row.starts.removeAll(keepingCapacity: true)
            row.starts.append(0)
            for i in 0..<length where data[i] == 9 || data[i] == 10 {
                data[i] = 0
                if i + 1 < length { row.starts.append(i + 1) }
            }
            row.base = UnsafePointer(data)
            try body(row)
        }
    }

    /// `COPY (query) TO STDOUT WITH (FORMAT binary)`: each row's fields read in place as the server
    /// sent them (big-endian integers and IEEE doubles: nothing to parse, exactly the stored bits).
    public func copyOutBinary(_ sql: String, _ body: (BinaryCopyRow) throws -> Void) throws {
        var row = BinaryCopyRow()
        var headerSeen = false
        try copyOutMessages(sql) { data, length in
            let bytes = UnsafeRawPointer(data)
            var position = 0
            if !headerSeen {
                // "PGCOPY\n\xff\r\n\0", flags, and the header extension's length and bytes.
                guard length >= 19 else { throw PostgresError("COPY: a binary header of \(length) bytes", kind: .storage) }
                position = 19 + Int(BinaryCopyRow.int32(bytes + 15))
                headerSeen = true
            }
            while position + 2 <= length {
                let fields = Int(Int16(bitPattern: UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt16.self))))
                position += 2
                if fields < 0 { break }   // the trailer
                row.base = bytes
                row.offsets.removeAll(keepingCapacity: true)
                row.lengths.removeAll(keepingCapacity: true)
                for _ in 0..<fields {
                    guard position + 4 <= length else { throw PostgresError("COPY: a binary row cut short", kind: .storage) }
                    let size = Int(BinaryCopyRow.int32(bytes + position))
                    position += 4
                    row.offsets.append(position)
                    row.lengths.append(size)
                    if size > 0 { position += size }
                }
                guard position <= length else { throw PostgresError("COPY: a binary row cut short", kind: .storage) }
                try body(row)
            }
        }
    }
}

/// One row of `COPY … TO STDOUT WITH (FORMAT binary)`, read in place.
public struct BinaryCopyRow {
    var base: UnsafeRawPointer?
    var offsets: [Int] = []
    var lengths: [Int] = []

    static func int32(_ p: UnsafeRawPointer) -> Int32 { Int32(bitPattern: UInt32(bigEndian: p.loadUnaligned(as: UInt32.self))) }

    public func isNull(_ index: Int) -> Bool { lengths[index] < 0 }

    /// A bigint (8 bytes) or integer (4 bytes) field.
    public func int64(_ index: Int) -> Int64 {
        let p = base! + offsets[index]
        return lengths[index] == 8 ? Int64(bitPattern: UInt64(bigEndian: p.loadUnaligned(as: UInt64.self))) : Int64(Self.int32(p))
    }

    /// A text field (UTF-8, as sent).
    public func string(_ index: Int) -> String {
        guard lengths[index] > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: base! + offsets[index], count: lengths[index]), as: UTF8.self)
    }

    /// A double precision field, its bits as stored.
    public func double(_ index: Int) -> Double {
        Double(bitPattern: UInt64(bigEndian: (base! + offsets[index]).loadUnaligned(as: UInt64.self)))
    }
}

/// One row of `COPY … TO STDOUT` (text format), read in place: fields are C strings.
public struct CopyRow {
    var base: UnsafePointer<CChar>?
    var starts: [Int] = []

    public var count: Int { starts.count }

    func field(_ index: Int) -> UnsafePointer<CChar> { base! + starts[index] }

    /// `\N`: SQL NULL.
    public func isNull(_ index: Int) -> Bool {
        let f = field(index)
        return f[0] == 92 && f[1] == 78 && f[2] == 0
    }

    public func int64(_ index: Int) -> Int64 { strtoll(field(index), nil, 10) }

    public func double(_ index: Int) -> Double {
        let f = field(index)
        // PostgreSQL spells the special values NaN, Infinity and -Infinity (strtod reads "inf" and "nan").
        if f[0] == 78 { return .nan }                                  // N
        if f[0] == 73 { return .infinity }                             // I
        if f[0] == 45, f[1] == 73 { return -.infinity }                // -I
        return strtod(f, nil)
    }

    /// The field as text, COPY's escapes undone.
    public func string(_ index: Int) -> String {
        let text = String(cString: field(index))
        guard text.contains("\\") else { return text }
        var out = ""
        var iterator = text.makeIterator()
        while let c = iterator.next() {
            guard c == "\\", let next = iterator.next() else { out.append(c); continue }
            switch next {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "b": out.append("\u{8}")
            case "f": out.append("\u{c}")
            case "v": out.append("\u{b}")
            default: out.append(next)
            }
        }
        return out
    }
}

/// Rows for `COPY … FROM STDIN` (text format, or binary for the large tables), buffered and sent in 1 MB chunks.
/// Sends a COPY's chunks from a thread of its own, so that the next chunk's rows are read and
/// encoded while the server takes in the last one: libpq's blocking `PQputCopyData` returns only
/// once the socket has taken a chunk, so on one thread the reading of the local store and the
/// server's work took turns (a push's option rows: 7.4–8.6 s, against 4.1–4.7 s for the server to
/// load the same binary rows from a file).
final class CopySender: @unchecked Sendable {
    private let connection: PostgresConnection
    private let queue = BlockingQueue<[UInt8], Void>(capacity: 2)
    private let done = DispatchSemaphore(value: 0)
    /// Set by the sending thread before it stops (read after `done`, or after `push` fails).
    private var failure: (any Error)?
    private var running = true

    init(connection: PostgresConnection) {
        self.connection = connection
        let thread = Thread { [self] in
            while let chunk = queue.pop() {
                if queue.isCancelled { continue }   // aborted: what is left is dropped
                do {
                    try chunk.withUnsafeBufferPointer { try self.connection.putCopyData($0) }
                } catch {
                    failure = error
                    queue.cancel()
                }
            }
            done.signal()
        }
        thread.start()
    }

    /// Queues a chunk, waiting while two are queued; throws the sending thread's error.
    func send(_ chunk: [UInt8]) throws {
        guard queue.push(chunk) else { throw failure ?? PostgresError("COPY: the sending thread stopped") }
    }

    /// Waits until every queued chunk is sent; throws the first error of the sending thread.
    func finish() throws {
        stop()
        if let failure { throw failure }
    }

    /// Drops what is queued and waits for the sending thread to stop.
    func abort() {
        queue.cancel()
        stop()
    }

    private func stop() {
        guard running else { return }
        running = false
        queue.finish(.success(()))
        done.wait()
    }
}

public struct CopyBuffer {
    let sender: CopySender
    var bytes: [UInt8] = []

    init(sender: CopySender) {
        self.sender = sender
        bytes.reserveCapacity(1 << 20)
    }

    /// Appends one row; text is escaped as COPY's text format requires.
    public mutating func row(_ values: [SQLValue]) throws {
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(9) }
            switch value {
            case .null: bytes.append(contentsOf: [92, 78])   // \N
            case .integer(let i): bytes.append(contentsOf: String(i).utf8)
            case .real(let d): bytes.append(contentsOf: PostgresConnection.format(d).utf8)
            case .text(let s):
                for byte in s.utf8 {
                    switch byte {
                    case 92: bytes.append(contentsOf: [92, 92])
                    case 9: bytes.append(contentsOf: [92, 116])
                    case 10: bytes.append(contentsOf: [92, 110])
                    case 13: bytes.append(contentsOf: [92, 114])
                    default: bytes.append(byte)
                    }
                }
            case .blob(let b): bytes.append(contentsOf: ("\\\\x" + b.map { String(format: "%02x", $0) }.joined()).utf8)
            }
        }
        bytes.append(10)
        if bytes.count >= 1 << 20 { try flush() }
    }

    // Binary format (`COPY … FROM STDIN WITH (FORMAT binary)`): the server parses no text.
    // Call `binaryHeader()` once, then per row `binaryRow(fields:)` and the fields, then `binaryTrailer()`.
    public mutating func binaryHeader() {
        bytes.append(contentsOf: Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00] + [0, 0, 0, 0] + [0, 0, 0, 0])
    }
    public mutating func binaryRow(fields: Int16) throws {
        if bytes.count >= 1 << 20 { try flush() }
        append16(fields)
    }
    public mutating func binaryInt(_ value: Int64) {
        append32(8)
        append64(UInt64(bitPattern: value))
    }
    public mutating func binaryDouble(_ value: Double) {
        append32(8)
        append64(value.bitPattern)
    }
    public mutating func binaryText(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            append32(Int32(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }
    public mutating func binaryNull() { append32(-1) }
    public mutating func binaryTrailer() { append16(-1) }
    private mutating func append16(_ value: Int16) {
        let v = UInt16(bitPattern: value)
        bytes.append(UInt8(v >> 8)); bytes.append(UInt8(v & 0xFF))
    }
    private mutating func append32(_ value: Int32) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }
    private mutating func append64(_ v: UInt64) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func flush() throws {
        guard !bytes.isEmpty else { return }
        var chunk: [UInt8] = []
        chunk.reserveCapacity(1 << 20)
        swap(&chunk, &bytes)
        try sender.send(chunk)
    }
}

/// Calls `body` with C strings for `texts` (nil stays a null pointer), valid for the call.
private func withCStrings<R>(_ texts: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let copies = texts.map { $0.map { strdup($0) } ?? nil }
    defer { copies.forEach { free($0) } }
    return body(copies.map { $0.map { UnsafePointer($0) } })
}

extension Array where Element == String {
    /// Calls `body` with a NULL-terminated array of C strings (libpq's keyword/value arrays).
    func withCStrings<T>(_ body: (UnsafePointer<UnsafePointer<CChar>?>) -> T) -> T {
        let duplicates = map { strdup($0) }
        defer { duplicates.forEach { free($0) } }
        let pointers: [UnsafePointer<CChar>?] = duplicates.map { $0.map { UnsafePointer($0) } } + [nil]
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
