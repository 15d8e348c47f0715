import Foundation

/// Whole runs written into a PostgreSQL store by `track log` and `track ingest`: validated and
/// summarised by the SQLite writer into a private staging file that holds the server's run
/// catalogue (names, sources, params, tags: what naming and duplicate checks consult) and the
/// new runs, then pushed, one transaction per run. A logged run is pushed after each of its
/// commits. Everything else runs on the server directly.
public final class PostgresStaging {
    public let server: PostgresStore
    /// The staging file the command writes into.
    public let local: RunStore
    let directory: URL
    /// The uuids of the server's runs when the staging began.
    private var catalogued: Set<String> = []

    public var displayName: String { server.displayName }

    /// A staging file holding the server's run catalogue; with `appending`, the name of a run
    /// `track log --append` adds to, that run instead, whole (its rows, questions and
    /// summaries, pulled): what an append validates against and adds its summaries to.
    public init(server: PostgresStore, busyTimeout: Double, appending: String? = nil) throws {
        self.server = server
        let folder = try TemporaryFolders.make(prefix: TemporaryFolders.postgresStaging)
        directory = folder
        do {
            local = try RunStore(path: folder.appendingPathComponent("staging.sqlite").path, busyTimeout: busyTimeout)
            if let appending, try server.runID(named: appending) != nil {
                _ = try server.pull(runs: [appending], into: local)
                try server.markPushed(in: local)
            } else {
                try server.copyCatalogue(into: local)
            }
        } catch {
            // Not yet a whole session (its deinit will not run): the folder goes now.
            TemporaryFolders.remove(folder)
            throw error
        }
        try local.database.forEachRow("SELECT uuid FROM runs") { catalogued.insert($0.string(0) ?? "") }
    }

    /// Sends what a `track log` stream committed so far (called after each local commit).
    public func pushIncrement(runID: Int64) throws {
        try server.pushIncrement(runID: runID, from: local)
    }

    deinit { TemporaryFolders.remove(directory) }

    /// Pushes every run the command added, each in its own transaction; a server run it replaced
    /// (same name, `--force`) is deleted in the transaction of its replacement, any other it
    /// replaced afterwards. Returns the names pushed.
    public func pushNewRuns() throws -> [String] {
        var present: [String: (id: Int64, name: String)] = [:]
        try local.database.forEachRow("SELECT run_id, uuid, name FROM runs ORDER BY run_id") {
            present[$0.string(1) ?? ""] = ($0.int64(0), $0.string(2) ?? "")
        }
        var replaced = catalogued.filter { present[$0] == nil }
        let serverNames = try server.runUUIDs()
        var pushed: [String] = []
        // Parents before the runs derived from them: in local id order.
        for (uuid, run) in present.sorted(by: { $0.value.id < $1.value.id }) where !catalogued.contains(uuid) {
            let replacing = replaced.filter { serverNames[$0] == run.name }
            replaced.subtract(replacing)
            if !replacing.isEmpty || serverNames[uuid] == nil {
                if case .pushed = try server.push(runID: run.id, from: local, replacing: Array(replacing)) { pushed.append(run.name) }
            } else {
                // Sent in increments as it was logged: the rest of it (if any) now.
                try server.pushIncrement(runID: run.id, from: local)
            }
        }
        try server.deleteRuns(uuids: replaced.sorted())
        return pushed
    }
}
