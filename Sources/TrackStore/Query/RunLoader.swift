import Foundation
import TrackCalibration

/// A run read back for the analyzers.
public struct LoadedRun: Sendable {
    public var id: Int64
    public var name: String
    public var predictions: PredictionSet
    /// Per question (same order): subject and dataset, when asked for.
    public var subjects: [String?] = []
    public var datasets: [String] = []
    public var externalIDs: [String] = []
}

/// Consecutive questions of a run, as the scan hands them on.
struct QuestionChunk: Sendable {
    var ids: [Int64] = []
    var labels: [Int] = []
    var offsets: [Int] = [0]
    var probabilities: [Double] = []
    /// Empty unless every question of the chunk had raw scores.
    var scores: [Double] = []
    var scored = true
    var subjects: [String?] = []
    var datasets: [String] = []
    var externalIDs: [String] = []

    var count: Int { ids.count }

    /// Calls `body` with each question's probability row (and scores when all were given).
    func forEach(_ body: (Int64, Int, UnsafeBufferPointer<Double>, UnsafeBufferPointer<Double>?) -> Void) {
        probabilities.withUnsafeBufferPointer { p in
            scores.withUnsafeBufferPointer { s in
                for q in 0..<count {
                    let range = offsets[q]..<offsets[q + 1]
                    body(ids[q], labels[q], UnsafeBufferPointer(rebasing: p[range]),
                         scored ? UnsafeBufferPointer(rebasing: s[range]) : nil)
                }
            }
        }
    }
}

extension RunStore {
    /// Reads a run's option rows in key order (one scan of `option_scores`)
    /// and walks `questions` alongside by id for labels, so no per-row join
    /// is needed. With `details`, also reads subjects, datasets and external ids.
    public func loadRun(named name: String, details: Bool = false) throws -> LoadedRun {
        try loadRun(id: requireRun(name), name: name, details: details)
    }

    public func loadRun(id runID: Int64, name: String, details: Bool = false) throws -> LoadedRun {
        var run = LoadedRun(id: runID, name: name, predictions: PredictionSet())
        try scanRun(id: runID, name: name, details: details) { chunk in
            chunk.forEach { id, label, p, s in run.predictions.append(id: id, label: label, probabilities: p, scores: s) }
            run.subjects += chunk.subjects
            run.datasets += chunk.datasets
            run.externalIDs += chunk.externalIDs
            return true
        }
        return run
    }

    /// Loads a run straight into a calibration analyzer: SQLite reads on this
    /// thread while another does each question's work as it arrives, so the
    /// metrics cost little more than the scan itself.
    public func analyzeRun(named name: String, bins: Int = 10, epsilon: Double = 0.01) throws -> CalibrationAnalyzer {
        try analyzeRun(id: requireRun(name), name: name, bins: bins, epsilon: epsilon)
    }

    public func analyzeRun(id runID: Int64, name: String, bins: Int = 10, epsilon: Double = 0.01) throws -> CalibrationAnalyzer {
        // This thread scans option rows; the worker looks up labels on its own
        // read-only connection (opened once the scan's snapshot exists, so it
        // sees every question the scan refers to) and feeds the builder.
        let queue = BlockingQueue<QuestionChunk, Void>(capacity: 16)
        let builder = BuilderBox(CalibrationAnalyzer.Builder(bins: bins, epsilon: epsilon))
        let failure = ErrorBox()
        let done = DispatchSemaphore(value: 0)
        let path = database.path
        var started = false
        do {
            try scanRun(id: runID, name: name, details: false, labels: false) { chunk in
                if !started {
                    started = true
                    let worker = Thread {
                        defer { done.signal() }
                        do {
                            let labels = try LabelCursor(database: Database(path: path, readOnly: true), runName: name)
                            while var chunk = queue.pop() {
                                try labels.fill(&chunk)
                                chunk.forEach { id, label, p, s in
                                    builder.value.append(id: id, label: label, probabilities: p, scores: s)
                                }
                            }
                        } catch {
                            failure.error = error
                            queue.cancel()
                            while queue.pop() != nil {}
                        }
                    }
                    worker.start()
                }
                return queue.push(chunk)
            }
            queue.finish(.success(()))
        } catch {
            queue.cancel()
            queue.finish(.failure(error))
            if started { done.wait() }
            throw error
        }
        if started { done.wait() }
        if let error = failure.error { throw error }
        return builder.value.build()
    }

    private func requireRun(_ name: String) throws -> Int64 {
        guard let runID = try runID(named: name) else {
            throw StoreError("no run named '\(name)' in \(database.path) (see `track runs`)")
        }
        return runID
    }

    /// The scan both loaders share: chunks of consecutive questions, in id order.
    /// `emit` returns false to stop early.
    func scanRun(id runID: Int64, name: String, details: Bool, labels: Bool = true, chunkSize: Int = 8192,
                 emit: (QuestionChunk) throws -> Bool) throws {
        let options = try database.makeStatement(
            "SELECT question_id, option, prob, score FROM option_scores WHERE run_id = ? ORDER BY question_id, option")
        options.bind(runID, at: 1)
        let questions = try database.makeStatement(
            "SELECT question_id, label, n_options, subject, dataset, external_id FROM questions WHERE question_id >= ? ORDER BY question_id")
        func newChunk() -> QuestionChunk {
            var chunk = QuestionChunk()
            chunk.ids.reserveCapacity(chunkSize + 1)
            chunk.offsets.reserveCapacity(chunkSize + 2)
            chunk.probabilities.reserveCapacity(chunkSize * 4 + 64)
            chunk.scores.reserveCapacity(chunkSize * 4 + 64)
            return chunk
        }
        var chunk = newChunk()
        var rowCount = 0
        var rowsScored = true
        var currentQuestion: Int64 = -1
        var questionRowValid = false

        func closeQuestion() throws {
            guard currentQuestion >= 0 else { return }
            if !labels {
                chunk.ids.append(currentQuestion)
                chunk.offsets.append(chunk.probabilities.count)
                if !rowsScored { chunk.scored = false }
                rowCount = 0
                rowsScored = true
                return
            }
            // Re-seek when behind by more than a few rows (the run skips questions), else step.
            if !questionRowValid || questions.int64(0) > currentQuestion || currentQuestion - questions.int64(0) > 64 {
                questions.reset()
                questions.bind(currentQuestion, at: 1)
                questionRowValid = try questions.step()
            }
            while questionRowValid, questions.int64(0) < currentQuestion { questionRowValid = try questions.step() }
            guard questionRowValid, questions.int64(0) == currentQuestion else {
                throw StoreError("run '\(name)': question row \(currentQuestion) is missing")
            }
            let label = questions.int(1)
            guard questions.int(2) == rowCount, label < rowCount else {
                throw StoreError("run '\(name)': question \(currentQuestion) has \(questions.int(2)) options but \(rowCount) stored scores")
            }
            chunk.ids.append(currentQuestion)
            chunk.labels.append(label)
            chunk.offsets.append(chunk.probabilities.count)
            if !rowsScored { chunk.scored = false }
            if details {
                chunk.subjects.append(questions.string(3))
                chunk.datasets.append(questions.string(4) ?? "")
                chunk.externalIDs.append(questions.string(5) ?? "")
            }
            rowCount = 0
            rowsScored = true
        }

        while try options.step() {
            let question = options.int64(0)
            if question != currentQuestion {
                try closeQuestion()
                if chunk.count >= chunkSize {
                    guard try emit(chunk) else { return }
                    chunk = newChunk()
                }
                currentQuestion = question
            }
            chunk.probabilities.append(options.double(2))
            if options.isNull(3) {
                rowsScored = false
                chunk.scores.append(0)
            } else {
                chunk.scores.append(options.double(3))
            }
            rowCount += 1
        }
        try closeQuestion()
        if chunk.count > 0 { _ = try emit(chunk) }
    }
}

/// Labels for chunks scanned without them: a cursor over `questions` by id.
final class LabelCursor {
    let database: Database
    let statement: Statement
    let runName: String
    var valid = false

    init(database: Database, runName: String) throws {
        self.database = database
        self.runName = runName
        statement = try database.makeStatement(
            "SELECT question_id, label, n_options FROM questions WHERE question_id >= ? ORDER BY question_id")
    }

    func fill(_ chunk: inout QuestionChunk) throws {
        chunk.labels.reserveCapacity(chunk.count)
        for q in 0..<chunk.count {
            let id = chunk.ids[q]
            if !valid || statement.int64(0) > id || id - statement.int64(0) > 64 {
                statement.reset()
                statement.bind(id, at: 1)
                valid = try statement.step()
            }
            while valid, statement.int64(0) < id { valid = try statement.step() }
            guard valid, statement.int64(0) == id else { throw StoreError("run '\(runName)': question row \(id) is missing") }
            let count = chunk.offsets[q + 1] - chunk.offsets[q]
            let label = statement.int(1)
            guard statement.int(2) == count, label < count else {
                throw StoreError("run '\(runName)': question \(id) has \(statement.int(2)) options but \(count) stored scores")
            }
            chunk.labels.append(label)
        }
    }
}

private final class ErrorBox: @unchecked Sendable {
    var error: (any Error)?
}

/// The analyzer builder, handed to the worker thread and back.
private final class BuilderBox: @unchecked Sendable {
    var value: CalibrationAnalyzer.Builder
    init(_ value: CalibrationAnalyzer.Builder) { self.value = value }
}
