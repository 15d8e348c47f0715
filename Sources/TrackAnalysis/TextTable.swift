import Foundation
import TrackCalibration
import TrackStore

/// Output formats of the reporting commands.
public enum OutputFormat: String, CaseIterable, Sendable {
    case table, csv, json, markdown, latex

    public var fileExtension: String {
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
public struct TextTable: Sendable {
    public enum Best: Sendable { case lowest, highest }

    public var columns: [String]
    public var rows: [[Cell]]
    public var groups: [String?] = []
    public var best: [Best?] = []
    /// The column whose runs of equal values are blocks (a paper table's model): the best value
    /// is marked within each block, as the papers mark it; nil, over the whole column.
    public var bestWithin: Int?
    public var caption: String?
    /// Machine names of the columns (CSV headers, JSON keys) when the displayed ones are a
    /// paper's labels: one name per quantity, the key of `track metrics --format json`.
    public var keys: [String]?

    /// How an interval is written in a cell beside its estimate.
    public enum IntervalStyle: String, Sendable, CaseIterable {
        /// `0.118 [0.111, 0.126]`
        case brackets
        /// `0.118 ± 0.007`: half the interval's width.
        case pm
    }

    /// An estimate with its interval, in one cell (a paper's `0.118 [0.111, 0.126]`).
    public struct Estimate: Sendable {
        public var value: Double?
        public var lower: Double?
        public var upper: Double?
        public var digits: Int
        public var style: IntervalStyle
        /// Significantly different from a base (a dagger after the value).
        public var marked: Bool

        public init(_ value: Double?, lower: Double?, upper: Double?, digits: Int, style: IntervalStyle, marked: Bool = false) {
            self.value = value
            self.lower = lower
            self.upper = upper
            self.digits = digits
            self.style = style
            self.marked = marked
        }

        func format(_ x: Double) -> String { String(format: "%.\(digits)f", x) }
        var valueText: String { value.map(format) ?? "" }
        /// The interval part, after the value: " [lo, hi]" or " ± h"; `pm` for LaTeX's `$\pm$`.
        func intervalText(pm: String = "±") -> String {
            guard value != nil, let lower, let upper else { return "" }
            switch style {
            case .brackets: return " [\(format(lower)), \(format(upper))]"
            case .pm: return " \(pm) \(format((upper - lower) / 2))"
            }
        }
    }

    public enum Cell: Sendable {
        case text(String?)
        case integer(Int64?)
        case number(Double?, digits: Int)
        /// A number marked as significantly different from a base (a dagger in text, Markdown and
        /// LaTeX; CSV and JSON keep the number).
        case marked(Double?, digits: Int)
        /// A number and its interval in one cell.
        case estimate(Estimate)
        /// A number shown as it is (shortest exact form: `round(x, 3)` reads 0.123), as SQL returns it.
        case real(Double?)
        /// A p-value: shown as `< 0.001` or to 3–4 places, the number itself in CSV and JSON.
        case pValue(Double?)

        public var display: String {
            switch self {
            case .text(let s): s ?? ""
            case .integer(let i): i.map(String.init) ?? ""
            case .number(let d, let digits): d.map { String(format: "%.\(digits)f", $0) } ?? ""
            case .marked(let d, let digits): d.map { String(format: "%.\(digits)f", $0) + "†" } ?? ""
            case .estimate(let e): e.valueText + (e.marked && e.value != nil ? "†" : "") + e.intervalText()
            case .real(let d): d.map { $0.isFinite && $0.rounded() == $0 && abs($0) < 1e15 ? String(format: "%.1f", $0) : "\($0)" } ?? ""
            case .pValue(let p): p.map { PairedTests.format($0) } ?? ""
            }
        }

        public var json: JSONValue {
            switch self {
            case .text(let s): s.map(JSONValue.string) ?? .null
            case .integer(let i): i.map { .number(Double($0)) } ?? .null
            case .number(let d, _), .marked(let d, _), .real(let d), .pValue(let d): d.map(JSONValue.number) ?? .null
            case .estimate(let e):
                .object(JSONObject([.init(key: "value", value: e.value.map(JSONValue.number) ?? .null),
                                    .init(key: "lower", value: e.lower.map(JSONValue.number) ?? .null),
                                    .init(key: "upper", value: e.upper.map(JSONValue.number) ?? .null)]))
            }
        }

        /// Full precision for machine-readable output; an estimate as its printed text.
        public var csv: String {
            switch self {
            case .number(let d, _), .marked(let d, _), .real(let d), .pValue(let d): d.map { JSONValue.format($0) } ?? ""
            default: display
            }
        }

        public var number: Double? {
            switch self {
            case .number(let d, _), .marked(let d, _), .real(let d), .pValue(let d): return d
            case .estimate(let e): return e.value
            default: return nil
            }
        }

        public var isNumeric: Bool {
            switch self {
            case .text: false
            default: true
            }
        }
    }

    public init(columns: [String], rows: [[Cell]], caption: String? = nil) {
        self.caption = caption
        self.columns = columns
        self.rows = rows
    }

    /// An ad-hoc query result.
    public init(_ result: QueryResult) {
        columns = result.columns
        rows = result.rows.map { row in
            row.map { value in
                switch value {
                case .null: .text(nil)
                case .integer(let i): .integer(i)
                case .real(let d): .real(d)
                case .text(let s): .text(s)
                case .blob(let b): .text("<\(b.count) bytes>")
                }
            }
        }
    }

    private func group(_ column: Int) -> String? { column < groups.count ? groups[column] : nil }

    /// Full header names: "group column" when grouped.
    public var flatColumns: [String] {
        columns.indices.map { i in group(i).map { "\($0) \(columns[i])" } ?? columns[i] }
    }

    /// Row indexes holding the best value of each column.
    private func bestRows(_ column: Int) -> Set<Int> {
        guard column < best.count, let rule = best[column] else { return [] }
        var blocks: [[Int]] = []
        for index in rows.indices {
            if let key = bestWithin, let last = blocks.last?.last, rows[last][key].display == rows[index][key].display {
                blocks[blocks.count - 1].append(index)
            } else {
                blocks.append([index])
            }
        }
        if bestWithin == nil { blocks = [Array(rows.indices)] }
        var marked = Set<Int>()
        for block in blocks {
            let values = block.compactMap { index in rows[index][column].number.map { (index, $0) } }
            // A lone value is not "best" of anything: nothing is marked in a block of one.
            guard values.count > 1, let target = rule == .lowest ? values.map(\.1).min() : values.map(\.1).max() else { continue }
            marked.formUnion(values.filter { $0.1 == target }.map(\.0))
        }
        return marked
    }

    public func render(_ format: OutputFormat) -> String {
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

    /// The headers of CSV and JSON: `keys`, or the displayed names.
    public var machineColumns: [String] { keys ?? flatColumns }

    private func renderCSV() -> String {
        var out = CSV.line(machineColumns) + "\n"
        for row in rows { out += CSV.line(row.map(\.csv)) + "\n" }
        return out
    }

    private func renderJSON() -> String {
        let keys = machineColumns
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
                if case .estimate(let e) = cell {
                    // The value is what is best; its interval stays plain.
                    let value = markdownEscape(e.valueText) + (e.marked && e.value != nil ? "†" : "")
                    return (bests[c].contains(r) && e.value != nil ? "**\(value)**" : value) + markdownEscape(e.intervalText())
                }
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
                if case .estimate(let e) = cell {
                    let value = bests[c].contains(r) && e.value != nil ? "\\textbf{\(e.valueText)}" : e.valueText
                    return value + (e.marked && e.value != nil ? "$^\\dagger$" : "") + e.intervalText(pm: "$\\pm$")
                }
                var text = latexEscape(cell.display)
                if case .marked = cell { text = latexEscape(String(cell.display.dropLast())) + "$^\\dagger$" }
                return bests[c].contains(r) ? "\\textbf{\(text)}" : text
            }
            out += cells.joined(separator: " & ") + " \\\\\n"
        }
        out += "\\bottomrule\n\\end{tabular}\n\\end{table}\n"
        return out
    }
}

public func latexEscape(_ text: String) -> String {
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

public func markdownEscape(_ text: String) -> String {
    text.replacingOccurrences(of: "|", with: "\\|")
}

/// Text with control characters written as escapes (`\u{1B}` → `\x1b`), so that a
/// name holding terminal escape sequences prints as itself.
public func terminalSafe(_ text: String) -> String {
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

/// Writes an export (a table, a figure's CSV, a report), creating its folder: atomically, and
/// never over the store, an input of the command, or anything but a regular file (`OutputFile`).
public func writeExport(_ text: String, to path: String) throws {
    try OutputFile.write(Data(text.utf8), to: path)
}

/// "A", "B", … for option indexes.
public func optionLetter(_ k: Int) -> String {
    k < 26 ? String(UnicodeScalar(UInt8(65 + k))) : String(k)
}

extension TextTable {
    public func withCaption(_ caption: String) -> TextTable {
        var copy = self
        copy.caption = caption
        return copy
    }
}
