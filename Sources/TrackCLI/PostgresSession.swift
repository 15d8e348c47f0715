import Foundation
import TrackStore

/// A command's use of a PostgreSQL store. The command runs, unchanged, on a local SQLite copy:
/// every run's metadata, logged metrics and summaries, pulled in one consistent snapshot, whose
/// scans read the option rows from the server (`PostgresStore.openCopy`). What it writes
/// there — validated, one transaction per file, as on SQLite — is pushed to the server when it
/// ends, one transaction per run (`PostgresStore.push`). Commands that change runs already on
/// the server are refused: they run on a SQLite store, whose runs are then pushed.
final class PostgresSession {
    let server: PostgresStore
    let local: RunStore
    let directory: URL
    /// The runs pulled, by uuid, with their number of questions and of EM targets then.
    private var pulled: [String: Int64] = [:]
    private var targets: [String: String] = [:]

    /// Commands that write to a PostgreSQL store: by adding runs.
    static let writers: Set<String> = ["init", "log", "ingest", "calibrate"]
    /// Commands that only read (their exports are recorded in the local copy alone).
    static let readers: Set<String> = ["runs", "show", "metrics", "compare", "table", "plot", "tce", "em", "winrate", "report"]

    var displayName: String { server.displayName }

    init(uri: String, command: String, connectTimeout: Int, busyTimeout: Double) throws {
        guard Self.writers.contains(command) || Self.readers.contains(command) else {
            throw StoreError("`track \(command)` does not run on a PostgreSQL store yet; run it on a SQLite store (then `track push` its runs)", kind: .usage)
        }
        server = try PostgresStore(uri: uri, connectTimeout: connectTimeout)
        let folder = try TemporaryFolders.make(prefix: "track-pgcopy")
        directory = folder
        do {
            local = try server.openCopy(at: folder.appendingPathComponent("copy.sqlite").path, busyTimeout: busyTimeout)
        } catch {
            // Not yet a whole session (its deinit will not run): the copy goes now.
            TemporaryFolders.remove(folder)
            throw error
        }
        try local.database.forEachRow("SELECT r.uuid, COALESCE(s.n, 0) FROM runs r LEFT JOIN run_stats s USING (run_id)") {
            pulled[$0.string(0) ?? ""] = $0.int64(1)
        }
        targets = try emTargetCounts()
    }

    /// Sends what a `track log` stream committed so far (called after each local commit).
    func pushIncrement(runID: Int64) throws {
        try server.pushIncrement(runID: runID, from: local)
    }

    deinit {
        PostgresStore.closeCopy(at: local.database.path)
        TemporaryFolders.remove(directory)
    }

    /// Per run (uuid): its EM targets' count, sum and bins, to tell when `track em` stored new ones.
    private func emTargetCounts() throws -> [String: String] {
        var counts: [String: String] = [:]
        try local.database.forEachRow("SELECT r.uuid, count(*) || ':' || total(t.target) || ':' || total(t.bin) FROM em_targets t JOIN runs r USING (run_id) GROUP BY r.uuid") {
            counts[$0.string(0) ?? ""] = $0.string(1)
        }
        return counts
    }

    /// Pushes every run the command added, each in its own transaction; a run it replaced (same
    /// name, `--force` or `--replace`) is deleted on the server in the transaction of its
    /// replacement. Returns the names pushed.
    func pushNewRuns() throws -> [String] {
        var present: [String: (id: Int64, name: String, n: Int64)] = [:]
        try local.database.forEachRow("SELECT r.run_id, r.uuid, r.name, COALESCE(s.n, 0) FROM runs r LEFT JOIN run_stats s USING (run_id) ORDER BY r.run_id") {
            present[$0.string(1) ?? ""] = ($0.int64(0), $0.string(2) ?? "", $0.int64(3))
        }
        for (uuid, n) in pulled {
            if let run = present[uuid], run.n != n {
                throw StoreError("adding rows to run '\(run.name)', which is on \(displayName), is not supported yet; nothing of it was pushed", kind: .usage)
            }
        }
        // EM targets stored with a run that is on the server (`track em`): replaced there.
        for (uuid, count) in try emTargetCounts() where pulled[uuid] != nil && targets[uuid] != count {
            if let run = present[uuid] { try server.replaceEMTargets(runID: run.id, from: local) }
        }
        var replaced = pulled.keys.filter { present[$0] == nil }
        let serverNames = try server.runUUIDs()
        var pushed: [String] = []
        // Parents before the runs derived from them: in local id order.
        for (uuid, run) in present.sorted(by: { $0.value.id < $1.value.id }) where pulled[uuid] == nil {
            let replacing = replaced.filter { serverNames[$0] == run.name }
            replaced.removeAll { replacing.contains($0) }
            if !replacing.isEmpty || serverNames[uuid] == nil {
                if case .pushed = try server.push(runID: run.id, from: local, replacing: replacing) { pushed.append(run.name) }
            } else {
                // Sent in increments as it was logged: the rest of it (if any) now.
                try server.pushIncrement(runID: run.id, from: local)
            }
        }
        return pushed
    }
}
