import Foundation
import TrackCalibration

/// A `track` database: opened (created, migrated) once, then used to start
/// runs, log to them and read them back.
///
///     let store = try RunStore(path: "track.sqlite")
///     let run = try store.startRun(RunMetadata(name: "llama-dpo-e1", model: "llama", method: "DPO"))
///     try run.append(batch)            // once per forward pass
///     try run.logMetric("loss", 0.41, step: 100)
///     try run.finish()
public final class RunStore {
    public let database: Database
    let questions = QuestionIndex()
    public let busyTimeout: Double

    /// Opens the store at `path`, creating and migrating it unless `readOnly`.
    /// A writable store also recomputes the summaries of stale runs (rows
    /// written with plain SQL, or a store just migrated from version 4),
    /// calling `progress(done, total, run)` as it goes.
    /// - Parameter busyTimeout: seconds to wait for another writer's lock.
    public init(path: String, readOnly: Bool = false, busyTimeout: Double = 10,
                progress: ((Int, Int, String) -> Void)? = nil) throws {
        self.busyTimeout = busyTimeout
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw StoreError("\(path) is a directory, not a track database", kind: .io)
        }
        if readOnly, !FileManager.default.fileExists(atPath: path) {
            throw StoreError("\(path) does not exist", kind: .notFound, remedy: .create(path: path))
        }
        do {
            if readOnly {
                // An older file is migrated forward first (when it can be written), then read.
                let probe = try Database(path: path, readOnly: true, busyTimeout: busyTimeout)
                let version = try probe.schemaVersion
                if version > 0, version < Schema.currentVersion, FileManager.default.isWritableFile(atPath: path) {
                    _ = try RunStore(path: path, busyTimeout: busyTimeout, progress: progress)
                }
            }
            // A store marked damaged by `track check` is looked at read-only, and refused before
            // anything (not even the header's change counter) is written into it.
            if !readOnly, let mark = try? String(contentsOfFile: Self.damageMarkPath(path), encoding: .utf8) {
                throw StoreError("\(path) failed its integrity check (\(mark.trimmingCharacters(in: .whitespacesAndNewlines))); nothing is written into a damaged store. Repair it (e.g. `sqlite3 \(path) .recover`) and check it again", remedy: .check(path: path))
            }
            if !readOnly, FileManager.default.fileExists(atPath: path),
               let probe = try? Database(path: path, readOnly: true, busyTimeout: busyTimeout), (try? probe.schemaVersion) ?? 0 > 0 {
                let read = Result { () throws(SQLiteError) -> String? in
                    try probe.scalarText("SELECT value FROM track_meta WHERE key = ?", [.text(Self.integrityMark)])
                }
                if case .failure(let error) = read, error.code == 11 || error.code == 26 {
                    // Its own bookkeeping cannot be read: damaged, whether or not a check could mark it.
                    throw StoreError("\(path) is damaged (\(error.message)); nothing is written into a damaged store", remedy: .check(path: path))
                }
                if case .success(let mark?) = read {
                    throw StoreError("\(path) failed its integrity check (\(mark)); nothing is written into a damaged store. Repair it (e.g. `sqlite3 \(path) .recover`) and check it again", remedy: .check(path: path))
                }
            }
            database = try Database(path: path, readOnly: readOnly, busyTimeout: busyTimeout)
            try database.prepareTrackSchema()
            if !readOnly, let mark = try? database.scalarText("SELECT value FROM track_meta WHERE key = ?", [.text(Self.integrityMark)]) {
                throw StoreError("\(path) failed its integrity check (\(mark)); nothing is written into a damaged store. Repair it (e.g. `sqlite3 \(path) .recover`) and check it again", remedy: .check(path: path))
            }
            // track keeps the summaries itself; the triggers are for other clients.
            database.triggersEnabled = false
            try refreshStaleSummaries(progress: progress)
        } catch let error as SQLiteError {
            throw RunStore.explain(error, path: path, busyTimeout: busyTimeout)
        }
    }

    /// Turns SQLite's terse errors about the file itself into messages for the user.
    public static func explain(_ error: SQLiteError, path: String, busyTimeout: Double) -> Error {
        if error.code == 11 { // SQLITE_CORRUPT
            return StoreError("\(path) is damaged (\(error.message)). Nothing was written", remedy: .check(path: path))
        }
        if error.isNotADatabase {
            return StoreError("\(path) is not a track database (\(error.message)); the file was left as it was")
        }
        if error.isBusy {
            return StoreError("\(path) is locked by another process (waited \(busyTimeout.formatted()) s)", remedy: .waitLonger)
        }
        if error.code == 14 { // SQLITE_CANTOPEN
            return StoreError("cannot open \(path): \(error.message)", kind: .io)
        }
        return error
    }

    /// Copies the write-ahead log back into the database and truncates it, when
    /// no other connection is using it (it never waits): after a large write,
    /// readers otherwise search a long log for every page they read.
    public func checkpoint() {
        guard !database.isReadOnly, !database.isInTransaction else { return }
        database.setBusyTimeout(0)
        defer { database.setBusyTimeout(busyTimeout) }
        try? database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    // MARK: - Runs

    /// Creates the run row (status `running`) with its params and tags, in
    /// the current transaction if there is one. Returns the run id.
    func insertRun(_ metadata: RunMetadata, status: RunStatus = .running) throws -> Int64 {
        if metadata.name.isEmpty { throw ValidationError("a run needs a name") }
        var experimentID: Int64?
        if let experiment = metadata.experiment {
            try database.execute("INSERT INTO experiments(name) VALUES (?) ON CONFLICT(name) DO NOTHING",
                                 [.text(experiment)])
            experimentID = try database.scalarInt("SELECT experiment_id FROM experiments WHERE name = ?",
                                                  [.text(experiment)])
        }
        if let existing = try database.scalarText("SELECT status FROM runs WHERE name = ?", [.text(metadata.name)]) {
            throw ValidationError("a run named '\(metadata.name)' already exists (\(existing))", kind: .conflict, remedy: .rename)
        }
        try database.execute("""
            INSERT INTO runs(uuid, name, experiment_id, model, method, dataset, split, step, epoch,
                             extraction, parent_run_id, status, source_file, source_sha256, source_format, started_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, coalesce(?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))
            """, [
                .text(UUID().uuidString.lowercased()), .text(metadata.name),
                experimentID.map(SQLValue.integer) ?? .null,
                .optionalText(metadata.model), .optionalText(metadata.method),
                .optionalText(metadata.dataset), .optionalText(metadata.split),
                metadata.step.map { .integer(Int64($0)) } ?? .null,
                metadata.epoch.map(SQLValue.real) ?? .null,
                .optionalText(metadata.extraction),
                metadata.parentRunID.map(SQLValue.integer) ?? .null,
                .text(status.rawValue),
                .optionalText(metadata.sourceFile), .optionalText(metadata.sourceSHA256),
                .optionalText(metadata.sourceFormat), .optionalText(metadata.startedAt),
            ])
        let runID = database.lastInsertRowID
        for (key, value) in metadata.params.sorted(by: { $0.key < $1.key }) {
            try database.execute("INSERT INTO params(run_id, key, value) VALUES (?, ?, ?)",
                                 [.integer(runID), .text(key), .text(value)])
        }
        for (key, value) in metadata.tags.sorted(by: { $0.key < $1.key }) {
            try database.execute("INSERT INTO tags(run_id, key, value) VALUES (?, ?, ?)",
                                 [.integer(runID), .text(key), .text(value)])
        }
        return runID
    }

    func setStatus(runID: Int64, _ status: RunStatus) throws {
        try database.execute("""
            UPDATE runs SET status = ?,
                   finished_at = CASE WHEN ? = 'running' THEN NULL ELSE strftime('%Y-%m-%dT%H:%M:%fZ', 'now') END
            WHERE run_id = ?
            """, [.text(status.rawValue), .text(status.rawValue), .integer(runID)])
    }

    /// Logs a scalar value; `unlessLogged`: not when the run already holds this key, step and value
    /// (a continued stream that sends its history again).
    func insertMetric(runID: Int64, key: String, value: Double, step: Int, timestamp: Date, unlessLogged: Bool = false) throws {
        guard value.isFinite else { throw ValidationError("metric '\(key)' is not finite (\(value))") }
        let values: [SQLValue] = [.integer(runID), .text(key), .real(value), .integer(Int64(step)),
                                  .integer(Int64((timestamp.timeIntervalSince1970 * 1000).rounded()))]
        if unlessLogged {
            try database.execute("""
                INSERT INTO metrics(run_id, key, value, step, timestamp) SELECT ?1, ?2, ?3, ?4, ?5
                WHERE NOT EXISTS (SELECT 1 FROM metrics WHERE run_id = ?1 AND key = ?2 AND step = ?4 AND value = ?3)
                """, values)
        } else {
            try database.execute("INSERT INTO metrics(run_id, key, value, step, timestamp) VALUES (?, ?, ?, ?, ?)", values)
        }
    }

    func insertPair(runID: Int64, _ pair: PreferencePair) throws {
        do {
            try database.execute(
                "INSERT INTO preference_pairs(run_id, prompt_id, chosen_logprob, rejected_logprob, chosen_tokens, rejected_tokens) VALUES (?, ?, ?, ?, ?, ?)",
                [.integer(runID), .text(pair.promptID), .real(pair.chosenLogProb), .real(pair.rejectedLogProb),
                 pair.chosenTokens.map { .integer(Int64($0)) } ?? .null, pair.rejectedTokens.map { .integer(Int64($0)) } ?? .null])
        } catch {
            if error.isPrimaryKeyViolation { throw ValidationError("pair '\(pair.promptID)' appears twice in this run") }
            throw error
        }
    }

    func insertJudgment(runID: Int64, promptID: String, opponent: String, verdict: String) throws {
        do {
            try database.execute("INSERT INTO judgments(run_id, prompt_id, opponent, verdict) VALUES (?, ?, ?, ?)",
                                 [.integer(runID), .text(promptID), .text(opponent), .text(verdict)])
        } catch {
            if error.isPrimaryKeyViolation { throw ValidationError("judgment '\(promptID)' against '\(opponent)' appears twice in this run") }
            throw error
        }
    }

    /// Starts a run that is logged to batch by batch, committing in short
    /// transactions (see `RunLogger`). With `append`, an existing run of that
    /// name is continued instead of refused.
    /// With `append`, an existing run of that name is continued (metric rows it already holds are
    /// not logged twice); with `replace`, it is deleted with everything it owns and started over,
    /// in the transaction that starts the new one.
    public func startRun(_ metadata: RunMetadata, validation: ValidationOptions = ValidationOptions(),
                         append: Bool = false, replace: Bool = false) throws -> RunLogger {
        var continued = false
        let runID: Int64 = try database.transaction {
            if append || replace, let existing = try database.scalarInt("SELECT run_id FROM runs WHERE name = ?",
                                                                        [.text(metadata.name)]) {
                if replace {
                    try deleteRun(existing)
                } else {
                    try setStatus(runID: existing, .running)
                    continued = true
                    return existing
                }
            }
            return try insertRun(metadata)
        }
        let logger = try RunLogger(store: self, runID: runID, name: metadata.name,
                                   defaultDataset: metadata.dataset ?? "", validation: validation)
        logger.skipsLoggedMetrics = continued
        return logger
    }


    /// Deletes runs with everything they own. Explicit rather than by cascade,
    /// so that it holds while bulk ingest runs with foreign keys off.
    func deleteRuns(withSourceSHA256 sha: String) throws {
        var ids: [Int64] = []
        try database.forEachRow("SELECT run_id FROM runs WHERE source_sha256 = ?", [.text(sha)]) { ids.append($0.int64(0)) }
        for id in ids { try deleteRun(id) }
    }

    func deleteRun(_ runID: Int64) throws {
        for table in Schema.runOwnedTables {
            try database.execute("DELETE FROM \(table) WHERE run_id = ?", [.integer(runID)])
        }
        try database.execute("DELETE FROM _track_stale_runs WHERE run_id = ?", [.integer(runID)])
        try database.execute("UPDATE runs SET parent_run_id = NULL WHERE parent_run_id = ?", [.integer(runID)])
        try database.execute("DELETE FROM runs WHERE run_id = ?", [.integer(runID)])
    }
}

extension SQLValue {
    static func optionalText(_ value: String?) -> SQLValue { value.map(SQLValue.text) ?? .null }
}

extension RunStore {
    /// Writes a whole run — its row, every prediction, its summaries, status
    /// `finished` — in one transaction: it appears whole or not at all (a
    /// derived run, say, even if the process is killed while writing). With
    /// `replace`, a run of that name is replaced in the same transaction; `also` writes what
    /// belongs with the run (given its id) in that transaction too.
    @discardableResult
    public func writeRun(_ metadata: RunMetadata, predictions: [Prediction], replace: Bool = false,
                         also: ((Int64) throws -> Void)? = nil) throws -> Int64 {
        let checked = try predictions.map { prediction throws -> CheckedPrediction in
            do throws(ValidationError) {
                return try PredictionWriter.checked(prediction, validation: ValidationOptions())
            } catch {
                throw ValidationError("question '\(prediction.questionID)': \(error.reason)")
            }
        }
        do {
            let id: Int64 = try database.transaction {
                if let existing = try runID(named: metadata.name) {
                    guard replace else { throw ValidationError("a run named '\(metadata.name)' already exists", kind: .conflict, remedy: .replace) }
                    try deleteRun(existing)
                }
                try questions.begin(database)
                let id = try insertRun(metadata)
                let writer = try PredictionWriter(database: database, runID: id, defaultDataset: metadata.dataset ?? "",
                                                  validation: ValidationOptions(), questions: questions)
                for prediction in checked {
                    do {
                        try writer.write(prediction)
                    } catch let error as ValidationError {
                        throw ValidationError("question '\(prediction.questionID)': \(error.reason)")
                    }
                }
                try writer.flush()
                try also?(id)
                try setStatus(runID: id, .finished)
                return id
            }
            questions.commit()
            return id
        } catch {
            questions.rollback()
            throw error
        }
    }
}

extension RunStore: RunWriting {
    public var sql: any SQLQuerying { database }
    public var displayName: String { database.path }
    public var schemaVersion: Int { get throws { try database.schemaVersion } }

    public func writeRun(_ metadata: RunMetadata, predictions: [Prediction], replace: Bool, folds: [FoldMembership]) throws -> Int64 {
        try writeRun(metadata, predictions: predictions, replace: replace) { runID in
            if !folds.isEmpty { try self.writeCalibrationFolds(runID: runID, folds) }
        }
    }
}

extension RunStore {
    /// Every row of `sql` as space-joined text; an error becomes one row saying so.
    static func textRows(_ database: Database, _ sql: String) -> [String] {
        var out: [String] = []
        do {
            let statement = try database.makeStatement(sql)
            while try statement.step() {
                out.append((0..<statement.columnCount).map { statement.string($0) ?? "NULL" }.joined(separator: " "))
            }
        } catch {
            out.append("\(error)")
        }
        return out
    }
}

/// What `track check` found in a store.
public struct IntegrityReport: Sendable {
    /// Damage: writers refuse the store until a check passes.
    public var problems: [String] = []
    /// Stored values no input could have given (plain-SQL writes): the runs holding them cannot
    /// be analysed until corrected, but the store is sound and stays writable (to correct them).
    public var invalidValues: [String] = []
    public var isHealthy: Bool { problems.isEmpty }
    public var isClean: Bool { problems.isEmpty && invalidValues.isEmpty }
}

extension RunStore {
    /// The `track_meta` key that marks a store that failed its check: writers refuse it.
    static let integrityMark = "integrity_failed"

    /// The file beside a store that says it failed its check (kept even when the store cannot take the mark).
    static func damageMarkPath(_ path: String) -> String { path + "-damaged" }

    /// Checks a store: SQLite's `integrity_check`, foreign keys, and that each
    /// run's stored summary counts the questions its rows hold. A store that
    /// fails is marked, and writing commands refuse it until a later check
    /// passes (which clears the mark).
    public static func check(path: String, busyTimeout: Double = 10) throws -> IntegrityReport {
        var report = IntegrityReport()
        // An empty file is no store (opening it would make it a database); nothing is written into it.
        if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size == 0 {
            report.problems.append("an empty file, not a track store (nothing was written into it)")
            return report
        }
        let opened = Result { () throws(SQLiteError) -> Database in try Database(path: path, create: false, busyTimeout: busyTimeout) }
        guard case .success(let database) = opened else {
            if case .failure(let error) = opened { report.problems.append("cannot open: \(error.message)") }
            return report
        }
        let rows = { (sql: String) -> [String] in Self.textRows(database, sql) }
        if (try? database.schemaVersion) ?? 0 == 0 {
            report.problems.append("not a track store (no track schema version: an SQLite file of another program?)")
            return report
        }
        let integrity = rows("PRAGMA integrity_check(100)").flatMap { $0.split(separator: "\n").map(String.init) }
        if integrity != ["ok"] { report.problems += integrity.filter { !$0.hasPrefix("***") }.map { "integrity: \($0)" } }
        report.problems += rows("PRAGMA foreign_key_check").prefix(100).map { "foreign key: \($0)" }
        if report.problems.isEmpty, (try? database.schemaVersion) ?? 0 >= 5 {
            report.problems += rows("""
                SELECT 'run ' || r.name || ': summary counts ' || COALESCE(s.n, 0) || ' questions, its rows ' || COALESCE(t.n, 0)
                FROM runs r LEFT JOIN _track_run_stats s USING (run_id)
                LEFT JOIN (SELECT run_id, count(*) AS n FROM _track_top_labels GROUP BY run_id) t USING (run_id)
                WHERE COALESCE(s.n, 0) != COALESCE(t.n, 0)
                  AND r.run_id NOT IN (SELECT run_id FROM _track_stale_runs) AND NOT EXISTS (SELECT 1 FROM _track_stale_runs WHERE run_id = 0)
                """).map { "summary: \($0)" }
        }
        if report.problems.isEmpty {
            report.invalidValues = rows("""
                SELECT 'run ' || r.name || ': question ' || o.question_id || ' option ' || o.option || ' holds '
                       || CASE WHEN typeof(o.prob) NOT IN ('real', 'integer') OR o.prob < 0 OR o.prob > 1
                               THEN 'probability ' || quote(o.prob) ELSE 'score ' || quote(o.score) END
                FROM option_scores o JOIN runs r USING (run_id)
                WHERE typeof(o.prob) NOT IN ('real', 'integer') OR o.prob < 0 OR o.prob > 1
                   OR (o.score IS NOT NULL AND (typeof(o.score) NOT IN ('real', 'integer')
                       OR o.score > 1.7976931348623157e308 OR o.score < -1.7976931348623157e308))
                LIMIT 100
                """).map { "value: \($0)" }
        }
        // Mark (or clear the mark): in the store, and beside it (`<store>-damaged`), since damage
        // may keep the store itself from taking the mark.
        let sidecar = damageMarkPath(path)
        if report.isHealthy {
            try? database.execute("DELETE FROM track_meta WHERE key = ?", [.text(integrityMark)])
            try? FileManager.default.removeItem(atPath: sidecar)
        } else {
            let summary = "\(report.problems.count) problem(s), first: \(report.problems[0].prefix(120))"
            try? database.execute("INSERT OR REPLACE INTO track_meta(key, value) VALUES (?, ?)", [.text(integrityMark), .text(summary)])
            _ = FileManager.default.createFile(atPath: sidecar, contents: Data((summary + "\n").utf8))
        }
        return report
    }
}

/// A question's place in a recalibration split (`calibration_folds`), by its identity.
public struct FoldMembership: Sendable {
    public var dataset: String
    public var externalID: String
    public var subject: String?
    public var label: Int
    public var optionCount: Int
    public var fold: Int

    public init(dataset: String, externalID: String, subject: String?, label: Int, optionCount: Int, fold: Int) {
        self.dataset = dataset
        self.externalID = externalID
        self.subject = subject
        self.label = label
        self.optionCount = optionCount
        self.fold = fold
    }
}

extension RunStore {
    /// Records the folds of a derived run's split (inside the transaction that writes it, e.g.
    /// `writeRun(…, also:)`): each question resolved by its identity as a writer resolves it, so
    /// that a question this file does not hold yet (a PostgreSQL store's local copy) is added too.
    public func writeCalibrationFolds(runID: Int64, _ rows: [FoldMembership]) throws {
        var resolved: [(Int64, Int)] = []
        resolved.reserveCapacity(rows.count)
        for row in rows {
            let id = try questions.resolve(database, dataset: row.dataset, externalID: row.externalID, subject: row.subject,
                                           optionCount: row.optionCount, label: row.label)
            resolved.append((id, row.fold))
        }
        try questions.flush(database)
        let insert = ChunkedInsert(database: database, prefix: "INSERT INTO calibration_folds(run_id, question_id, fold)", columns: 3)
        try insert.insert(count: resolved.count) { index, statement, first in
            statement.bind(runID, at: first)
            statement.bind(resolved[index].0, at: first + 1)
            statement.bind(Int64(resolved[index].1), at: first + 2)
        }
    }
}
