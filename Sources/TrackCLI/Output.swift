import Foundation
import Synchronization
import TrackAnalysis
import TrackStore

/// What a command printed, when it runs in-process (the tests): standard output and error.
public final class ConsoleCapture: Sendable {
    private let streams = Mutex<(out: String, err: String)>(("", ""))
    public init() {}
    public var out: String { streams.withLock { $0.out } }
    public var err: String { streams.withLock { $0.err } }
    func append(_ text: String, error: Bool) {
        streams.withLock { if error { $0.err += text } else { $0.out += text } }
    }
}

/// Standard output and error.
enum Console {
    /// Where output goes instead of the descriptors, for a command run in-process.
    @TaskLocal static var capture: ConsoleCapture?

    /// Standard output: connection passwords redacted; on a terminal, control characters shown
    /// as escapes (a run name cannot drive the terminal); to a pipe or file, the bytes as they are.
    static func out(_ text: String) {
        if let capture { capture.append(StoreLocation.redactedMessage(text), error: false); return }
        var shown = StoreLocation.redactedMessage(text)
        if isatty(1) == 1 { shown = visible(shown) }
        if !write(shown, to: 1) {
            let reason = String(cString: strerror(errno))
            _ = write("Error: cannot write to standard output (\(reason))\n", to: 2)
            exit(1)
        }
    }
    /// Standard error: messages, always redacted and with control characters made visible.
    static func err(_ text: String) {
        if let capture { capture.append(visible(StoreLocation.redactedMessage(text)), error: true); return }
        _ = write(visible(StoreLocation.redactedMessage(text)), to: 2)
    }
    /// The progress line's own terminal control (carriage return, erase line), then `text` made visible.
    static func progress(_ text: String) {
        guard capture == nil else { return }   // a captured command draws no progress
        _ = write("\r\u{1B}[K" + visible(text), to: 2)
    }

    /// C0 and C1 control characters but newline and tab as `\u{…}` escapes.
    static func visible(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var result = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isControl(scalar) {
                result.append(contentsOf: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}".unicodeScalars)
            } else {
                result.append(scalar)
            }
        }
        return String(result)
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        (scalar.value < 0x20 && scalar != "\n" && scalar != "\t") || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value)
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

/// Progress of long work on standard error: one line redrawn in place, with a
/// rate and an estimate of the time left; only when standard error is a
/// terminal (never on standard output, never into a log file).
final class ProgressLine: @unchecked Sendable {   // updates are serialised by its lock
    let label: String
    private let enabled: Bool
    private let bytes: Bool
    private let start = Date()
    private var lastDraw = Date.distantPast
    private let lock = NSLock()

    /// Off when standard error is not a terminal or `quiet`; `bytes` shows amounts in MB.
    init(_ label: String, quiet: Bool = false, bytes: Bool = false) {
        self.label = label
        self.enabled = isatty(2) == 1 && !quiet
        self.bytes = bytes
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
        func amount(_ value: Int) -> String { bytes ? String(format: "%.1f MB", Double(value) / 1e6) : String(value) }
        // A total of 0 is unknown: a counter with its rate.
        var line = total > 0 ? "\(label): \(amount(done))/\(amount(total))" : "\(label): \(amount(done))"
        if total > 0 { line += String(format: " (%.0f%%)", 100 * Double(done) / Double(total)) }
        if done > 0, elapsed > 0.5, total == 0 || done < total {
            line += bytes ? String(format: ", %.1f MB/s", Double(done) / elapsed / 1e6) : String(format: ", %.1f/s", Double(done) / elapsed)
            if total > 0 { line += String(format: ", ~%.0f s left", elapsed / Double(done) * Double(total - done)) }
        }
        if !item.isEmpty { line += "  \(item.prefix(40))" }
        Console.progress(line + (total > 0 && done >= total ? "\n" : ""))
    }

    /// Ends a counter's line (a total of 0 never ends it by itself).
    func finish() {
        guard enabled, lastDraw != .distantPast else { return }
        Console.err("\n")
    }
}
