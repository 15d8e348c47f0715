/// A filter over runs written as text (`track runs --where`), compiled to parameterised SQL
/// over the `run_summary` view (alias `s`). Grammar (keywords in any case):
///
///     expr       := term ("or" term)*
///     term       := factor ("and" factor)*
///     factor     := "not" factor | "(" expr ")" | comparison
///     comparison := field op value | field "like" string | field "is" ["not"] "null"
///                 | field ["not"] "in" "(" value ("," value)* ")"
///     op         := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
///     field      := run | model | method | dataset | split | step | epoch | extraction | status
///                 | experiment | n | accuracy | mean_confidence | overconfidence
///                 | a stored metric (conf_ece, mce, rmsce, cw_ece, pooled_ece, brier, nll)
///                 | params.KEY | tags.KEY        (KEY: letters, digits, _ . - /)
///     value      := 'text' (a quote doubled inside) | number
///
/// A parameter or tag compared with a number is compared as a number (`params.lr = 5e-7`
/// matches the text "5e-07"). A run without the parameter never matches a comparison.
public struct RunQuery: Sendable, Equatable {
    public var sql: String
    public var values: [SQLValue]
    /// The fields the expression names, in order of first appearance (e.g. to show them as columns).
    public var fields: [String] = []

    /// A parse error: what was expected, and where (1-based character position).
    public struct SyntaxError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var position: Int
        public var description: String { "\(message) at position \(position)" }
    }

    static let columns: [String: String] = [
        "run": "s.run", "name": "s.run", "model": "s.model", "method": "s.method", "dataset": "s.dataset", "split": "s.split",
        "step": "s.step", "epoch": "s.epoch", "extraction": "s.extraction", "status": "s.status", "n": "s.n",
        "accuracy": "s.accuracy", "mean_confidence": "s.mean_confidence", "overconfidence": "s.overconfidence",
        "experiment": "(SELECT e.name FROM runs r JOIN experiments e USING (experiment_id) WHERE r.run_id = s.run_id)",
    ]
    static let metricColumns = ["conf_ece", "mce", "rmsce", "cw_ece", "pooled_ece", "brier", "nll"]

    /// The fields a query or a sort may name, for messages.
    public static var fieldNames: [String] { columns.keys.sorted() + metricColumns + ["params.KEY", "tags.KEY"] }

    public init(_ text: String) throws(SyntaxError) {
        var parser = Parser(tokens: try Parser.tokenize(text))
        let compiled = try parser.expression()
        guard case .end = parser.tokens[parser.index].token else {
            throw SyntaxError(message: "unexpected \(Parser.describe(parser.tokens[parser.index].token))",
                              position: parser.tokens[parser.index].position)
        }
        sql = compiled
        values = parser.values
        fields = parser.fields
    }

    /// Markers for what the dialects spell differently, expanded by `sql(_:)` (the compiled
    /// text holds field SQL and `?` only: every value is a bound parameter).
    static let like = "\u{1}LIKE\u{1}"
    static func number(_ expression: String) -> String { "\u{2}" + expression + "\u{3}" }

    /// The condition in a dialect's SQL.
    public func sql(_ dialect: SQLDialect) -> String {
        var text = sql.replacingOccurrences(of: Self.like, with: dialect.like)
        while let open = text.firstIndex(of: "\u{2}"), let close = text[open...].firstIndex(of: "\u{3}") {
            let inner = String(text[text.index(after: open)..<close])
            text.replaceSubrange(open...close, with: dialect.number(inner))
        }
        return text
    }

    /// The SQL of a field (a column, a stored metric or a parameter/tag lookup) for sorting.
    public static func fieldSQL(_ name: String) -> (sql: String, values: [SQLValue])? {
        if let column = columns[name.lowercased()] { return (column, []) }
        if metricColumns.contains(name.lowercased()) {
            return ("(SELECT c.\(name.lowercased()) FROM run_calibration c WHERE c.run_id = s.run_id)", [])
        }
        for (prefix, table) in [("params.", "params"), ("tags.", "tags")] where name.hasPrefix(prefix) && name.count > prefix.count {
            return ("(SELECT v.value FROM \(table) v WHERE v.run_id = s.run_id AND v.key = ?)", [.text(String(name.dropFirst(prefix.count)))])
        }
        return nil
    }

}

/// The recursive-descent parser behind `RunQuery`.
private struct Parser {
    typealias SyntaxError = RunQuery.SyntaxError
    enum Token: Equatable {
        case word(String), text(String), number(Double), symbol(String), end
    }

    var tokens: [(token: Token, position: Int)]
    var index = 0
    var values: [SQLValue] = []
    var fields: [String] = []
    /// Nesting of parentheses and `not` so far, and comparisons: bounded, so that no input can
    /// exhaust the stack here or SQLite's expression depth (1,000) later.
    var depth = 0
    var comparisons = 0
    static let maxDepth = 100
    static let maxComparisons = 400

    init(tokens: [(token: Token, position: Int)]) { self.tokens = tokens }

    mutating func expression() throws(SyntaxError) -> String {
        var parts = [try term()]
        while keyword("or") { parts.append(try term()) }
        return parts.count == 1 ? parts[0] : "(" + parts.joined(separator: " OR ") + ")"
    }

    mutating func term() throws(SyntaxError) -> String {
        var parts = [try factor()]
        while keyword("and") { parts.append(try factor()) }
        return parts.count == 1 ? parts[0] : "(" + parts.joined(separator: " AND ") + ")"
    }

    mutating func factor() throws(SyntaxError) -> String {
        let position = tokens[index].position
        if case .word(let w) = tokens[index].token, w.lowercased() == "not" { try deeper(position) }
        if case .symbol("(") = tokens[index].token { try deeper(position) }
        if keyword("not") {
            defer { depth -= 1 }
            return "NOT (" + (try factor()) + ")"
        }
        if symbol("(") {
            defer { depth -= 1 }
            let inner = try expression()
            guard symbol(")") else { throw expected("')'") }
            return "(" + inner + ")"
        }
        return try comparison()
    }

    mutating func deeper(_ position: Int) throws(SyntaxError) {
        depth += 1
        if depth > Self.maxDepth {
            throw SyntaxError(message: "the expression nests parentheses and 'not' more than \(Self.maxDepth) deep", position: position)
        }
    }

    mutating func comparison() throws(SyntaxError) -> String {
        comparisons += 1
        if comparisons > Self.maxComparisons {
            throw SyntaxError(message: "the expression has more than \(Self.maxComparisons) comparisons (use 'in (…)' for lists of values)", position: tokens[index].position)
        }
        guard case .word(let name) = tokens[index].token else { throw expected("a field") }
        let position = tokens[index].position
        index += 1
        guard let field = RunQuery.fieldSQL(name) else {
            throw SyntaxError(message: "unknown field '\(name)' (fields: \(RunQuery.fieldNames.joined(separator: ", ")))", position: position)
        }
        let canonical = name.contains(".") ? name : name.lowercased()
        if !fields.contains(canonical) { fields.append(canonical) }
        let lookup = name.contains(".")
        if keyword("is") {
            let negated = keyword("not")
            guard keyword("null") else { throw expected("null") }
            values += field.values
            return "\(field.sql) IS \(negated ? "NOT " : "")NULL"
        }
        if keyword("like") {
            guard case .text(let pattern) = tokens[index].token else { throw expected("a quoted pattern") }
            index += 1
            values += field.values + [.text(pattern)]
            return "\(field.sql) \(RunQuery.like) ?"
        }
        let negated = keyword("not")
        if keyword("in") {
            guard symbol("(") else { throw expected("'('") }
            var items: [SQLValue] = []
            repeat {
                items.append(try value())
                if items.count > 10_000 { throw SyntaxError(message: "an 'in' list of more than 10,000 values", position: position) }
            } while symbol(",")
            guard symbol(")") else { throw expected("')'") }
            let numeric = items.allSatisfy { if case .real = $0 { true } else { false } }
            values += field.values + items
            let left = lookup && numeric ? RunQuery.number(field.sql) : field.sql
            return "\(left) \(negated ? "NOT " : "")IN (\(items.map { _ in "?" }.joined(separator: ", ")))"
        }
        if negated { throw expected("'in' after 'not'") }
        guard case .symbol(let op) = tokens[index].token, ["=", "!=", "<>", "<", "<=", ">", ">="].contains(op) else {
            throw expected("a comparison (=, !=, <, <=, >, >=, like, in, is null)")
        }
        index += 1
        let operand = try value()
        values += field.values + [operand]
        let numeric = { if case .real = operand { true } else { false } }()
        let left = lookup && numeric ? RunQuery.number(field.sql) : field.sql
        return "\(left) \(op == "<>" ? "!=" : op) ?"
    }

    mutating func value() throws(SyntaxError) -> SQLValue {
        switch tokens[index].token {
        case .text(let text): index += 1; return .text(text)
        case .number(let number): index += 1; return .real(number)
        default: throw expected("a value ('text' or a number)")
        }
    }

    mutating func keyword(_ word: String) -> Bool {
        if case .word(let w) = tokens[index].token, w.lowercased() == word { index += 1; return true }
        return false
    }

    mutating func symbol(_ s: String) -> Bool {
        if case .symbol(let t) = tokens[index].token, t == s { index += 1; return true }
        return false
    }

    func expected(_ what: String) -> SyntaxError {
        SyntaxError(message: "expected \(what), found \(Self.describe(tokens[index].token))", position: tokens[index].position)
    }

    static func describe(_ token: Token) -> String {
        switch token {
        case .word(let w): "'\(w)'"
        case .text(let t): "'\(t)' (text)"
        case .number(let n): "\(n)"
        case .symbol(let s): "'\(s)'"
        case .end: "the end of the expression"
        }
    }

    static func tokenize(_ text: String) throws(SyntaxError) -> [(token: Token, position: Int)] {
        let chars = Array(text)
        var tokens: [(Token, Int)] = []
        var i = 0
        func isWord(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" || c == "." || c == "-" || c == "/" }
        while i < chars.count {
            let c = chars[i], start = i + 1
            if c.isWhitespace { i += 1; continue }
            if c == "'" {
                var text = ""
                i += 1
                while true {
                    guard i < chars.count else { throw SyntaxError(message: "unterminated text (a ' is missing)", position: start) }
                    if chars[i] == "'" {
                        if i + 1 < chars.count, chars[i + 1] == "'" { text.append("'"); i += 2; continue }
                        i += 1
                        break
                    }
                    text.append(chars[i])
                    i += 1
                }
                tokens.append((.text(text), start))
            } else if "()=,".contains(c) {
                tokens.append((.symbol(String(c)), start)); i += 1
            } else if "<>!".contains(c) {
                var op = String(c)
                if i + 1 < chars.count, chars[i + 1] == "=" || (c == "<" && chars[i + 1] == ">") { op.append(chars[i + 1]); i += 1 }
                if op == "!" { throw SyntaxError(message: "'!' must be followed by '='", position: start) }
                tokens.append((.symbol(op), start)); i += 1
            } else if c.isNumber || ((c == "-" || c == "+" || c == ".") && i + 1 < chars.count && (chars[i + 1].isNumber || chars[i + 1] == ".")) {
                var j = i + 1
                while j < chars.count, chars[j].isNumber || chars[j] == "." || chars[j] == "e" || chars[j] == "E"
                        || ((chars[j] == "-" || chars[j] == "+") && (chars[j - 1] == "e" || chars[j - 1] == "E")) { j += 1 }
                guard let number = Double(String(chars[i..<j])), number.isFinite else {
                    throw SyntaxError(message: "'\(String(chars[i..<j]))' is not a number", position: start)
                }
                tokens.append((.number(number), start)); i = j
            } else if isWord(c) {
                var j = i
                while j < chars.count, isWord(chars[j]) { j += 1 }
                tokens.append((.word(String(chars[i..<j])), start)); i = j
            } else {
                throw SyntaxError(message: "unexpected character '\(c)'", position: start)
            }
        }
        tokens.append((.end, chars.count + 1))
        return tokens
    }
}
