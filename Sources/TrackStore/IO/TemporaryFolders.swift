import Dispatch
import Foundation
import Synchronization

/// Private temporary folders (0700, so no other local user can read what is copied into them)
/// removed on every way out: when done, on SIGINT / SIGTERM / SIGHUP, and — for a process that
/// was killed or crashed — by the next track that starts one (`track-pg-<pid>-…` of a pid
/// that no longer runs).
public enum TemporaryFolders {
    /// The prefix of the staging and scratch files of PostgreSQL commands.
    public static let postgresStaging = "track-pgstage"

    private static let live = Mutex<[String]>([])
    private static let handlers = Mutex<[any DispatchSourceSignal]>([])

    /// A new private folder `<tmp>/<prefix>-<pid>-<uuid>`, removed by `remove` or at a signal.
    public static func make(prefix: String) throws -> URL {
        sweep(prefix: prefix)
        installHandlers()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        live.withLock { $0.append(url.path) }
        return url
    }

    public static func remove(_ url: URL) {
        try? FileManager.default.removeItem(at: url)
        live.withLock { $0.removeAll { $0 == url.path } }
    }

    /// Folders of earlier tracks that ended without removing theirs (killed, crashed).
    public static func sweep(prefix: String) {
        let root = FileManager.default.temporaryDirectory
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? [] where name.hasPrefix(prefix + "-") {
            // <prefix>-<pid>-<uuid>, nothing else: another program's folder is never touched.
            let parts = name.dropFirst(prefix.count + 1).split(separator: "-", maxSplits: 1)
            guard parts.count == 2, UUID(uuidString: String(parts[1])) != nil,
                  let pid = Int32(parts[0]), pid > 0, pid != getpid() else { continue }
            var info = stat()
            guard lstat(root.appendingPathComponent(name).path, &info) == 0, info.st_uid == getuid() else { continue }
            if kill(pid, 0) != 0, errno == ESRCH { try? FileManager.default.removeItem(at: root.appendingPathComponent(name)) }
        }
    }

    /// On a terminating signal: the folders removed, then the signal's default action.
    private static func installHandlers() {
        handlers.withLock { sources in
            guard sources.isEmpty else { return }
            for sig in [SIGINT, SIGTERM, SIGHUP] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler {
                    for path in live.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
                    // The default action, on this thread (Dispatch keeps the signal blocked here).
                    signal(sig, SIG_DFL)
                    var set = sigset_t()
                    sigemptyset(&set)
                    sigaddset(&set, sig)
                    pthread_sigmask(SIG_UNBLOCK, &set, nil)
                    raise(sig)
                    _exit(128 + sig)
                }
                source.resume()
                sources.append(source)
            }
        }
    }
}
