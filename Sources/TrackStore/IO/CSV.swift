import Foundation

/// One field of a CSV line: a byte range, and whether it was quoted.
public struct CSVField: Sendable {
    public var start: Int
    public var end: Int
    public var quoted: Bool
}

/// RFC 4180 CSV, one line at a time: comma-separated fields, double quotes
/// around fields that hold commas or quotes, `""` for a quote inside one.
/// A quoted field may not span lines (option scores never need it).
public enum CSV {
    /// Splits `line` into `fields` (reused between calls to avoid allocation).
    public static func split(_ line: UnsafeRawBufferPointer, into fields: inout [CSVField]) throws(ValidationError) {
        fields.removeAll(keepingCapacity: true)
        let count = line.count
        var i = 0
        while true {
            if i < count, line[i] == UInt8(ascii: "\"") {
                let start = i + 1
                var j = start
                while true {
                    guard j < count else { throw ValidationError("unterminated quoted field") }
                    if line[j] == UInt8(ascii: "\"") {
                        if j + 1 < count, line[j + 1] == UInt8(ascii: "\"") { j += 2; continue }
                        break
                    }
                    j += 1
                }
                fields.append(CSVField(start: start, end: j, quoted: true))
                i = j + 1
                if i < count, line[i] != UInt8(ascii: ",") {
                    throw ValidationError("text after a closing quote")
                }
            } else {
                let start = i
                while i < count, line[i] != UInt8(ascii: ",") { i += 1 }
                fields.append(CSVField(start: start, end: i, quoted: false))
            }
            if i >= count { return }
            i += 1 // the comma
            if i == count { fields.append(CSVField(start: i, end: i, quoted: false)); return }
        }
    }

    /// The field's text, with `""` turned back into `"`.
    public static func text(_ field: CSVField, in line: UnsafeRawBufferPointer) throws(ValidationError) -> String {
        guard let raw = String(validating: UnsafeRawBufferPointer(rebasing: line[field.start..<field.end]), as: UTF8.self) else {
            throw ValidationError("a field is not valid UTF-8 text")
        }
        return field.quoted ? raw.replacingOccurrences(of: "\"\"", with: "\"") : raw
    }

    /// The field as a number, or nil.
    public static func double(_ field: CSVField, in line: UnsafeRawBufferPointer) -> Double? {
        parseDouble(UnsafeRawBufferPointer(rebasing: line[field.start..<field.end]))
    }

    /// The field as a decimal integer (surrounding blanks allowed), or nil.
    public static func integer(_ field: CSVField, in line: UnsafeRawBufferPointer) -> Int? {
        var i = field.start, end = field.end
        while i < end, line[i] == 0x20 || line[i] == 0x09 { i += 1 }
        while end > i, line[end - 1] == 0x20 || line[end - 1] == 0x09 { end -= 1 }
        var negative = false
        if i < end, line[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        guard i < end, end - i <= 18 else { return nil }
        var value = 0
        while i < end {
            let digit = Int(line[i]) - 48
            guard digit >= 0, digit <= 9 else { return nil }
            value = value * 10 + digit
            i += 1
        }
        return negative ? -value : value
    }

    /// Splits a whole line given as a String (for headers and tests).
    public static func fields(of line: String) throws(ValidationError) -> [String] {
        var copy = line
        var fields: [CSVField] = []
        do {
            return try copy.withUTF8 { buffer in
                let raw = UnsafeRawBufferPointer(buffer)
                try split(raw, into: &fields)
                return try fields.map { field throws(ValidationError) in try text(field, in: raw) }
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            fatalError("unreachable")
        }
    }

    /// A field quoted when it needs to be.
    public static func escape(_ text: String) -> String {
        if text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return text
    }

    public static func line(_ fields: [String]) -> String {
        fields.map(escape).joined(separator: ",")
    }
}
