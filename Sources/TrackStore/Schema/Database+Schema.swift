import Foundation

/// The schema the binary writes, and how older files are brought forward.
public enum Schema {
    /// `PRAGMA user_version` of a database this binary creates.
    public static var currentVersion: Int { parseVersion(of: sql("schema.sql")) }

    /// The text of an embedded `sql/` file.
    public static func sql(_ name: String) -> String {
        guard let text = EmbeddedSQL.files[name] else {
            preconditionFailure("sql/\(name) is not embedded in this build")
        }
        return text
    }

    /// Every embedded SQL file, by name (e.g. `schema.sql`, `views.sql`).
    public static var files: [String: String] { EmbeddedSQL.files }

    /// `sql/migrate-NNN.sql` moves a database from version NNN-1 to NNN.
    static func migration(to version: Int) -> String? {
        EmbeddedSQL.files[String(format: "migrate-%03d.sql", version)]
    }

    static func parseVersion(of script: String) -> Int {
        for line in script.split(separator: "\n").reversed() {
            let trimmed = line.trimmingCharacters(in: .whitespaces).lowercased()
            if trimmed.hasPrefix("pragma user_version"),
               let value = trimmed.split(separator: "=").last?
                .trimmingCharacters(in: CharacterSet(charactersIn: " ;")),
               let version = Int(value) {
                return version
            }
        }
        preconditionFailure("sql/schema.sql does not end with PRAGMA user_version = N")
    }

    /// Tables whose rows belong to one run (`run_id REFERENCES runs ON DELETE CASCADE`).
    static let runOwnedTables = ["option_scores", "_track_top_labels", "_track_run_bins", "_track_run_stats", "params", "tags", "metrics", "preference_pairs", "ingest_rejects",
                                  "export_runs", "em_targets", "judgments", "calibration_folds"]

    /// A short fingerprint of views.sql, stored so that views are rebuilt only when they change.
    static var viewsFingerprint: String { SHA256.hex(of: Array(sql("views.sql").utf8)) }
}

extension Database {
    /// The file's `PRAGMA user_version`.
    public var schemaVersion: Int {
        get throws { Int(try scalarInt("PRAGMA user_version") ?? 0) }
    }

    /// Creates the schema in an empty file, migrates an older one forward,
    /// refuses a newer one, and installs the views of this binary.
    /// All of it runs in one immediate transaction, so that concurrent
    /// openers of a new file do not race.
    func prepareTrackSchema() throws {
        let current = Schema.currentVersion
        if isReadOnly {
            try checkReadable(current: current)
            return
        }
        // Fast path: up to date and views current, no write lock needed.
        if try schemaVersion == current, try viewsAreCurrent() { return }
        // A migration may rebuild a table that others reference (runs): with foreign keys off,
        // which cannot change inside a transaction, so that dropping the old table cascades nothing.
        try withoutForeignKeyChecks { try transaction {
            let version = try schemaVersion
            if version > current {
                throw StoreError("\(path) has schema version \(version), newer than this track (\(current)); upgrade track to open it. The file was not changed.")
            }
            if version == 0 {
                let tables = try scalarInt("SELECT count(*) FROM sqlite_master WHERE type = 'table'") ?? 0
                guard tables == 0 else {
                    throw StoreError("\(path) is an SQLite database but not a track store (it has tables and no track schema version); the file was not changed.")
                }
                try executeScript(Schema.sql("schema.sql"))
            } else if version < current {
                // Views and triggers name the tables a migration rebuilds: dropped here, and
                // views.sql installs this binary's below.
                var dropped: [String] = []
                try forEachRow("SELECT type, name FROM sqlite_master WHERE type IN ('view', 'trigger')") { row in
                    dropped.append("DROP \(row.string(0) == "view" ? "VIEW" : "TRIGGER") IF EXISTS \"\(row.string(1) ?? "")\";")
                }
                try executeScript(dropped.joined(separator: "\n"))
                for target in (version + 1)...current {
                    guard let script = Schema.migration(to: target) else {
                        throw StoreError("no migration from schema version \(target - 1) to \(target) in this build")
                    }
                    try executeScript(script)
                    try executeScript("PRAGMA user_version = \(target)")
                }
            }
            try installViews()
        }}
    }

    private func checkReadable(current: Int) throws {
        let version = try schemaVersion
        if version == 0 {
            throw StoreError("\(path) is not a track store (no schema); create one with `track init`.")
        }
        if version > current {
            throw StoreError("\(path) has schema version \(version), newer than this track (\(current)); upgrade track to read it.")
        }
        if version < current {
            throw StoreError("\(path) has schema version \(version), this track reads version \(current)", remedy: .migrate(path: path))
        }
    }

    private func viewsAreCurrent() throws -> Bool {
        try scalarText("SELECT value FROM track_meta WHERE key = 'views_sha256'") == Schema.viewsFingerprint
    }

    private func installViews() throws {
        try executeScript(Schema.sql("views.sql"))
        try execute("INSERT INTO track_meta(key, value) VALUES ('views_sha256', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [.text(Schema.viewsFingerprint)])
    }
}
