import Foundation
import TrackStore

/// Output formats of the reporting commands.
enum OutputFormat: String, CaseIterable {
    case table, csv, json, markdown, latex

    var fileExtension: String {
        switch self {
        case .table: "txt"
        case .csv: "csv"
        case .json: "json"
        case .markdown: "md"
        case .latex: "tex"
        }
    }
}

/// A table rendered as aligned text, CSV, JSON, Markdown or LaTeX (booktabs).
/// Columns may carry a group (a second header level, e.g. the split) and a
/// rule for which value is best (set in bold in Markdown and LaTeX).
struct TextTable {
    enum Best { case lowest, highest }

    var columns: [String]
    var rows: [[Cell]]
    var groups: [String?] = []
    var best: [Best?] = []
    var caption: String?

    enum Cell {
        case text(String?)
        case integer(Int64?)
        case number(Double?, digits: Int)

        var display: String {
            switch self {
            case .text(let s): s ?? ""
            case .integer(let i): i.map(String.init) ?? ""
            case .number(let d, let digits): d.map { String(format: "%.\(digits)f", $0) } ?? ""
            }
        }

        var json: JSONValue {
            switch self {
            case .text(let s): s.map(JSONValue.string) ?? .null
            case .integer(let i): i.map { .number(Double($0)) } ?? .null
            case .number(let d, _): d.map(JSONValue.number) ?? .null
            }
        }

        /// Full precision for machine-readable output.
        var csv: String {
            switch self {
            case .number(let d, _): d.map { JSONValue.format($0) } ?? ""
            default: display
            }
        }

        var number: Double? {
            if case .number(let d, _) = self { return d }
            return nil
        }

        var isNumeric: Bool {
            switch self {
            case .text: false
            default: true
            }
        }
    }

    init(columns: [String], rows: [[Cell]]) {
        self.columns = columns
        self.rows = rows
    }

    /// An ad-hoc query result.
    init(_ result: QueryResult) {
        columns = result.columns
        rows = result.rows.map { row in
            row.map { value in
                switch value {
                case .null: .text(nil)
                case .integer(let i): .integer(i)
                case .real(let d): .number(d, digits: 6)
                case .text(let s): .text(s)
                case .blob(let b): .text("<\(b.count) bytes>")
                }
            }
        }
    }

    private func group(_ column: Int) -> String? { column < groups.count ? groups[column] : nil }

    /// Full header names: "group column" when grouped.
    var flatColumns: [String] {
        columns.indices.map { i in group(i).map { "\($0) \(columns[i])" } ?? columns[i] }
    }

    /// Row indexes holding the best value of each column.
    private func bestRows(_ column: Int) -> Set<Int> {
        guard column < best.count, let rule = best[column] else { return [] }
        let values = rows.enumerated().compactMap { index, row in row[column].number.map { (index, $0) } }
        guard let target = rule == .lowest ? values.map(\.1).min() : values.map(\.1).max() else { return [] }
        return Set(values.filter { $0.1 == target }.map(\.0))
    }

    func render(_ format: OutputFormat) -> String {
        switch format {
        case .table: renderText()
        case .csv: renderCSV()
        case .json: renderJSON()
        case .markdown: renderMarkdown()
        case .latex: renderLaTeX()
        }
    }

    private func renderText() -> String {
        let header = flatColumns.map(terminalSafe)
        // Names come from users' files: control characters (terminal escapes) are shown, not obeyed.
        let texts = rows.map { $0.map { terminalSafe($0.display) } }
        var widths = header.map(\.count)
        for row in texts { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                if rows.first?[i].isNumeric ?? false { return pad + cell }
                return i == cells.count - 1 ? cell : cell + pad
            }.joined(separator: "  ")
        }
        var out = caption.map { $0 + "\n" } ?? ""
        out += line(header) + "\n"
        out += line(widths.map { String(repeating: "-", count: $0) }) + "\n"
        for row in texts { out += line(row) + "\n" }
        return out
    }

    private func renderCSV() -> String {
        var out = CSV.line(flatColumns) + "\n"
        for row in rows { out += CSV.line(row.map(\.csv)) + "\n" }
        return out
    }

    private func renderJSON() -> String {
        let keys = flatColumns
        let objects = rows.map { row in
            JSONValue.object(JSONObject(zip(keys, row).map { .init(key: $0, value: $1.json) }))
        }
        return JSONValue.array(objects).jsonText + "\n"
    }

    private func renderMarkdown() -> String {
        let bests = columns.indices.map(bestRows)
        var out = caption.map { "**\($0)**\n\n" } ?? ""
        out += "| " + flatColumns.map(markdownEscape).joined(separator: " | ") + " |\n"
        out += "|" + columns.indices.map { (rows.first?[$0].isNumeric ?? false) ? "---:|" : "---|" }.joined() + "\n"
        for (r, row) in rows.enumerated() {
            let cells = row.enumerated().map { c, cell in
                let text = markdownEscape(cell.display)
                return bests[c].contains(r) ? "**\(text)**" : text
            }
            out += "| " + cells.joined(separator: " | ") + " |\n"
        }
        return out
    }

    private func renderLaTeX() -> String {
        let bests = columns.indices.map(bestRows)
        let alignment = columns.indices.map { (rows.first?[$0].isNumeric ?? false) ? "r" : "l" }.joined()
        var out = "% Generated by track; needs \\usepackage{booktabs}.\n"
        out += "\\begin{table}[t]\n\\centering\n"
        if let caption { out += "\\caption{\(latexEscape(caption))}\n" }
        out += "\\begin{tabular}{\(alignment)}\n\\toprule\n"
        if groups.contains(where: { $0 != nil }) {
            // Runs of equal groups become \multicolumn headers with \cmidrule under them.
            var cells: [String] = [], rules: [String] = []
            var i = 0
            while i < columns.count {
                var j = i
                while j + 1 < columns.count, group(j + 1) == group(i) { j += 1 }
                if let name = group(i) {
                    cells.append("\\multicolumn{\(j - i + 1)}{c}{\(latexEscape(name))}")
                    rules.append("\\cmidrule(lr){\(i + 1)-\(j + 1)}")
                } else {
                    cells.append(contentsOf: Array(repeating: "", count: j - i + 1))
                }
                i = j + 1
            }
            out += cells.joined(separator: " & ") + " \\\\\n" + rules.joined(separator: " ") + "\n"
        }
        out += columns.map(latexEscape).joined(separator: " & ") + " \\\\\n\\midrule\n"
        for (r, row) in rows.enumerated() {
            let cells = row.enumerated().map { c, cell in
                let text = latexEscape(cell.display)
                return bests[c].contains(r) ? "\\textbf{\(text)}" : text
            }
            out += cells.joined(separator: " & ") + " \\\\\n"
        }
        out += "\\bottomrule\n\\end{tabular}\n\\end{table}\n"
        return out
    }
}

func latexEscape(_ text: String) -> String {
    var out = ""
    for character in text {
        switch character {
        case "\\": out += "\\textbackslash{}"
        case "&", "%", "$", "#", "_", "{", "}": out += "\\\(character)"
        case "~": out += "\\textasciitilde{}"
        case "^": out += "\\textasciicircum{}"
        default: out.append(character)
        }
    }
    return out
}

func markdownEscape(_ text: String) -> String {
    text.replacingOccurrences(of: "|", with: "\\|")
}

/// Standard output and error; output can be captured (e.g. to reuse a command's table).
enum Console {
    nonisolated(unsafe) static var capture: String?

    static func out(_ text: String) {
        if capture != nil {
            capture! += text
            return
        }
        if !write(text, to: 1) {
            let reason = String(cString: strerror(errno))
            _ = write("Error: cannot write to standard output (\(reason))\n", to: 2)
            exit(1)
        }
    }
    static func err(_ text: String) {
        _ = write(text, to: 2)
    }

    /// Writes all of `text` to a file descriptor; false on an error (a full
    /// disk, a closed descriptor), never a trap.
    private static func write(_ text: String, to descriptor: Int32) -> Bool {
        var bytes = Array(text.utf8)
        var offset = 0
        return bytes.withUnsafeMutableBytes { buffer in
            while offset < buffer.count {
                let written = Foundation.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += written
            }
            return true
        }
    }
}

/// Runs `body` with standard output captured; returns what it printed.
func captureOutput(_ body: () throws -> Void) rethrows -> String {
    let previous = Console.capture
    Console.capture = ""
    defer { Console.capture = previous }
    try body()
    return Console.capture ?? ""
}

/// Progress of long work on standard error: one line redrawn in place, with a
/// rate and an estimate of the time left; only when standard error is a
/// terminal (never on standard output, never into a log file).
final class ProgressLine: @unchecked Sendable {   // updates are serialised by its lock
    let label: String
    private let enabled: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast
    private let lock = NSLock()

    init(_ label: String, enabled: Bool = isatty(2) == 1) {
        self.label = label
        self.enabled = enabled
    }

    /// Redraws at most ten times a second; `item` says what is being worked on.
    func update(done: Int, total: Int, item: String = "") {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        guard done >= total || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(start)
        var line = "\(label): \(done)/\(total)"
        if total > 0 { line += String(format: " (%.0f%%)", 100 * Double(done) / Double(total)) }
        if done > 0, elapsed > 0.5, done < total {
            line += String(format: ", %.1f/s, ~%.0f s left", Double(done) / elapsed, elapsed / Double(done) * Double(total - done))
        }
        if !item.isEmpty { line += "  \(item.prefix(40))" }
        Console.err("\r\u{1B}[K" + line + (done >= total ? "\n" : ""))
    }
}

/// Text with control characters written as escapes (`\u{1B}` → `\x1b`), so that a
/// name holding terminal escape sequences prints as itself.
func terminalSafe(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: isControl) else { return text }
    var out = ""
    for scalar in text.unicodeScalars {
        if isControl(scalar) { out += String(format: "\\x%02x", scalar.value) } else { out.unicodeScalars.append(scalar) }
    }
    return out
}

private func isControl(_ scalar: Unicode.Scalar) -> Bool {
    scalar.value < 0x20 || (scalar.value >= 0x7F && scalar.value < 0xA0)
}
