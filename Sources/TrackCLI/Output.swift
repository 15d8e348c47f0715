import Foundation
import TrackStore

/// Output formats shared by the listing commands.
enum OutputFormat: String, CaseIterable {
    case table, csv, json
}

/// A table of strings rendered as aligned text, CSV or JSON.
struct TextTable {
    var columns: [String]
    var rows: [[Cell]]

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
    }

    func render(_ format: OutputFormat) -> String {
        switch format {
        case .table:
            let texts = rows.map { $0.map(\.display) }
            var widths = columns.map(\.count)
            for row in texts { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
            func line(_ cells: [String]) -> String {
                cells.enumerated().map { i, cell in
                    i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                }.joined(separator: "  ")
            }
            var out = line(columns) + "\n"
            out += line(widths.map { String(repeating: "-", count: $0) }) + "\n"
            for row in texts { out += line(row) + "\n" }
            return out
        case .csv:
            var out = CSV.line(columns) + "\n"
            for row in rows { out += CSV.line(row.map(\.csv)) + "\n" }
            return out
        case .json:
            let objects = rows.map { row in
                JSONValue.object(JSONObject(zip(columns, row).map { .init(key: $0, value: $1.json) }))
            }
            return JSONValue.array(objects).jsonText + "\n"
        }
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

    init(columns: [String], rows: [[Cell]]) {
        self.columns = columns
        self.rows = rows
    }
}

/// Standard output and error, unbuffered enough for pipes.
enum Console {
    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
    static func err(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
