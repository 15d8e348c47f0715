import Foundation
import TrackCalibration

/// What every analysis reads from a store — a SQLite file (`RunStore`) or a PostgreSQL server
/// (`PostgresStore`): runs and their metadata by filter, the stored per-bin totals, logged
/// metrics, and option-row scans by run (and question range). The queries are written once,
/// over `sql` (`SQLQuerying`, whose adapter speaks its dialect); a store implements only what
/// its engine does differently: the scan of a run's rows, and a second connection for reading
/// a large run in parallel.
public protocol RunReading: AnyObject {
    /// The connection the shared queries run on.
    var sql: any SQLQuerying { get }
    /// The store as messages name it (a path, or a URI without its password).
    var displayName: String { get }
    /// The smallest and largest question id of a run's option rows (nil for an empty run),
    /// so that a caller can split the run into ranges read on separate connections.
    func questionIDRange(runID: Int64) throws -> ClosedRange<Int64>?
    /// A run's questions in chunks of consecutive questions, in id order, each checked as input
    /// is (`QuestionChunk.closeQuestion`); `emit` returns false to stop early.
    func scanRun(id runID: Int64, name: String, details: Bool, questions range: ClosedRange<Int64>?,
                 chunkSize: Int, emit: (QuestionChunk) throws -> Bool) throws
    /// Another connection to the same store, for a second reader thread.
    func parallelReader() throws -> any RunReading
    /// The version of track's schema the store holds (created or migrated when it was opened).
    var schemaVersion: Int { get throws }
}

/// What analyses write back: derived runs, EM targets and export records, each in one
/// transaction, with the same checks and guarantees on both stores.
public protocol RunWriting: RunReading {
    /// Writes a whole run in one transaction (replacing a run of that name when `replace`),
    /// with `folds` (calibration membership) recorded for it; returns its id.
    @discardableResult
    func writeRun(_ metadata: RunMetadata, predictions: [Prediction], replace: Bool, folds: [FoldMembership]) throws -> Int64
    /// Replaces the EM targets stored for a run, and records the settings in its params.
    func storeEMTargets(runID: Int64, questionIDs: [Int64], offsets: [Int], bins: [Int], targets: [Double],
                        settings: [String: String]) throws
    /// Records a written figure or table with the SHA-256 of it and of its data file.
    @discardableResult
    func recordExport(_ record: ExportRecord) throws -> Int64
    /// Runs a user's SQL script: read-only unless `write` (then in one transaction); `timeout`
    /// bounds it (seconds). Errors are explained by `AdHocSQL.explain`.
    func adHocSQL(_ script: String, write: Bool, timeout: Double?) throws -> [QueryResult]
    /// Merges a SQLite shard in one transaction: runs keyed by uuid (one already here skipped),
    /// questions by identity (a contradiction refuses the shard), clashing names renamed.
    func merge(shard path: String) throws -> MergeReport
}

/// Ad-hoc SQL's failures as a user reads them, on either store.
public enum AdHocSQL {
    /// The message for `error` of `track sql`, with what to do about it.
    public static func explain(_ error: any Error, write: Bool, timeout: Double?) -> String {
        let unchanged = write ? "; nothing was changed" : ""
        if let error = error as? PostgresError {
            let hint = error.sqlState == "25006" ? " (pass --write to modify the store)" : error.sqlState == "57014" ? " (it ran longer than --timeout)" : ""
            return error.message + hint + unchanged
        }
        if let error = error as? SQLiteError {
            if error.code == 9 { // SQLITE_INTERRUPT
                return "the query ran longer than --timeout \(timeout ?? 0) s and was stopped; nothing was changed"
            }
            let readOnlyFile = error.message.contains("readonly") || error.message.contains("read-only")
            return error.message + (readOnlyFile ? (write ? " (the file or its folder is not writable)" : " (pass --write to modify the store)") : "") + unchanged
        }
        if let error = error as? any TrackFailure {
            return error.message + (write ? "" : " (pass --write to modify it)")
        }
        return "\(error)"
    }
}

extension SQLQuerying {
    public func eachRow(_ sql: String, _ body: (any SQLRow) throws -> Void) throws {
        try eachRow(sql, [], body)
    }
}

extension RunReading {
    public func scanRun(id runID: Int64, name: String, details: Bool, questions range: ClosedRange<Int64>? = nil,
                        emit: (QuestionChunk) throws -> Bool) throws {
        try scanRun(id: runID, name: name, details: details, questions: range, chunkSize: 8192, emit: emit)
    }

    /// Reads a run's option rows in key order (one scan) with its questions' labels; with
    /// `details`, also their subjects, categories, datasets and external ids.
    public func loadRun(named name: String, details: Bool = false) throws -> LoadedRun {
        try loadRun(id: requireRun(name), name: name, details: details)
    }

    public func loadRun(id runID: Int64, name: String, details: Bool = false) throws -> LoadedRun {
        var run = LoadedRun(id: runID, name: name, predictions: PredictionSet())
        try scanRun(id: runID, name: name, details: details) { chunk in
            chunk.forEach { id, label, p, s in run.predictions.append(id: id, label: label, probabilities: p, scores: s) }
            run.subjects += chunk.subjects
            run.categories += chunk.categories
            run.datasets += chunk.datasets
            run.externalIDs += chunk.externalIDs
            return true
        }
        return run
    }

    /// Calls `body` with each question of the run (in `range`, all by default) in id order:
    /// its id, label, probability row and raw scores (nil unless every question of the
    /// chunk had them). One scan; the rows are valid only during the call.
    public func forEachQuestion(runID: Int64, name: String, in range: ClosedRange<Int64>? = nil,
                                _ body: (Int64, Int, UnsafeBufferPointer<Double>, UnsafeBufferPointer<Double>?) -> Void) throws {
        try scanRun(id: runID, name: name, details: false, questions: range) { chunk in
            chunk.forEach(body)
            return true
        }
    }

    /// The id of the run with this name, or nil.
    public func runID(named name: String) throws -> Int64? {
        try sql.firstInt("SELECT run_id FROM runs WHERE name = ?", [.text(name)])
    }

    /// The id of the run named `name`; an error of kind `notFound` when there is none.
    public func requireRun(_ name: String) throws -> Int64 {
        guard let runID = try runID(named: name) else { throw unknownRun(name) }
        return runID
    }

    /// Runs whose source file had this SHA-256.
    public func runs(withSourceSHA256 sha: String) throws -> [String] {
        var names: [String] = []
        try sql.eachRow("SELECT name FROM runs WHERE source_sha256 = ? ORDER BY run_id", [.text(sha)]) {
            names.append($0.string(0) ?? "")
        }
        return names
    }

    /// A value of the store's own metadata table (e.g. whether it is a demo store).
    public func metaValue(_ key: String) throws -> String? {
        try sql.firstText("SELECT value FROM track_meta WHERE key = ?", [.text(key)])
    }

    /// The EM targets stored for a run: per question id, its bin and targets in option order.
    public func emTargets(runID: Int64) throws -> [Int64: (bin: Int, targets: [Double])] {
        var result: [Int64: (bin: Int, targets: [Double])] = [:]
        try sql.eachRow("SELECT question_id, bin, target FROM em_targets WHERE run_id = ? ORDER BY question_id, option",
                        [.integer(runID)]) { row in
            result[row.int64(0), default: (row.int(1), [])].targets.append(row.double(2))
        }
        return result
    }
}
