import Foundation

/// A SQL script split into statements as PostgreSQL's lexer sees it: `;` ends a statement
/// except inside '…' / E'…' strings, "…" identifiers, $tag$…$tag$ bodies, -- comments and
/// (nested) /* */ comments. Used to refuse transaction control in read-only ad-hoc SQL.
enum SQLStatements {
    /// The statements of `script`, comments and surrounding space included, empty ones left out.
    static func split(_ script: String) -> [String] {
        let bytes = Array(script.utf8)
        var statements: [String] = []
        var start = 0, i = 0
        func flush(upTo end: Int) {
            let text = String(decoding: bytes[start..<end], as: UTF8.self)
            if !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { statements.append(text) }
        }
        while i < bytes.count {
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                i += 1
                while i < bytes.count {
                    if bytes[i] == c {
                        if i + 1 < bytes.count, bytes[i + 1] == c { i += 2; continue }   // '' or "" inside
                        break
                    }
                    // E'…' strings escape with a backslash; a plain string's backslash is literal,
                    // but skipping one character after it can only end a statement later, never earlier.
                    if c == UInt8(ascii: "'"), bytes[i] == UInt8(ascii: "\\") { i += 1 }
                    i += 1
                }
                i += 1
            case UInt8(ascii: "-") where i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "-"):
                while i < bytes.count, bytes[i] != UInt8(ascii: "\n") { i += 1 }
            case UInt8(ascii: "/") where i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "*"):
                var depth = 0
                while i < bytes.count {
                    if bytes[i] == UInt8(ascii: "/"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "*") { depth += 1; i += 2; continue }
                    if bytes[i] == UInt8(ascii: "*"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "/") {
                        depth -= 1; i += 2
                        if depth == 0 { break }
                        continue
                    }
                    i += 1
                }
            case UInt8(ascii: "$"):
                // $tag$ … $tag$ (tag: letters, digits, underscores, not starting with a digit), or $$ … $$.
                var j = i + 1
                while j < bytes.count, bytes[j] == UInt8(ascii: "_") || (bytes[j] >= 0x80) || isAlphanumeric(bytes[j]) { j += 1 }
                let tagIsValid = j < bytes.count && bytes[j] == UInt8(ascii: "$") && (j == i + 1 || !isDigit(bytes[i + 1]))
                guard tagIsValid, i == 0 || !isIdentifierByte(bytes[i - 1]) else { i += 1; continue }
                let tag = Array(bytes[i...j])
                var k = j + 1
                while k + tag.count <= bytes.count, Array(bytes[k..<(k + tag.count)]) != tag { k += 1 }
                i = min(bytes.count, k + tag.count)
            case UInt8(ascii: ";"):
                flush(upTo: i)
                i += 1
                start = i
            default:
                i += 1
            }
        }
        if start < bytes.count { flush(upTo: bytes.count) }
        return statements
    }

    /// The statement's first keyword, upper-cased ("" when it starts with something else).
    static func firstWord(_ statement: String) -> String {
        var text = Substring(statement)
        while true {
            text = text.drop(while: { $0.isWhitespace })
            if text.hasPrefix("--") { text = text.drop(while: { $0 != "\n" }); continue }
            if text.hasPrefix("/*") {
                var depth = 0, rest = text
                while !rest.isEmpty {
                    if rest.hasPrefix("/*") { depth += 1; rest = rest.dropFirst(2); continue }
                    if rest.hasPrefix("*/") { depth -= 1; rest = rest.dropFirst(2); if depth == 0 { break }; continue }
                    rest = rest.dropFirst()
                }
                text = rest
                continue
            }
            break
        }
        return String(text.prefix(while: { $0.isLetter || $0 == "_" })).uppercased()
    }

    /// Statements a read-only script may not hold: they end, open or reconfigure the read-only
    /// transaction it runs in (BEGIN, COMMIT, END, ROLLBACK, SET, …), run procedures that may
    /// commit (CALL, DO), or reach the server's file system (COPY).
    static let transactionControl: Set<String> = ["BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE",
                                                  "PREPARE", "SET", "RESET", "DISCARD", "CALL", "DO", "COPY", "LOCK", "CHECKPOINT",
                                                  "VACUUM", "LISTEN", "UNLISTEN", "NOTIFY", "LOAD"]

    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    private static func isAlphanumeric(_ b: UInt8) -> Bool { isDigit(b) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) }
    private static func isIdentifierByte(_ b: UInt8) -> Bool { isAlphanumeric(b) || b == UInt8(ascii: "_") || b >= 0x80 }
}
