import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads a file descriptor in large chunks and hands out its lines without
/// copying them, hashing every byte it reads (SHA-256) on the way.
///
/// Lines end at `\n`; a trailing `\r` is dropped. The last line may lack its
/// newline; `lastLineWasTerminated` tells whether it had one (a file cut off
/// mid-line usually did not).
///
/// A reader is used by one thread at a time; it may be handed to another
/// thread (the ingest pipeline parses on its own thread), hence `@unchecked Sendable`.
public final class LineReader: @unchecked Sendable {
    private let fd: Int32
    private let ownsDescriptor: Bool
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    private var start = 0
    private var end = 0
    private var atEOF = false
    private var hasher = SHA256()
    /// Hash what is read (for `finalizeSHA256`); off for a stream nothing identifies by content.
    public var hashes = true
    public private(set) var lineNumber = 0
    public private(set) var bytesRead = 0
    /// Called after each read from the file with the bytes read so far (for progress).
    public var onRead: ((Int) -> Void)?
    public private(set) var lastLineWasTerminated = true
    public let name: String

    public init(path: String, chunkSize: Int = 1 << 20) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw InputError(source: path, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        self.ownsDescriptor = true
        self.name = path
        self.capacity = chunkSize
        self.buffer = .allocate(byteCount: chunkSize, alignment: 16)
    }

    /// Reads an already open descriptor, e.g. standard input.
    public init(descriptor: Int32, name: String, chunkSize: Int = 1 << 16) {
        self.fd = descriptor
        self.ownsDescriptor = false
        self.name = name
        self.capacity = chunkSize
        self.buffer = .allocate(byteCount: chunkSize, alignment: 16)
    }

    deinit {
        buffer.deallocate()
        if ownsDescriptor { close(fd) }
    }

    /// The SHA-256 of every byte read so far (call once, after the last line).
    public func finalizeSHA256() -> String { hasher.finalizeHex() }

    /// Waits until input is readable or `timeout` seconds pass; `true` when readable.
    /// Lets a streaming reader commit on a clock while its producer is quiet.
    public func waitForInput(timeout: Double) -> Bool {
        if start < end || atEOF { return true }
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let result = poll(&descriptor, 1, Int32(max(0, timeout * 1000)))
        return result != 0
    }

    /// The next line, valid until the following call; nil at end of input.
    public func nextLine() throws -> UnsafeRawBufferPointer? {
        while true {
            if start < end, let newline = memchr(buffer + start, 0x0A, end - start) {
                let lineEnd = buffer.distance(to: newline)
                defer { start = lineEnd + 1 }
                lineNumber += 1
                return trimmedLine(from: start, to: lineEnd)
            }
            if atEOF {
                guard start < end else { return nil }
                let line = trimmedLine(from: start, to: end)
                start = end
                lineNumber += 1
                lastLineWasTerminated = false
                return line
            }
            try fill()
        }
    }

    private func trimmedLine(from lineStart: Int, to lineEnd: Int) -> UnsafeRawBufferPointer {
        var first = lineStart
        var stop = lineEnd
        if stop > first, buffer.load(fromByteOffset: stop - 1, as: UInt8.self) == 0x0D { stop -= 1 }
        // A UTF-8 byte-order mark at the start of the input is not part of the first line.
        if lineNumber == 1, stop - first >= 3, buffer.load(fromByteOffset: first, as: UInt8.self) == 0xEF,
           buffer.load(fromByteOffset: first + 1, as: UInt8.self) == 0xBB, buffer.load(fromByteOffset: first + 2, as: UInt8.self) == 0xBF {
            first += 3
        }
        return UnsafeRawBufferPointer(start: buffer + first, count: stop - first)
    }

    /// Moves the unread tail to the front (growing for long lines) and reads more.
    private func fill() throws {
        if start > 0 {
            if start < end { memmove(buffer, buffer + start, end - start) }
            end -= start
            start = 0
        }
        if end == capacity {
            let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity * 2, alignment: 16)
            grown.copyMemory(from: buffer, byteCount: end)
            buffer.deallocate()
            buffer = grown
            capacity *= 2
        }
        while true {
            let count = read(fd, buffer + end, capacity - end)
            if count < 0 {
                if errno == EINTR { continue }
                throw InputError(source: name, reason: "read failed: \(String(cString: strerror(errno)))")
            }
            if count == 0 { atEOF = true; return }
            if hashes { hasher.update(UnsafeRawBufferPointer(start: buffer + end, count: count)) }
            end += count
            bytesRead += count
            onRead?(bytesRead)
            return
        }
    }
}

/// Reads a whole file into memory.
func readWholeFile(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw InputError(source: path, reason: "cannot read the file")
    }
    return [UInt8](data)
}

extension LineReader {
    /// Reports (bytes read, file size) to `progress` as the file is read.
    func reportProgress(_ progress: (@Sendable (Int, Int) -> Void)?) {
        guard let progress else { return }
        let size = (try? FileManager.default.attributesOfItem(atPath: name)[.size] as? Int) ?? 0
        onRead = { progress($0, size) }
    }
}
