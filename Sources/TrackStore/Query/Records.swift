import Foundation
import TrackCalibration

/// Where a run came from and what it is derived from, as `show` and reports print it.
public struct RunDetail: Sendable, Equatable {
    public var uuid: String?
    public var experiment: String?
    public var startedAt: String?
    public var finishedAt: String?
    public var sourceFile: String?
    public var sourceSHA256: String?
    public var sourceFormat: String?
    public var parent: String?
}

/// A scalar metric logged during a run (e.g. `train/loss`): how often, and its latest value.
public struct LoggedMetricSummary: Sendable, Equatable {
    public var key: String
    public var count: Int
    public var lastStep: Int?
    public var lastValue: Double?
}

/// One logged value of a scalar metric.
public struct LoggedPoint: Sendable, Equatable {
    public var step: Int
    public var value: Double
}

extension RunReading {
    public func runDetail(runID: Int64) throws -> RunDetail {
        var detail = RunDetail()
        try sql.eachRow("""
            SELECT r.uuid, e.name AS experiment, r.started_at, r.finished_at, r.source_file, r.source_sha256,
                   r.source_format, p.name AS parent
            FROM runs r LEFT JOIN experiments e USING (experiment_id) LEFT JOIN runs p ON p.run_id = r.parent_run_id
            WHERE r.run_id = ?
            """, [.integer(runID)]) { row in
            detail = RunDetail(uuid: row.string("uuid"), experiment: row.string("experiment"), startedAt: row.string("started_at"),
                               finishedAt: row.string("finished_at"), sourceFile: row.string("source_file"),
                               sourceSHA256: row.string("source_sha256"), sourceFormat: row.string("source_format"),
                               parent: row.string("parent"))
        }
        return detail
    }

    /// Each scalar metric key of the run with its count and latest value (by step, then time).
    public func loggedMetrics(runID: Int64) throws -> [LoggedMetricSummary] {
        var result: [LoggedMetricSummary] = []
        try sql.eachRow("""
            SELECT key, COUNT(*) AS n, MAX(step) AS last_step,
                   (SELECT value FROM metrics m2 WHERE m2.run_id = ?1 AND m2.key = m.key
                     ORDER BY step DESC, timestamp DESC LIMIT 1) AS last_value
            FROM metrics m WHERE run_id = ?1 GROUP BY key ORDER BY key
            """, [.integer(runID)]) { row in
            result.append(LoggedMetricSummary(key: row.string("key") ?? "", count: row.int("n"),
                                              lastStep: row.optionalInt64("last_step").map(Int.init),
                                              lastValue: row.optionalDouble("last_value")))
        }
        return result
    }

    /// The values of one logged metric in step order (the latest value of a repeated step).
    public func loggedSeries(runID: Int64, key: String) throws -> [LoggedPoint] {
        var points: [Int: Double] = [:]
        try sql.eachRow("SELECT step, value FROM metrics WHERE run_id = ? AND key = ? ORDER BY step, timestamp",
                                [.integer(runID), .text(key)]) { row in
            points[row.int("step")] = row.double("value")
        }
        return points.keys.sorted().map { LoggedPoint(step: $0, value: points[$0]!) }
    }

    /// The run's preference pairs, in the order logged.
    public func preferencePairs(runID: Int64) throws -> [PreferencePair] {
        var pairs: [PreferencePair] = []
        try sql.eachRow("""
            SELECT prompt_id, chosen_logprob, rejected_logprob, chosen_tokens, rejected_tokens
            FROM preference_pairs WHERE run_id = ?
            """, [.integer(runID)]) { row in
            pairs.append(PreferencePair(promptID: row.string("prompt_id") ?? "", chosenLogProb: row.double("chosen_logprob"),
                                        rejectedLogProb: row.double("rejected_logprob"),
                                        chosenTokens: row.optionalInt64("chosen_tokens").map(Int.init),
                                        rejectedTokens: row.optionalInt64("rejected_tokens").map(Int.init)))
        }
        return pairs
    }

    /// Whether the run logged any preference pair (without reading them).
    public func hasPreferencePairs(runID: Int64) throws -> Bool {
        try sql.firstInt("SELECT EXISTS (SELECT 1 FROM preference_pairs WHERE run_id = ?)", [.integer(runID)]) == 1
    }

    /// The verdicts ("A", "B", "tie") of the run's judged comparisons against `opponent`.
    public func verdicts(runID: Int64, opponent: String) throws -> [String] {
        var verdicts: [String] = []
        try sql.eachRow("SELECT verdict FROM judgments WHERE run_id = ? AND opponent = ?",
                                [.integer(runID), .text(opponent)]) { verdicts.append($0.string("verdict") ?? "") }
        return verdicts
    }

    /// The opponents the run was judged against, by name.
    public func opponents(runID: Int64) throws -> [String] {
        var names: [String] = []
        try sql.eachRow("SELECT DISTINCT opponent FROM judgments WHERE run_id = ? ORDER BY opponent",
                                [.integer(runID)]) { if let name = $0.string("opponent") { names.append(name) } }
        return names
    }

}

extension RunStore {
    public func setMetaValue(_ key: String, _ value: String) throws {
        try database.execute("INSERT INTO track_meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                             [.text(key), .text(value)])
    }

    /// Folds the write-ahead log into the file and empties it, waiting for readers (a finished build).
    public func truncateLog() throws {
        try database.executeScript("PRAGMA wal_checkpoint(TRUNCATE)")
    }
}

extension RunStore {
    /// Runs a user's SQL script under the ad-hoc restrictions (`Database.restrictForAdHocSQL`).
    /// Read-only unless `write`, which runs every statement in one transaction. Plain SQL
    /// fires the triggers that keep the stored summaries honest; the summaries of the runs it
    /// touched are recomputed afterwards.
    public func adHocSQL(_ script: String, write: Bool, timeout: Double?) throws -> [QueryResult] {
        database.restrictForAdHocSQL(timeout: timeout)
        database.triggersEnabled = true
        defer { database.triggersEnabled = false }
        if !write { return try database.runScript(script, refuseWrites: true) }
        let results = try database.transaction { try database.runScript(script, refuseWrites: false) }
        database.triggersEnabled = false
        try refreshStaleSummaries()
        return results
    }
}

// MARK: - Run management

extension RunStore {
    /// Deletes runs with all they own, in one transaction. A run that other runs derive from
    /// (e.g. its `+TS` run) is refused unless `recursive`, which deletes those too, and theirs.
    /// Returns the names deleted.
    public func deleteRuns(named names: [String], recursive: Bool) throws -> [String] {
        try database.transaction {
            var deleted: [String] = [], seen: Set<Int64> = []
            for name in names {
                guard let id = try runID(named: name) else {
                    if deleted.contains(name) { continue }
                    throw unknownRun(name, "nothing was deleted")
                }
                // The run and every run derived from it, walked breadth first without recursion: a
                // chain of any length, or a cycle of parents written by plain SQL, ends.
                var family: [(Int64, String)] = [], frontier: [(Int64, String)] = []
                if seen.insert(id).inserted { family.append((id, name)); frontier.append((id, name)) }
                while !frontier.isEmpty {
                    var next: [(Int64, String)] = []
                    for (parent, parentName) in frontier {
                        var children: [(Int64, String)] = []
                        try database.forEachRow("SELECT run_id, name FROM runs WHERE parent_run_id = ? ORDER BY run_id", [.integer(parent)]) {
                            children.append(($0.int64("run_id"), $0.string("name") ?? ""))
                        }
                        if !children.isEmpty, !recursive {
                            throw StoreError("run '\(parentName)' has derived runs (\(children.prefix(5).map { "'\($0.1)'" }.joined(separator: ", "))\(children.count > 5 ? ", …" : "")); nothing was deleted",
                                             kind: .conflict, remedy: .recursive)
                        }
                        for child in children where seen.insert(child.0).inserted { next.append(child) }
                    }
                    family += next
                    frontier = next
                }
                for (runID, runName) in family.reversed() {
                    try deleteRun(runID)
                    deleted.append(runName)
                }
            }
            return deleted
        }
    }

    /// Renames a run; the new name must be free.
    public func renameRun(_ old: String, to new: String) throws {
        guard !new.isEmpty else { throw StoreError("a run needs a name", kind: .usage) }
        try database.transaction {
            guard let id = try runID(named: old) else { throw unknownRun(old) }
            if try runID(named: new) != nil { throw StoreError("a run named '\(new)' already exists", kind: .conflict) }
            try database.execute("UPDATE runs SET name = ? WHERE run_id = ?", [.text(new), .integer(id)])
        }
    }

    /// Sets tags (`key = value`, replacing a key's value) and removes others, in one transaction.
    public func tagRun(_ name: String, set tags: [String: String], remove keys: [String]) throws {
        try database.transaction {
            guard let id = try runID(named: name) else { throw unknownRun(name) }
            for key in keys { try database.execute("DELETE FROM tags WHERE run_id = ? AND key = ?", [.integer(id), .text(key)]) }
            for (key, value) in tags.sorted(by: { $0.key < $1.key }) {
                try database.execute("INSERT INTO tags(run_id, key, value) VALUES (?, ?, ?) ON CONFLICT(run_id, key) DO UPDATE SET value = excluded.value",
                                     [.integer(id), .text(key), .text(value)])
            }
        }
    }
}

/// The metadata `track set` changes (nil: left as it is).
public struct RunMetadataChanges: Sendable, Equatable {
    public var model: String?
    public var method: String?
    public var dataset: String?
    public var split: String?
    public var epoch: Double?
    public var step: Int?

    public init() {}

    public var isEmpty: Bool { self == RunMetadataChanges() }

    /// The checks of ingest: non-empty text without NUL, a finite epoch ≥ 0, a step ≥ 0.
    public func validate() throws {
        guard !isEmpty else { throw StoreError("nothing to set: give --model, --method, --dataset, --split, --epoch or --step", kind: .usage) }
        for (field, value) in [("model", model), ("method", method), ("dataset", dataset), ("split", split)] {
            guard let value else { continue }
            if value.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--\(field) needs a non-empty value") }
            if value.utf8.contains(0) { throw ValidationError("the \(field) \(value.debugDescription) contains a NUL character") }
        }
        if let epoch, !(epoch.isFinite && epoch >= 0) { throw ValidationError("--epoch must be a finite number ≥ 0, got \(epoch)") }
        if let step, step < 0 { throw ValidationError("--step must be ≥ 0, got \(step)") }
    }

    /// The run columns to assign that derived runs share with their parent (all but the method).
    var sharedAssignments: [(column: String, value: SQLValue)] {
        var result: [(String, SQLValue)] = []
        if let model { result.append(("model", .text(model))) }
        if let dataset { result.append(("dataset", .text(dataset))) }
        if let split { result.append(("split", .text(split))) }
        if let epoch { result.append(("epoch", .real(epoch))) }
        if let step { result.append(("step", .integer(Int64(step)))) }
        return result
    }
}

/// Changing runs in place — delete, rename, tag, correct metadata — each in one transaction with
/// the same checks on every store: what `track rm`, `rename`, `tag` and `set` call, on a SQLite
/// file or on a PostgreSQL server alike.
public protocol RunManaging {
    /// Deletes runs with all they own; a run others derive from is refused unless `recursive`.
    func deleteRuns(named names: [String], recursive: Bool) throws -> [String]
    func renameRun(_ old: String, to new: String) throws
    func tagRun(_ name: String, set tags: [String: String], remove keys: [String]) throws
    /// Corrects metadata; derived runs follow their parent. Returns the runs changed.
    @discardableResult
    func setRunMetadata(_ name: String, _ changes: RunMetadataChanges) throws -> [String]
}

extension RunStore: RunManaging {}

extension RunStore {
    /// Changes a run's model, method, dataset, split, epoch or step, in one transaction, with
    /// the checks of ingest (non-empty text without NUL, a finite epoch ≥ 0, a step ≥ 0). A
    /// derived run's fields are its parent's (and its method names the calibration that made
    /// it): changing them there is refused, naming the parent. On a parent, model, dataset,
    /// split, epoch and step carry over to its derived runs, and a method change updates the
    /// parent method they record (`<prefix>.parent_method`). Returns the runs changed.
    @discardableResult
    public func setRunMetadata(_ name: String, _ changes: RunMetadataChanges) throws -> [String] {
        try changes.validate()
        return try database.transaction {
            guard let id = try runID(named: name) else { throw unknownRun(name) }
            var parent: Int64?, format: String?
            try database.forEachRow("SELECT parent_run_id, source_format FROM runs WHERE run_id = ?", [.integer(id)]) {
                parent = $0.optionalInt64(0)
                format = $0.string(1)
            }
            if let parent, format == "derived" {
                let parentName = try database.scalarText("SELECT name FROM runs WHERE run_id = ?", [.integer(parent)]) ?? "its parent"
                throw StoreError("'\(name)' is derived from '\(parentName)' (\(format ?? "derived")): its model, split, epoch and step are its parent's and its method names how it was derived; set them on '\(parentName)' (its derived runs follow)", kind: .conflict)
            }
            // The run and, for the fields derived runs copy, its derived runs (to any depth).
            var family: [Int64] = [id], frontier: [Int64] = [id]
            while !frontier.isEmpty {
                var next: [Int64] = []
                for run in frontier {
                    try database.forEachRow("SELECT run_id FROM runs WHERE parent_run_id = ? AND source_format = 'derived'", [.integer(run)]) { next.append($0.int64(0)) }
                }
                next.removeAll { family.contains($0) }
                family += next
                frontier = next
            }
            let assignments = changes.sharedAssignments
            for run in family where !assignments.isEmpty {
                try database.execute("UPDATE runs SET \(assignments.map { "\($0.0) = ?" }.joined(separator: ", ")) WHERE run_id = ?",
                                     assignments.map(\.1) + [.integer(run)])
            }
            if let method = changes.method {
                try database.execute("UPDATE runs SET method = ? WHERE run_id = ?", [.text(method), .integer(id)])
                try database.execute("UPDATE params SET value = ? WHERE key LIKE '%.parent_method' AND run_id IN (SELECT run_id FROM runs WHERE parent_run_id = ? AND source_format = 'derived')",
                                     [.text(method), .integer(id)])
            }
            var names: [String] = []
            for run in family { names.append(try database.scalarText("SELECT name FROM runs WHERE run_id = ?", [.integer(run)]) ?? "") }
            return assignments.isEmpty ? [name] : names
        }
    }
}
