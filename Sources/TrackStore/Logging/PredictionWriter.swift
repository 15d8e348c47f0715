import TrackCalibration

/// Validates predictions and writes them in long form (one row per option)
/// for one run, buffering rows into multi-row INSERTs. Must be used inside a
/// write transaction of its database, after `QuestionIndex.begin`, and
/// flushed before the transaction commits.
final class PredictionWriter {
    let database: Database
    let runID: Int64
    let defaultDataset: String
    let validation: ValidationOptions
    let questions: QuestionIndex
    private var probabilities: [Double] = []
    private var scores: [Double] = []
    /// Question ids this run already has (a question may appear once per run).
    private var written: Set<Int64> = []
    // Buffered option rows.
    private var rowQuestion: [Int64] = []
    private var rowOption: [Int32] = []
    private var rowProbability: [Double] = []
    private var rowScore: [Double] = []
    private var rowHasScore: [Bool] = []
    private var chunkInsert: Statement?
    private var singleInsert: Statement?
    static let chunkSize = 128

    init(database: Database, runID: Int64, defaultDataset: String, validation: ValidationOptions,
         questions: QuestionIndex) throws {
        self.database = database
        self.runID = runID
        self.defaultDataset = defaultDataset
        self.validation = validation
        self.questions = questions
        // A continued run (`--append`) keeps refusing questions it already has.
        try database.forEachRow("SELECT DISTINCT question_id FROM option_scores WHERE run_id = ?", [.integer(runID)]) {
            written.insert($0.int64(0))
        }
    }

    /// Checks one prediction without writing it; the reason it is refused, or nil.
    static func check(_ prediction: Prediction, validation: ValidationOptions) -> String? {
        var probabilities = [Double](), scores = [Double]()
        return normalise(prediction, validation: validation, probabilities: &probabilities, scores: &scores)
    }

    /// Fills `probabilities` (and `scores` when raw scores were given) or returns why it can't.
    private static func normalise(_ prediction: Prediction, validation: ValidationOptions,
                                  probabilities: inout [Double], scores: inout [Double]) -> String? {
        let count = prediction.values.count
        if count < 2 { return "a question needs at least 2 options, found \(count)" }
        if prediction.label < 0 || prediction.label >= count {
            return "label \(prediction.label) is out of range for \(count) options (0...\(count - 1))"
        }
        if prediction.questionID.isEmpty { return "empty question id" }
        switch prediction.values {
        case .probabilities(let p):
            probabilities = p
            return probabilities.withUnsafeMutableBufferPointer {
                Probabilities.validate($0, tolerance: validation.tolerance, renormalize: validation.renormalize)
            }
        case .scores(let s):
            if let reason = s.withUnsafeBufferPointer({ Probabilities.validateScores($0) }) { return reason }
            scores = s
            probabilities = Probabilities.softmax(s)
            return nil
        }
    }

    /// Validates one prediction and queues its rows; throws `ValidationError` for a bad row.
    func write(_ prediction: Prediction) throws {
        if let reason = Self.normalise(prediction, validation: validation,
                                       probabilities: &probabilities, scores: &scores) {
            throw ValidationError(reason)
        }
        let hasScores: Bool
        if case .scores = prediction.values { hasScores = true } else { hasScores = false }
        let k = probabilities.count
        let questionID = try questions.resolve(database, dataset: prediction.dataset ?? defaultDataset,
                                               externalID: prediction.questionID, subject: prediction.subject,
                                               optionCount: k, label: prediction.label)
        guard written.insert(questionID).inserted else {
            throw ValidationError("question '\(prediction.questionID)' appears twice in this run")
        }
        for option in 0..<k {
            rowQuestion.append(questionID)
            rowOption.append(Int32(option))
            rowProbability.append(probabilities[option])
            rowScore.append(hasScores ? scores[option] : 0)
            rowHasScore.append(hasScores)
        }
        if rowQuestion.count >= 8 * Self.chunkSize { try flush() }
    }

    /// Writes every queued row (and, first, the new questions they refer to).
    func flush() throws {
        guard !rowQuestion.isEmpty else { return }
        try questions.flush(database)
        var start = 0
        if rowQuestion.count >= Self.chunkSize {
            let statement = try chunkInsert ?? database.makeStatement(
                "INSERT INTO option_scores(run_id, question_id, option, prob, score) VALUES "
                + Array(repeating: "(?, ?, ?, ?, ?)", count: Self.chunkSize).joined(separator: ", "))
            chunkInsert = statement
            while rowQuestion.count - start >= Self.chunkSize {
                for i in 0..<Self.chunkSize { bindRow(start + i, to: statement, base: Int32(i * 5)) }
                try statement.step()
                statement.reset()
                start += Self.chunkSize
            }
        }
        if start < rowQuestion.count {
            let statement = try singleInsert ?? database.makeStatement(
                "INSERT INTO option_scores(run_id, question_id, option, prob, score) VALUES (?, ?, ?, ?, ?)")
            singleInsert = statement
            for row in start..<rowQuestion.count {
                bindRow(row, to: statement, base: 0)
                try statement.step()
                statement.reset()
            }
        }
        rowQuestion.removeAll(keepingCapacity: true)
        rowOption.removeAll(keepingCapacity: true)
        rowProbability.removeAll(keepingCapacity: true)
        rowScore.removeAll(keepingCapacity: true)
        rowHasScore.removeAll(keepingCapacity: true)
    }

    @inline(__always)
    private func bindRow(_ row: Int, to statement: Statement, base: Int32) {
        statement.bind(runID, at: base + 1)
        statement.bind(rowQuestion[row], at: base + 2)
        statement.bind(Int64(rowOption[row]), at: base + 3)
        statement.bind(rowProbability[row], at: base + 4)
        if rowHasScore[row] { statement.bind(rowScore[row], at: base + 5) } else { statement.bindNull(at: base + 5) }
    }

    /// The transaction rolled back: drop what was queued and what this run "had".
    func rollback() {
        rowQuestion.removeAll(keepingCapacity: true)
        rowOption.removeAll(keepingCapacity: true)
        rowProbability.removeAll(keepingCapacity: true)
        rowScore.removeAll(keepingCapacity: true)
        rowHasScore.removeAll(keepingCapacity: true)
    }
}
