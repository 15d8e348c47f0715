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
        var filter = "o.run_id = \(runID)"
        if let range { filter += " AND o.question_id BETWEEN \(range.lowerBound) AND \(range.upperBound)" }
        let columns = "o.question_id, o.prob, o.score, q.label, q.n_options" + (details ? ", q.subject, q.dataset, q.external_id" : "")
        var chunk = QuestionChunk()
        var current: Int64 = -1
        var rows = 0, optionCount = 0, label = 0
        var rowsScored = true
        var detail: (String?, String, String) = (nil, "", "")
        var stopped = false
        func close() throws {
            guard current >= 0 else { return }
            guard optionCount == rows, label < rows else {
                throw StoreError("run '\(name)': question \(current) has \(optionCount) options but \(rows) stored scores")
            }
            chunk.ids.append(current)
            chunk.labels.append(label)
            chunk.offsets.append(chunk.probabilities.count)
            if !rowsScored { chunk.scored = false }
            if details {
                chunk.subjects.append(detail.0)
                chunk.datasets.append(detail.1)
                chunk.externalIDs.append(detail.2)
            }
            rows = 0
            rowsScored = true
        }
        try connection.copyOut("COPY (SELECT \(columns) FROM option_scores o JOIN questions q ON q.question_id = o.question_id WHERE \(filter) ORDER BY o.question_id, o.option) TO STDOUT") { row in
            guard !stopped else { return }
            let question = row.int64(0)
            if question != current {
                try close()
                if chunk.count >= chunkSize {
                    guard try emit(chunk) else { stopped = true; return }
                    chunk = QuestionChunk()
                }
                current = question
                label = Int(row.int64(3))
                optionCount = Int(row.int64(4))
                if details { detail = (row.isNull(5) ? nil : row.string(5), row.string(6), row.string(7)) }
            }
            chunk.probabilities.append(row.double(1))
            if row.isNull(2) {
                rowsScored = false
                chunk.scores.append(0)
            } else {
                chunk.scores.append(row.double(2))
            }
            rows += 1
        }
        guard !stopped else { return }
        try close()
        if chunk.count > 0 { _ = try emit(chunk) }
    }
}
