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
    let busyTimeout: Double

    /// Opens the store at `path`, creating and migrating it unless `readOnly`.
    /// A writable store also recomputes the summaries of stale runs (rows
    /// written with plain SQL, or a store just migrated from version 4),
    /// calling `progress(done, total, run)` as it goes.
    /// - Parameter busyTimeout: seconds to wait for another writer's lock.
    public init(path: String, readOnly: Bool = false, busyTimeout: Double = 10,
                progress: ((Int, Int, String) -> Void)? = nil) throws {
        self.busyTimeout = busyTimeout
        if readOnly, !FileManager.default.fileExists(atPath: path) {
            throw StoreError("\(path) does not exist; create a store with `track init --db \(path)`")
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
            database = try Database(path: path, readOnly: readOnly, busyTimeout: busyTimeout)
            try database.prepareTrackSchema()
            // track keeps the summaries itself; the triggers are for other clients.
            database.triggersEnabled = false
            try refreshStaleSummaries(progress: progress)
        } catch let error as SQLiteError {
            throw RunStore.explain(error, path: path, busyTimeout: busyTimeout)
        }
    }

    /// Turns SQLite's terse errors about the file itself into messages for the user.
    public static func explain(_ error: SQLiteError, path: String, busyTimeout: Double) -> Error {
        if error.isNotADatabase {
            return StoreError("\(path) is not a track database (\(error.message)); the file was left as it was")
        }
        if error.isBusy {
            return StoreError("\(path) is locked by another process (waited \(busyTimeout.formatted()) s); try again, or wait longer with --busy-timeout")
        }
        if error.code == 14 { // SQLITE_CANTOPEN
            return StoreError("cannot open \(path): \(error.message)")
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
    func insertRun(_ metadata: RunMetadata, status: String = "running") throws -> Int64 {
        if metadata.name.isEmpty { throw ValidationError("a run needs a name") }
        var experimentID: Int64?
        if let experiment = metadata.experiment {
            try database.execute("INSERT INTO experiments(name) VALUES (?) ON CONFLICT(name) DO NOTHING",
                                 [.text(experiment)])
            experimentID = try database.scalarInt("SELECT experiment_id FROM experiments WHERE name = ?",
                                                  [.text(experiment)])
        }
        if let existing = try database.scalarText("SELECT status FROM runs WHERE name = ?", [.text(metadata.name)]) {
            throw ValidationError("a run named '\(metadata.name)' already exists (\(existing)); choose another --run name")
        }
        try database.execute("""
            INSERT INTO runs(uuid, name, experiment_id, model, method, dataset, split, step, epoch,
                             extraction, parent_run_id, status, source_file, source_sha256, source_format)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [
                .text(UUID().uuidString.lowercased()), .text(metadata.name),
                experimentID.map(SQLValue.integer) ?? .null,
                .optionalText(metadata.model), .optionalText(metadata.method),
                .optionalText(metadata.dataset), .optionalText(metadata.split),
                metadata.step.map { .integer(Int64($0)) } ?? .null,
                metadata.epoch.map(SQLValue.real) ?? .null,
                .optionalText(metadata.extraction),
                metadata.parentRunID.map(SQLValue.integer) ?? .null,
                .text(status),
                .optionalText(metadata.sourceFile), .optionalText(metadata.sourceSHA256),
                .optionalText(metadata.sourceFormat),
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

    func setStatus(runID: Int64, _ status: String) throws {
        try database.execute("""
            UPDATE runs SET status = ?,
                   finished_at = CASE WHEN ? = 'running' THEN NULL ELSE strftime('%Y-%m-%dT%H:%M:%fZ', 'now') END
            WHERE run_id = ?
            """, [.text(status), .text(status), .integer(runID)])
    }

    func insertMetric(runID: Int64, key: String, value: Double, step: Int, timestamp: Date) throws {
        guard value.isFinite else { throw ValidationError("metric '\(key)' is not finite (\(value))") }
        try database.execute("INSERT INTO metrics(run_id, key, value, step, timestamp) VALUES (?, ?, ?, ?, ?)",
                             [.integer(runID), .text(key), .real(value), .integer(Int64(step)),
                              .integer(Int64((timestamp.timeIntervalSince1970 * 1000).rounded()))])
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
    public func startRun(_ metadata: RunMetadata, validation: ValidationOptions = ValidationOptions(),
                         append: Bool = false) throws -> RunLogger {
        let runID: Int64 = try database.transaction {
            if append, let existing = try database.scalarInt("SELECT run_id FROM runs WHERE name = ?",
                                                             [.text(metadata.name)]) {
                try setStatus(runID: existing, "running")
                return existing
            }
            return try insertRun(metadata)
        }
        return try RunLogger(store: self, runID: runID, name: metadata.name,
                         defaultDataset: metadata.dataset ?? "", validation: validation)
    }

    /// The id of the run with this name, or nil.
    public func runID(named name: String) throws -> Int64? {
        try database.scalarInt("SELECT run_id FROM runs WHERE name = ?", [.text(name)])
    }

    /// Runs whose source file had this SHA-256.
    public func runs(withSourceSHA256 sha: String) throws -> [String] {
        var names: [String] = []
        try database.forEachRow("SELECT name FROM runs WHERE source_sha256 = ? ORDER BY run_id", [.text(sha)]) {
            names.append($0.string(0) ?? "")
        }
        return names
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
        try database.execute("DELETE FROM stale_runs WHERE run_id = ?", [.integer(runID)])
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
    /// `replace`, a run of that name is replaced in the same transaction.
    @discardableResult
    public func writeRun(_ metadata: RunMetadata, predictions: [Prediction], replace: Bool = false) throws -> Int64 {
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
                    guard replace else {
                        throw ValidationError("a run named '\(metadata.name)' already exists; pass --replace to replace it")
                    }
                    try deleteRun(existing)
                }
                try questions.begin(database)
                let id = try insertRun(metadata, status: "finished")
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
                try database.execute("UPDATE runs SET finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE run_id = ?", [.integer(id)])
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
