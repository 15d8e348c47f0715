import Foundation

/// A NumPy `.npy` array (format versions 1–3), as training loops save
/// probabilities each epoch (`np.save`). Values are converted to Double.
public struct NPYArray: Sendable {
    public var shape: [Int]
    public var values: [Double]

    /// Reads an `.npy` file; refuses truncated data, object arrays and
    /// dtypes other than little-endian floats, integers and booleans.
    public static func read(path: String) throws -> NPYArray {
        let bytes = try readWholeFile(path)
        do throws(ValidationError) {
            return try parse(bytes)
        } catch {
            throw InputError(source: path, reason: error.reason)
        }
    }

    public static func parse(_ bytes: [UInt8]) throws(ValidationError) -> NPYArray {
        let header = try NPYHeader.parse(bytes, fileSize: bytes.count)
        var values = [Double](repeating: 0, count: header.count)
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + header.dataStart
            for i in 0..<header.count { values[i] = header.value(at: base + i * header.size) }
        }
        if header.fortran, header.shape.count == 2 {
            let (rows, columns) = (header.shape[0], header.shape[1])
            var reordered = values
            for r in 0..<rows { for c in 0..<columns { reordered[r * columns + c] = values[c * rows + r] } }
            values = reordered
        }
        return NPYArray(shape: header.shape, values: values)
    }

    static func dtype(_ descr: String) -> (Character, Int)? {
        guard descr.count >= 3 else { return nil }
        let order = descr.first!
        let kind = descr[descr.index(after: descr.startIndex)]
        guard let size = Int(descr.dropFirst(2)) else { return nil }
        let little = order == "<" || order == "|" || order == "="
        guard little else { return nil }
        switch (kind, size) {
        case ("f", 4), ("f", 8), ("i", 1), ("i", 2), ("i", 4), ("i", 8),
             ("u", 1), ("u", 2), ("u", 4), ("u", 8), ("b", 1): return (kind, size)
        default: return nil
        }
    }

    /// The text of one key of the header's Python dict literal.
    static func headerValue(_ key: String, in header: String) throws(ValidationError) -> String {
        guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\""),
              let colon = header[keyRange.upperBound...].firstIndex(of: ":") else {
            throw ValidationError("the .npy header has no '\(key)'")
        }
        var rest = header[header.index(after: colon)...].drop(while: { $0 == " " })
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { throw ValidationError("bad .npy header") }
            return String(rest[...close])
        }
        if let end = rest.firstIndex(where: { $0 == "," || $0 == "}" }) { rest = rest[..<end] }
        return rest.trimmingCharacters(in: .whitespaces)
    }

    /// Writes a 2-D float64 array (C order) as `.npy` version 1.0.
    public static func write(rows: Int, columns: Int, values: [Double], to path: String) throws {
        try writeArray(shape: "(\(rows), \(columns))", descr: "<f8", payload: values.withUnsafeBytes { Array($0) }, to: path)
    }

    /// Writes a 1-D int64 array as `.npy` version 1.0.
    public static func write(labels: [Int], to path: String) throws {
        let payload = labels.map { Int64($0).littleEndian }.withUnsafeBytes { Array($0) }
        try writeArray(shape: "(\(labels.count),)", descr: "<i8", payload: payload, to: path)
    }

    private static func writeArray(shape: String, descr: String, payload: [UInt8], to path: String) throws {
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0]
        let length = header.utf8.count
        bytes += [UInt8(length & 0xff), UInt8(length >> 8)]
        bytes += Array(header.utf8)
        bytes += payload
        try OutputFile.write(Data(bytes), to: path)
    }
}

/// The header of a `.npy` file: its shape, element type and where the data start, checked
/// against the file's size (a truncated file is refused before any row is read).
struct NPYHeader {
    var shape: [Int]
    var kind: Character
    var size: Int
    var fortran: Bool
    var dataStart: Int
    /// Elements, and the bytes they take.
    var count: Int
    var needed: Int

    /// Parses the header at the start of `prefix` (which need not hold the data).
    static func parse(_ prefix: [UInt8], fileSize: Int) throws(ValidationError) -> NPYHeader {
        if fileSize == 0 { throw ValidationError("empty file") }
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard prefix.count >= 10, Array(prefix[0..<6]) == magic else {
            throw ValidationError("not a .npy file (no \\x93NUMPY magic)")
        }
        let (headerLength, headerStart) = try lengthAndStart(prefix)
        guard prefix.count >= headerStart + headerLength else { throw ValidationError("truncated .npy header") }
        let header = String(decoding: prefix[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        let descr = try NPYArray.headerValue("descr", in: header).trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
        let fortran = try NPYArray.headerValue("fortran_order", in: header) == "True"
        let shapeText = try NPYArray.headerValue("shape", in: header)
            .trimmingCharacters(in: CharacterSet(charactersIn: "() "))
        let shape = try shapeText.split(separator: ",").map { part throws(ValidationError) -> Int in
            guard let n = Int(part.trimmingCharacters(in: .whitespaces)), n >= 0 else {
                throw ValidationError("bad shape in .npy header: (\(shapeText))")
            }
            return n
        }
        guard let (kind, size) = NPYArray.dtype(descr) else {
            throw ValidationError("unsupported .npy dtype '\(descr)' (use float64, float32 or integers)")
        }
        // The element count and the bytes they take, refusing shapes whose product overflows.
        var count = 1, needed = size
        for n in shape {
            let (elements, overflow) = count.multipliedReportingOverflow(by: n)
            let (bytes, bytesOverflow) = needed.multipliedReportingOverflow(by: n)
            guard !overflow, !bytesOverflow else { throw ValidationError("shape (\(shapeText)) in the .npy header is too large to be a file") }
            (count, needed) = (elements, bytes)
        }
        let dataStart = headerStart + headerLength
        guard fileSize - dataStart >= needed else {
            throw ValidationError("truncated: the header declares shape (\(shapeText)) of '\(descr)' (\(needed) bytes) but the file holds \(fileSize - dataStart)")
        }
        return NPYHeader(shape: shape, kind: kind, size: size, fortran: fortran, dataStart: dataStart, count: count, needed: needed)
    }

    /// The header's length and where it starts (versions 1–3).
    static func lengthAndStart(_ prefix: [UInt8]) throws(ValidationError) -> (Int, Int) {
        switch prefix[6] {
        case 1: return (Int(prefix[8]) | Int(prefix[9]) << 8, 10)
        case 2, 3:
            guard prefix.count >= 12 else { throw ValidationError("truncated .npy header") }
            return (Int(prefix[8]) | Int(prefix[9]) << 8 | Int(prefix[10]) << 16 | Int(prefix[11]) << 24, 12)
        default: throw ValidationError(".npy format version \(prefix[6]) is not supported")
        }
    }

    /// The element at `p`, as a Double.
    @inline(__always)
    func value(at p: UnsafeRawPointer) -> Double {
        switch (kind, size) {
        case ("f", 8): Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)))
        case ("f", 4): Double(Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(as: UInt32.self))))
        case ("i", 8): Double(Int64(littleEndian: p.loadUnaligned(as: Int64.self)))
        case ("i", 4): Double(Int32(littleEndian: p.loadUnaligned(as: Int32.self)))
        case ("i", 2): Double(Int16(littleEndian: p.loadUnaligned(as: Int16.self)))
        case ("i", 1): Double(p.load(as: Int8.self))
        case ("u", 8): Double(UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)))
        case ("u", 4): Double(UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)))
        case ("u", 2): Double(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
        default: Double(p.load(as: UInt8.self)) // u1, b1
        }
    }
}

/// A `.npy` file read a block of rows at a time (C or Fortran order), so that memory does not
/// grow with the file.
final class NPYFile {
    let path: String
    let header: NPYHeader
    private let handle: FileHandle

    init(path: String) throws {
        self.path = path
        guard let handle = FileHandle(forReadingAtPath: path) else { throw InputError(source: path, reason: "cannot read the file") }
        self.handle = handle
        let fileSize = Int(try handle.seekToEnd())
        try handle.seek(toOffset: 0)
        var prefix = [UInt8](try handle.read(upToCount: 12) ?? Data())
        if prefix.count >= 10, prefix.starts(with: [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]),
           let (length, start) = try? NPYHeader.lengthAndStart(prefix) {
            let more = max(0, min(start + length, fileSize) - prefix.count)
            prefix += [UInt8](try handle.read(upToCount: more) ?? Data())
        }
        do throws(ValidationError) {
            header = try NPYHeader.parse(prefix, fileSize: fileSize)
        } catch {
            throw InputError(source: path, reason: error.reason)
        }
    }

    deinit { try? handle.close() }

    /// Rows (first dimension) `range` of a 1-D or 2-D array, row by row.
    func rows(_ range: Range<Int>) throws -> [Double] {
        let columns = header.shape.count == 2 ? header.shape[1] : 1
        let rows = header.shape.first ?? 0
        var values = [Double](repeating: 0, count: range.count * columns)
        guard !range.isEmpty else { return values }
        func read(offset: Int, count: Int) throws -> [UInt8] {
            try handle.seek(toOffset: UInt64(header.dataStart + offset * header.size))
            let bytes = [UInt8](try handle.read(upToCount: count * header.size) ?? Data())
            guard bytes.count == count * header.size else { throw InputError(source: path, reason: "truncated while reading rows \(range)") }
            return bytes
        }
        if header.fortran && columns > 1 {
            for c in 0..<columns {
                let bytes = try read(offset: c * rows + range.lowerBound, count: range.count)
                bytes.withUnsafeBytes { raw in
                    for r in 0..<range.count { values[r * columns + c] = header.value(at: raw.baseAddress! + r * header.size) }
                }
            }
        } else {
            let bytes = try read(offset: range.lowerBound * columns, count: range.count * columns)
            bytes.withUnsafeBytes { raw in
                for i in 0..<values.count { values[i] = header.value(at: raw.baseAddress! + i * header.size) }
            }
        }
        return values
    }
}
