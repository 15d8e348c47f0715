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

extension RunStore {
    /// Records a written figure or table with the SHA-256 of it and of its data file.
    @discardableResult
    public func recordExport(_ record: ExportRecord) throws -> Int64 {
        let sha = try Ingestor.sha256(ofFile: record.path)
        let dataSHA = try record.dataPath.map { try Ingestor.sha256(ofFile: $0) }
        return try database.transaction {
            try database.execute("""
                INSERT INTO exports(path, kind, format, sha256, data_path, data_sha256, command)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, [.text(record.path), .text(record.kind), .text(record.format), .text(sha),
                      .optionalText(record.dataPath), .optionalText(dataSHA), .text(record.command)])
            let id = database.lastInsertRowID
            for runID in Set(record.runIDs).sorted() {
                try database.execute("INSERT INTO export_runs(export_id, run_id) VALUES (?, ?)", [.integer(id), .integer(runID)])
            }
            return id
        }
    }
}
