import Foundation
import Synchronization

/// Where track writes an output (`--out`, `--data`, `--out-dir`, exports): only a regular file
/// (or a new one), never the store or an input of the command, and atomically: the output is
/// written to a temporary file in the target's folder and renamed over the target, so that a
/// failure or a kill leaves the old file whole or the new one, never a mix or nothing.
public enum OutputFile {
    /// Files no output may replace, by identity (device and inode) and by absolute path: one
    /// list per command (`withProtections`), so that commands run side by side in one process
    /// (the in-process tests) keep their own.
    public final class Protections: Sendable {
        let list = Mutex<[(path: String, device: UInt64, inode: UInt64, what: String)]>([])
        public init() {}
    }
    @TaskLocal private static var current = Protections()

    /// Runs `body` (one command) with its own, initially empty, list of protected files.
    public static func withProtections<T>(_ body: () throws -> T) rethrows -> T {
        try $current.withValue(Protections(), operation: body)
    }

    /// Marks `path` (when it exists; always by its absolute path) as one that no output of this
    /// process may replace: `what` says what it is in the refusal ("the store", "an input").
    public static func protect(_ path: String, as what: String) {
        let absolute = absolutePath(path)
        var info = stat()
        let exists = stat(path, &info) == 0
        current.list.withLock { list in
            list.append((absolute, exists ? UInt64(info.st_dev) : 0, exists ? UInt64(info.st_ino) : 0, what))
        }
    }

    /// Protects a SQLite store with its journal files.
    public static func protectStore(_ path: String) {
        for suffix in ["", "-wal", "-shm", "-journal"] { protect(path + suffix, as: "the store") }
    }

    /// Why `path` may not be written, or nil.
    static func refusal(_ path: String) -> String? {
        var info = stat()
        if lstat(path, &info) == 0 {
            let type = info.st_mode & S_IFMT
            if type != S_IFREG {
                let kind = switch type {
                case S_IFLNK: "a symbolic link"
                case S_IFDIR: "a directory"
                case S_IFIFO: "a FIFO"
                case S_IFCHR, S_IFBLK: "a device"
                case S_IFSOCK: "a socket"
                default: "not a regular file"
                }
                return "it is \(kind); track writes outputs only to regular files (give another path)"
            }
        }
        let absolute = absolutePath(path)
        let exists = stat(path, &info) == 0
        for entry in current.list.withLock({ $0 }) {
            let same = entry.path == absolute || (exists && entry.device != 0 && UInt64(info.st_dev) == entry.device && UInt64(info.st_ino) == entry.inode)
            if same { return "it is \(entry.what) of this command; an output never replaces it" }
        }
        return nil
    }

    /// Writes `bytes` to `path` atomically, creating its folder; refuses what `refusal` names.
    public static func write(_ bytes: Data, to path: String) throws {
        try replace(path) { temporary in
            guard FileManager.default.createFile(atPath: temporary, contents: bytes) else {
                throw StoreError("cannot write \(path): \(String(cString: strerror(errno)))", kind: .io)
            }
        }
    }

    /// Lets `write` produce the output at a temporary path beside `path` (same extension), then
    /// renames it over `path`; the temporary file is removed if anything fails.
    public static func replace(_ path: String, _ write: (String) throws -> Void) throws {
        guard !path.isEmpty else { throw StoreError("an output needs a file name", kind: .usage) }
        if let reason = refusal(path) { throw StoreError("cannot write \(path): \(reason)", kind: .usage) }
        let directory = parentDirectory(of: path)
        if !directory.isEmpty {
            do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
                throw StoreError("cannot write \(path): \(fileErrorReason(error))", kind: .io)
            }
        }
        let name = (path as NSString).lastPathComponent
        let temporary = ((directory.isEmpty ? "." : directory) as NSString)
            .appendingPathComponent(".track-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(name)")
        do {
            try write(temporary)
            // The refusal again, right before the rename: the target may have changed meanwhile.
            if let reason = refusal(path) { throw StoreError("cannot write \(path): \(reason)", kind: .usage) }
            guard rename(temporary, path) == 0 else {
                throw StoreError("cannot write \(path): \(String(cString: strerror(errno)))", kind: .io)
            }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    static func absolutePath(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
        return (absolute as NSString).standardizingPath
    }
}

/// The operating system's reason behind a Foundation file error (e.g. "No space left on device").
public func fileErrorReason(_ error: Error) -> String {
    let ns = error as NSError
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    return ns.localizedDescription
}

/// The folder part of a path ("" for a bare file name, "/" for a file at the root): what
/// `NSString.deletingLastPathComponent` gives, which traps on short bare names ("0", "a")
/// in swift-corelibs-foundation.
public func parentDirectory(of path: String) -> String {
    var trimmed = Substring(path)
    while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
    guard let slash = trimmed.lastIndex(of: "/") else { return "" }
    if slash == trimmed.startIndex { return "/" }
    var folder = trimmed[..<slash]
    while folder.count > 1, folder.hasSuffix("/") { folder = folder.dropLast() }
    return String(folder)
}
