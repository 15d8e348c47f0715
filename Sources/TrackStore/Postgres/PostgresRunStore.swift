import Foundation
import TrackCalibration

/// The PostgreSQL store as every command reads and writes it: on the server, directly. The
/// shared queries (`RunReading`) run on its connection; what PostgreSQL does its own way is here.
extension PostgresStore: RunWriting {
    public var sql: any SQLQuerying { connection }

    public func questionIDRange(runID: Int64) throws -> ClosedRange<Int64>? {
        let row = try connection.query("SELECT MIN(question_id), MAX(question_id) FROM option_scores WHERE run_id = $1", [.integer(runID)]).rows.first
        guard case .integer(let low)? = row?[0], case .integer(let high)? = row?[1] else { return nil }
        return low...high
    }

    public func parallelReader() throws -> any RunReading { try PostgresStore(sibling: self) }

    /// Current: the schema was created or migrated when the store was opened.
    public var schemaVersion: Int { Self.currentVersion }

    /// The run's questions (one COPY, through `_track_top_labels`, in id order), then its option rows in
    /// primary-key order (a second COPY: an index scan, no join or sort of the option rows), the
    /// two walked side by side.
    public func scanRun(id runID: Int64, name: String, details: Bool, questions range: ClosedRange<Int64>?,
                        chunkSize: Int, emit: (QuestionChunk) throws -> Bool) throws {
        func between(_ column: String) -> String {
            range.map { " AND \(column) BETWEEN \($0.lowerBound) AND \($0.upperBound)" } ?? ""
        }
        struct Question { var label: Int; var options: Int; var subject: String?; var category: String?; var dataset = ""; var externalID = "" }
        var ids: [Int64] = []
        var questions: [Question] = []
        let detailColumns = details ? ", q.subject, q.dataset, q.external_id, q.category" : ""
        try connection.copyOutBinary("""
            COPY (SELECT q.question_id, q.label, q.n_options\(detailColumns) FROM _track_top_labels t JOIN questions q USING (question_id)
                  WHERE t.run_id = \(runID)\(between("t.question_id")) ORDER BY t.question_id) TO STDOUT WITH (FORMAT binary)
            """) { row in
            var question = Question(label: Int(row.int64(1)), options: Int(row.int64(2)))
            if details {
                question.subject = row.isNull(3) ? nil : row.string(3)
                question.dataset = row.string(4)
                question.externalID = row.string(5)
                question.category = row.isNull(6) ? nil : row.string(6)
            }
            ids.append(row.int64(0))
            questions.append(question)
        }
        var next = 0
        var chunk = QuestionChunk(reserving: chunkSize)
        var current: Int64 = -1
        var question = Question(label: 0, options: 0)
        var stopped = false
        func close() throws {
            guard current >= 0 else { return }
            try chunk.closeQuestion(id: current, label: question.label, optionCount: question.options, run: name,
                                    details: details ? QuestionDetails(subject: question.subject, category: question.category,
                                                                       dataset: question.dataset, externalID: question.externalID) : nil)
        }
        // Binary: the probabilities arrive as their stored bits, with no text to parse.
        try connection.copyOutBinary("COPY (SELECT question_id, prob, score FROM option_scores WHERE run_id = \(runID)\(between("question_id")) ORDER BY question_id, option) TO STDOUT WITH (FORMAT binary)") { row in
            guard !stopped else { return }
            let id = row.int64(0)
            if id != current {
                try close()
                if chunk.count >= chunkSize {
                    guard try emit(chunk) else { stopped = true; return }
                    chunk = QuestionChunk(reserving: chunkSize)
                }
                current = id
                while next < ids.count, ids[next] < id { next += 1 }
                guard next < ids.count, ids[next] == id else { throw StoreError("run '\(name)': question row \(id) is missing") }
                question = questions[next]
            }
            chunk.addRow(probability: row.double(1), score: row.isNull(2) ? nil : row.double(2))
        }
        guard !stopped else { return }
        try close()
        if chunk.count > 0 { _ = try emit(chunk) }
    }

    /// Validated and summarised exactly as on SQLite — written whole into a private staging file
    /// by the SQLite writer — then pushed in one transaction (replacing a run of that name when
    /// `replace`, linked to its parent on the server). Nothing of the run is on the server
    /// unless all of it is.
    public func writeRun(_ metadata: RunMetadata, predictions: [Prediction], replace: Bool, folds: [FoldMembership]) throws -> Int64 {
        var replacing: [String] = []
        if case .text(let uuid)? = try connection.query("SELECT uuid FROM runs WHERE name = $1", [.text(metadata.name)]).rows.first?.first {
            guard replace else { throw ValidationError("a run named '\(metadata.name)' already exists", kind: .conflict, remedy: .replace) }
            replacing = [uuid]
        }
        let folder = try TemporaryFolders.make(prefix: TemporaryFolders.postgresStaging)
        defer { TemporaryFolders.remove(folder) }
        let staging = try RunStore(path: folder.appendingPathComponent("run.sqlite").path)
        var local = metadata
        local.parentRunID = nil
        let localID = try staging.writeRun(local, predictions: predictions, replace: false, folds: folds)
        guard let uuid = try staging.database.scalarText("SELECT uuid FROM runs WHERE run_id = ?", [.integer(localID)]) else {
            throw StoreError("the staged run '\(metadata.name)' has no uuid", kind: .storage)
        }
        _ = try push(runID: localID, from: staging, replacing: replacing, parent: metadata.parentRunID)
        guard case .integer(let id)? = try connection.query("SELECT run_id FROM runs WHERE uuid = $1", [.text(uuid)]).rows.first?.first else {
            throw StoreError("run '\(metadata.name)' was not found on \(displayName) after its push", kind: .storage)
        }
        return id
    }

    public func storeEMTargets(runID: Int64, questionIDs: [Int64], offsets: [Int], bins: [Int], targets: [Double],
                               settings: [String: String]) throws {
        try withRetry {
            try connection.transaction {
                try connection.query("DELETE FROM em_targets WHERE run_id = $1", [.integer(runID)])
                try connection.copyIn("COPY em_targets(run_id, question_id, option, bin, target) FROM STDIN WITH (FORMAT binary)") { buffer in
                    buffer.binaryHeader()
                    var question = 0
                    for row in targets.indices {
                        while offsets[question + 1] <= row { question += 1 }
                        try buffer.binaryRow(fields: 5)
                        buffer.binaryInt(runID)
                        buffer.binaryInt(questionIDs[question])
                        buffer.binaryInt(Int64(row - offsets[question]))
                        buffer.binaryInt(Int64(bins[question]))
                        buffer.binaryDouble(targets[row])
                    }
                    buffer.binaryTrailer()
                }
                for (key, value) in settings.sorted(by: { $0.key < $1.key }) {
                    try connection.query("INSERT INTO params(run_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                                         [.integer(runID), .text(key), .text(value)])
                }
            }
        }
    }
}
