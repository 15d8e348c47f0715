import Foundation

/// A file track wrote, as recorded in `exports`.
public struct ExportRecord: Sendable {
    public var path: String
    public var kind: String
    public var format: String
    public var dataPath: String?
    public var command: String
    public var runIDs: [Int64]

    public init(path: String, kind: String, format: String, dataPath: String?, command: String, runIDs: [Int64]) {
        self.path = path
        self.kind = kind
        self.format = format
        self.dataPath = dataPath
        self.command = command
        self.runIDs = runIDs
    }
}

extension RunWriting {
    /// Records a written figure or table with the SHA-256 of it and of its data file, in one
    /// transaction (the same SQL on both stores).
    @discardableResult
    public func recordExport(_ record: ExportRecord) throws -> Int64 {
        let sha = try Ingestor.sha256(ofFile: record.path)
        let dataSHA = try record.dataPath.map { try Ingestor.sha256(ofFile: $0) }
        return try sql.inTransaction {
            guard let id = try sql.firstInt("""
                INSERT INTO exports(path, kind, format, sha256, data_path, data_sha256, command)
                VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING export_id
                """, [.text(record.path), .text(record.kind), .text(record.format), .text(sha),
                      .optionalText(record.dataPath), .optionalText(dataSHA), .text(record.command)]) else {
                throw StoreError("the export record of \(record.path) got no id", kind: .storage)
            }
            for runID in Set(record.runIDs).sorted() {
                try sql.run("INSERT INTO export_runs(export_id, run_id) VALUES (?, ?)", [.integer(id), .integer(runID)])
            }
            return id
        }
    }
}

extension RunStore {
    /// Replaces the EM targets stored for a run, and records the settings in its params.
    public func storeEMTargets(runID: Int64, questionIDs: [Int64], offsets: [Int], bins: [Int], targets: [Double],
                               settings: [String: String]) throws {
        try database.transaction {
            try database.execute("DELETE FROM em_targets WHERE run_id = ?", [.integer(runID)])
            let insert = ChunkedInsert(database: database, prefix: "INSERT INTO em_targets(run_id, question_id, option, bin, target)", columns: 5)
            var question = 0
            try insert.insert(count: targets.count) { row, statement, first in
                while offsets[question + 1] <= row { question += 1 }
                statement.bind(runID, at: first)
                statement.bind(questionIDs[question], at: first + 1)
                statement.bind(row - offsets[question], at: first + 2)
                statement.bind(bins[question], at: first + 3)
                statement.bind(targets[row], at: first + 4)
            }
            for (key, value) in settings {
                try database.execute("INSERT INTO params(run_id, key, value) VALUES (?, ?, ?) ON CONFLICT(run_id, key) DO UPDATE SET value = excluded.value",
                                     [.integer(runID), .text(key), .text(value)])
            }
        }
    }
}
