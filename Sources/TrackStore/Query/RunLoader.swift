import Foundation
import TrackCalibration

/// A run read back for the analyzers.
public struct LoadedRun: Sendable {
    public var id: Int64
    public var name: String
    public var predictions: PredictionSet
    /// Per question (same order): subject, category and dataset, when asked for.
    public var subjects: [String?] = []
    public var categories: [String?] = []
    public var datasets: [String] = []
    public var externalIDs: [String] = []

    /// Question `i` as a `Prediction` (with `values`, by default its scores when stored, else
    /// its probabilities): what a derived run writes back. Needs a load with details.
    public func prediction(_ i: Int, values: OptionValues? = nil) -> Prediction {
        let range = predictions.offsets[i]..<predictions.offsets[i + 1]
        let stored: OptionValues = predictions.scores.map { .scores(Array($0[range])) } ?? .probabilities(Array(predictions.probabilities[range]))
        return Prediction(questionID: externalIDs[i], label: Int(predictions.labels[i]), values: values ?? stored,
                          subject: subjects[i], dataset: datasets[i], category: categories[i])
    }
}

/// A stored value no input could have given (a plain-SQL write: a probability outside [0, 1],
/// NaN, an infinite score): the run cannot be analysed until it is corrected.
public struct StoredValueError: TrackFailure, Sendable {
    public var run: String
    /// The question (its row id), when one is to blame.
    public var question: Int64?
    public var detail: String
    public var kind: ErrorKind { .invalidInput }
    public var remedy: Remedy? { nil }
    public var message: String { description }
    public var description: String {
        "run '\(run)': \(question.map { "question \($0) " } ?? "")\(detail) (written outside track?); correct or delete those rows (track check lists them)"
    }
}

/// What a scan with details reads of a question besides its rows.
struct QuestionDetails {
    var subject: String?
    var category: String?
    var dataset: String
    var externalID: String
}

/// Consecutive questions of a run, as the scan hands them on.
public struct QuestionChunk: Sendable {
    var ids: [Int64] = []
    var labels: [Int] = []
    var offsets: [Int] = [0]
    var probabilities: [Double] = []
    /// Empty unless every question of the chunk had raw scores.
    var scores: [Double] = []
    var scored = true
    var subjects: [String?] = []
    var categories: [String?] = []
    var datasets: [String] = []
    var externalIDs: [String] = []

    var count: Int { ids.count }
    /// Rows added for the question being read, and whether each had a raw score.
    private var openRows = 0
    private var openScored = true
    /// The first row of the question being read whose value no input could have given
    /// (written by plain SQL): (option, what is wrong).
    private var openInvalid: (option: Int, reason: String)?

    init(reserving questions: Int = 0) {
        ids.reserveCapacity(questions + 1)
        offsets.reserveCapacity(questions + 2)
        probabilities.reserveCapacity(questions * 4 + 64)
        scores.reserveCapacity(questions * 4 + 64)
    }

    /// Adds one option row (in option order) of the question being read.
    mutating func addRow(probability: Double, score: Double?) {
        // Values read back are checked as input is: a probability in [0, 1], a finite score.
        if !(probability >= 0 && probability <= 1), openInvalid == nil {
            openInvalid = (openRows, "probability \(probability)")
        }
        if let score, !score.isFinite, openInvalid == nil { openInvalid = (openRows, "score \(score)") }
        probabilities.append(probability)   // an invalid row's question is refused before the chunk is used
        scores.append(score ?? 0)
        if score == nil { openScored = false }
        openRows += 1
    }

    /// Ends the question being read: its rows must be as many as its options, its label one of them.
    mutating func closeQuestion(id: Int64, label: Int, optionCount: Int, run: String,
                                details: QuestionDetails?) throws {
        guard optionCount == openRows, label < openRows else {
            throw StoredValueError(run: run, question: id, detail: "has \(optionCount) options but \(openRows) rows in option_scores")
        }
        if let invalid = openInvalid {
            throw StoredValueError(run: run, question: id, detail: "option \(invalid.option) holds \(invalid.reason) in option_scores, which is not a valid value")
        }
        ids.append(id)
        labels.append(label)
        offsets.append(probabilities.count)
        if !openScored { scored = false }
        if let details {
            subjects.append(details.subject)
            categories.append(details.category)
            datasets.append(details.dataset)
            externalIDs.append(details.externalID)
        }
        openRows = 0
        openScored = true
    }

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
    public func questionIDRange(runID: Int64) throws -> ClosedRange<Int64>? {
        // Two queries: each one probe of the primary key (MIN and MAX together scan the run).
        guard let low = try database.scalarInt("SELECT MIN(question_id) FROM option_scores WHERE run_id = ?", [.integer(runID)]),
              let high = try database.scalarInt("SELECT MAX(question_id) FROM option_scores WHERE run_id = ?", [.integer(runID)])
        else { return nil }
        return low...high
    }

    public func parallelReader() throws -> any RunReading {
        try RunStore(path: database.path, readOnly: true, busyTimeout: busyTimeout)
    }

    /// The option rows in key order (one scan of `option_scores`), with `questions` walked
    /// alongside by id for labels, so that no per-row join is needed.
    public func scanRun(id runID: Int64, name: String, details: Bool, questions range: ClosedRange<Int64>?,
                        chunkSize: Int, emit: (QuestionChunk) throws -> Bool) throws {
        let options = try database.makeStatement(
            "SELECT question_id, option, prob, score FROM option_scores WHERE run_id = ? AND question_id BETWEEN ? AND ? ORDER BY question_id, option")
        options.bind(runID, at: 1)
        options.bind(range?.lowerBound ?? Int64.min, at: 2)
        options.bind(range?.upperBound ?? Int64.max, at: 3)
        let questions = try database.makeStatement(
            "SELECT question_id, label, n_options, subject, dataset, external_id, category FROM questions WHERE question_id >= ? ORDER BY question_id")
        var chunk = QuestionChunk(reserving: chunkSize)
        var currentQuestion: Int64 = -1
        var questionRowValid = false

        func closeQuestion() throws {
            guard currentQuestion >= 0 else { return }
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
            try chunk.closeQuestion(id: currentQuestion, label: questions.int(1), optionCount: questions.int(2), run: name,
                                    details: details ? QuestionDetails(subject: questions.string(3), category: questions.string(6),
                                                                       dataset: questions.string(4) ?? "", externalID: questions.string(5) ?? "") : nil)
        }

        while try options.step() {
            let question = options.int64(0)
            if question != currentQuestion {
                try closeQuestion()
                if chunk.count >= chunkSize {
                    guard try emit(chunk) else { return }
                    chunk = QuestionChunk(reserving: chunkSize)
                }
                currentQuestion = question
            }
            chunk.addRow(probability: options.double(2), score: options.isNull(3) ? nil : options.double(3))
        }
        try closeQuestion()
        if chunk.count > 0 { _ = try emit(chunk) }
    }
}
