import Foundation
@testable import TrackStore

/// Paths and helpers shared by the store tests.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
}

/// A fresh temporary folder, removed when the value is released.
final class TemporaryDirectory {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("track-tests-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        let path = path(name)
        try! text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

extension RunStore {
    /// Every row of every table, as text: equal before and after means nothing changed.
    func contentsFingerprint() throws -> String {
        var text = ""
        for table in ["experiments", "runs", "params", "tags", "metrics", "questions", "option_scores",
                      "preference_pairs", "ingest_rejects"] {
            let result = try query("SELECT * FROM \(table) ORDER BY 1, 2")
            text += "\(table): \(result.rows.count)\n"
            for row in result.rows { text += "\(row)\n" }
        }
        return text
    }

    func count(_ table: String) throws -> Int {
        Int(try database.scalarInt("SELECT count(*) FROM \(table)") ?? -1)
    }

    func summary(_ name: String) throws -> RunSummary? {
        var filter = RunFilter()
        filter.names = [name]
        return try runSummaries(filter).first
    }
}
