/// A small, fast PNG encoder for opaque figures: 8-bit RGB, the Up filter on
/// every row, and one deflate block with the fixed Huffman code whose only
/// back-references repeat the previous pixel (distance 3). Plots are mostly
/// flat colour, which Up turns into runs that such matches cover 258 bytes at
/// a time; general-purpose zlib effort buys little here and costs most of the
/// render (libpng + zlib took 75% of Cairo's PNG write). Deterministic.
enum PNGEncoder {
    /// Encodes `height` rows of `width` ARGB32 pixels (`stride` pixels apart),
    /// which must be opaque; alpha is dropped.
    static func encode(argb: UnsafePointer<UInt32>, width: Int, height: Int, stride: Int) -> [UInt8] {
        let rowBytes = 1 + width * 3
        var filtered = [UInt8](repeating: 0, count: rowBytes * height)
        filtered.withUnsafeMutableBufferPointer { out in
            for y in 0..<height {
                let row = argb + y * stride
                let base = y * rowBytes
                out[base] = y == 0 ? 0 : 2 // None for the first row, then Up
                for x in 0..<width {
                    let pixel = row[x]
                    var r = UInt8(truncatingIfNeeded: pixel >> 16), g = UInt8(truncatingIfNeeded: pixel >> 8)
                    var b = UInt8(truncatingIfNeeded: pixel)
                    if y > 0 {
                        let above = (argb + (y - 1) * stride)[x]
                        r &-= UInt8(truncatingIfNeeded: above >> 16)
                        g &-= UInt8(truncatingIfNeeded: above >> 8)
                        b &-= UInt8(truncatingIfNeeded: above)
                    }
                    out[base + 1 + 3 * x] = r
                    out[base + 2 + 3 * x] = g
                    out[base + 3 + 3 * x] = b
                }
            }
        }
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header: [UInt8] = []
        header.appendBigEndian(UInt32(width))
        header.appendBigEndian(UInt32(height))
        header += [8, 2, 0, 0, 0] // 8-bit, RGB, deflate, adaptive filtering, no interlace
        appendChunk("IHDR", header, to: &png)
        appendChunk("IDAT", zlib(filtered), to: &png)
        appendChunk("IEND", [], to: &png)
        return png
    }

    static func appendChunk(_ type: String, _ data: [UInt8], to png: inout [UInt8]) {
        png.appendBigEndian(UInt32(data.count))
        let typeBytes = Array(type.utf8)
        var crc = CRC32()
        crc.update(typeBytes)
        crc.update(data)
        png += typeBytes
        png += data
        png.appendBigEndian(crc.value)
    }

    // MARK: - zlib / deflate

    /// A zlib stream: header, one fixed-Huffman deflate block, Adler-32.
    static func zlib(_ data: [UInt8]) -> [UInt8] {
        var writer = BitWriter(capacity: data.count / 4 + 64)
        writer.bytes += [0x78, 0x01]
        writer.write(1, bits: 1) // BFINAL
        writer.write(1, bits: 2) // BTYPE = 01, fixed Huffman
        data.withUnsafeBufferPointer { input in
            let n = input.count
            var i = 0
            while i < n {
                if i >= 3 {
                    // Longest repeat of the previous pixel (distance 3), up to 258 bytes.
                    var length = 0
                    let limit = min(258, n - i)
                    while length < limit, input[i + length] == input[i + length - 3] { length += 1 }
                    if length >= 3 {
                        writer.writeLength(length)
                        writer.write(Fixed.distance3, bits: 5)
                        i += length
                        continue
                    }
                }
                writer.writeLiteral(Int(input[i]))
                i += 1
            }
        }
        writer.writeLiteral(256) // end of block
        writer.flush()
        var adler = Adler32()
        adler.update(data)
        writer.bytes.appendBigEndian(adler.value)
        return writer.bytes
    }

    /// The fixed Huffman code of deflate (RFC 1951 §3.2.6), bit-reversed for an LSB-first stream.
    enum Fixed {
        static let literalCodes: [(code: UInt32, bits: Int)] = (0..<288).map { symbol in
            let (code, bits): (Int, Int)
            switch symbol {
            case 0...143: (code, bits) = (0x30 + symbol, 8)
            case 144...255: (code, bits) = (0x190 + symbol - 144, 9)
            case 256...279: (code, bits) = (symbol - 256, 7)
            default: (code, bits) = (0xC0 + symbol - 280, 8)
            }
            return (reverse(UInt32(code), bits: bits), bits)
        }
        /// Length 3…258 → (symbol, extra bits, extra value).
        static let lengthCodes: [(symbol: Int, extraBits: Int, extra: UInt32)] = {
            let bases = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
            let extras = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
            var table = [(symbol: Int, extraBits: Int, extra: UInt32)](repeating: (0, 0, 0), count: 259)
            for length in 3...258 {
                var code = bases.count - 1
                while bases[code] > length { code -= 1 }
                table[length] = (257 + code, extras[code], UInt32(length - bases[code]))
            }
            return table
        }()
        /// Distance code 2 (distance 3), 5 bits, bit-reversed.
        static let distance3 = reverse(2, bits: 5)

        static func reverse(_ code: UInt32, bits: Int) -> UInt32 {
            var result: UInt32 = 0
            for i in 0..<bits where code & (1 << UInt32(i)) != 0 { result |= 1 << UInt32(bits - 1 - i) }
            return result
        }
    }

    struct BitWriter {
        var bytes: [UInt8]
        private var buffer: UInt64 = 0
        private var count = 0

        init(capacity: Int) {
            bytes = []
            bytes.reserveCapacity(capacity)
        }

        @inline(__always)
        mutating func write(_ value: UInt32, bits: Int) {
            buffer |= UInt64(value) << UInt64(count)
            count += bits
            while count >= 8 {
                bytes.append(UInt8(truncatingIfNeeded: buffer))
                buffer >>= 8
                count -= 8
            }
        }

        @inline(__always)
        mutating func writeLiteral(_ symbol: Int) {
            let code = Fixed.literalCodes[symbol]
            write(code.code, bits: code.bits)
        }

        @inline(__always)
        mutating func writeLength(_ length: Int) {
            let entry = Fixed.lengthCodes[length]
            writeLiteral(entry.symbol)
            if entry.extraBits > 0 { write(entry.extra, bits: entry.extraBits) }
        }

        mutating func flush() {
            if count > 0 { bytes.append(UInt8(truncatingIfNeeded: buffer)) }
            buffer = 0
            count = 0
        }
    }
}

/// CRC-32 (ISO 3309, as PNG chunks use).
struct CRC32 {
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }
    private var state: UInt32 = 0xFFFF_FFFF

    mutating func update(_ bytes: [UInt8]) {
        Self.table.withUnsafeBufferPointer { table in
            for byte in bytes { state = table[Int((state ^ UInt32(byte)) & 0xff)] ^ (state >> 8) }
        }
    }

    var value: UInt32 { state ^ 0xFFFF_FFFF }
}

/// Adler-32 (RFC 1950), with the modulo deferred over 5552-byte runs.
struct Adler32 {
    private var a: UInt32 = 1, b: UInt32 = 0

    mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { input in
            var index = 0
            while index < input.count {
                let end = min(index + 5552, input.count)
                while index < end {
                    a &+= UInt32(input[index])
                    b &+= a
                    index += 1
                }
                a %= 65521
                b %= 65521
            }
        }
    }

    var value: UInt32 { b << 16 | a }
}

extension Array where Element == UInt8 {
    mutating func appendBigEndian(_ value: UInt32) {
        append(UInt8(value >> 24)); append(UInt8(truncatingIfNeeded: value >> 16))
        append(UInt8(truncatingIfNeeded: value >> 8)); append(UInt8(truncatingIfNeeded: value))
    }
}
