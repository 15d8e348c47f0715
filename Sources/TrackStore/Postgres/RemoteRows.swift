import Foundation
import Synchronization

/// Option rows read from elsewhere than the store's own file: how a local copy of a PostgreSQL
/// store reads its runs' rows straight from the server, in the scan the analyzers use.
protocol RemoteRowSource: Sendable {
    /// Whether the run's rows are read from here (runs written locally are read locally).
    func holds(runID: Int64) -> Bool
    func scan(runID: Int64, name: String, details: Bool, questions range: ClosedRange<Int64>?, chunkSize: Int,
              emit: (QuestionChunk) throws -> Bool) throws
    func questionIDRange(runID: Int64) throws -> ClosedRange<Int64>?
}

/// Local copies and their row sources, by path: every `RunStore` opened on a copy (the parallel
/// readers' second connection too) reads its rows from the same server.
enum RemoteRows {
    private static let sources = Mutex<[String: any RemoteRowSource]>([:])

    static func register(_ source: any RemoteRowSource, for path: String) {
        sources.withLock { $0[path] = source }
    }

    static func unregister(path: String) {
        _ = sources.withLock { $0.removeValue(forKey: path) }
    }

    static func source(for path: String) -> (any RemoteRowSource)? {
        sources.withLock { $0[path] }
    }
}

/// A run's option rows read from PostgreSQL with COPY, one connection per scan (scans may run
/// in parallel), joined with their questions on the server, in question order.
final class PostgresRowSource: RemoteRowSource {
    let uri: String
    let connectTimeout: Int
    /// The server's runs the copy holds (same ids on both sides).
    private let runIDs = Mutex<Set<Int64>>([])

    init(uri: String, connectTimeout: Int) {
        self.uri = uri
        self.connectTimeout = connectTimeout
    }

    func setRuns(_ ids: Set<Int64>) { runIDs.withLock { $0 = ids } }

    func holds(runID: Int64) -> Bool { runIDs.withLock { $0.contains(runID) } }

    func questionIDRange(runID: Int64) throws -> ClosedRange<Int64>? {
        let connection = try PostgresConnection(uri, connectTimeout: connectTimeout)
        let row = try connection.query("SELECT MIN(question_id), MAX(question_id) FROM option_scores WHERE run_id = $1", [.integer(runID)]).rows.first
        guard case .integer(let low)? = row?[0], case .integer(let high)? = row?[1] else { return nil }
        return low...high
    }

    func scan(runID: Int64, name: String, details: Bool, questions range: ClosedRange<Int64>?, chunkSize: Int,
              emit: (QuestionChunk) throws -> Bool) throws {
        let connection = try PostgresConnection(uri, connectTimeout: connectTimeout)
        // Short queries over many rows: no JIT compilation.
        try connection.execute("SET jit = off")
        func between(_ column: String) -> String {
            range.map { " AND \(column) BETWEEN \($0.lowerBound) AND \($0.upperBound)" } ?? ""
        }
        // The run's questions first (one row per question, through top_labels), then its option
        // rows in primary-key order: an index scan, no join or sort of the option rows.
        struct Question { var label: Int; var options: Int; var subject: String?; var category: String?; var dataset = ""; var externalID = "" }
        // In id order (top_labels' key): walked alongside the option rows, no lookup table.
        var ids: [Int64] = []
        var questions: [Question] = []
        let detailColumns = details ? ", q.subject, q.dataset, q.external_id, q.category" : ""
        try connection.copyOut("""
            COPY (SELECT q.question_id, q.label, q.n_options\(detailColumns) FROM top_labels t JOIN questions q USING (question_id)
                  WHERE t.run_id = \(runID)\(between("t.question_id")) ORDER BY t.question_id) TO STDOUT
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
        try connection.copyOut("COPY (SELECT question_id, prob, score FROM option_scores WHERE run_id = \(runID)\(between("question_id")) ORDER BY question_id, option) TO STDOUT") { row in
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
}
