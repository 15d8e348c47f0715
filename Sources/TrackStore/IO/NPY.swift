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
        if bytes.isEmpty { throw ValidationError("empty file") }
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw ValidationError("not a .npy file (no \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw ValidationError("truncated .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw ValidationError(".npy format version \(major) is not supported")
        }
        guard bytes.count >= headerStart + headerLength else { throw ValidationError("truncated .npy header") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        let descr = try headerValue("descr", in: header).trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
        let fortran = try headerValue("fortran_order", in: header) == "True"
        let shapeText = try headerValue("shape", in: header)
            .trimmingCharacters(in: CharacterSet(charactersIn: "() "))
        let shape = try shapeText.split(separator: ",").map { part throws(ValidationError) -> Int in
            guard let n = Int(part.trimmingCharacters(in: .whitespaces)), n >= 0 else {
                throw ValidationError("bad shape in .npy header: (\(shapeText))")
            }
            return n
        }
        guard let (kind, size) = dtype(descr) else {
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
        guard bytes.count - dataStart >= needed else {
            throw ValidationError("truncated: the header declares shape (\(shapeText)) of '\(descr)' (\(needed) bytes) but the file holds \(bytes.count - dataStart)")
        }
        var values = [Double](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + dataStart
            for i in 0..<count {
                let p = base + i * size
                switch (kind, size) {
                case ("f", 8): values[i] = Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)))
                case ("f", 4): values[i] = Double(Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(as: UInt32.self))))
                case ("i", 8): values[i] = Double(Int64(littleEndian: p.loadUnaligned(as: Int64.self)))
                case ("i", 4): values[i] = Double(Int32(littleEndian: p.loadUnaligned(as: Int32.self)))
                case ("i", 2): values[i] = Double(Int16(littleEndian: p.loadUnaligned(as: Int16.self)))
                case ("i", 1): values[i] = Double(p.load(as: Int8.self))
                case ("u", 8): values[i] = Double(UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)))
                case ("u", 4): values[i] = Double(UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)))
                case ("u", 2): values[i] = Double(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
                default: values[i] = Double(p.load(as: UInt8.self)) // u1, b1
                }
            }
        }
        if fortran, shape.count == 2 {
            let (rows, columns) = (shape[0], shape[1])
            var reordered = values
            for r in 0..<rows { for c in 0..<columns { reordered[r * columns + c] = values[c * rows + r] } }
            values = reordered
        }
        return NPYArray(shape: shape, values: values)
    }

    private static func dtype(_ descr: String) -> (Character, Int)? {
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
    private static func headerValue(_ key: String, in header: String) throws(ValidationError) -> String {
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
