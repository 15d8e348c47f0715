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
    /// Question ids this run already has (a question may appear once per run).
    private var written = QuestionBitmap()
    // Buffered option rows.
    private var rowQuestion: [Int64] = []
    private var rowOption: [Int32] = []
    private var rowProbability: [Double] = []
    private var rowScore: [Double] = []
    private var rowHasScore: [Bool] = []
    private var chunkInsert: Statement?
    private var singleInsert: Statement?
    static let chunkSize = 512

    init(database: Database, runID: Int64, defaultDataset: String, validation: ValidationOptions,
         questions: QuestionIndex) throws {
        self.database = database
        self.runID = runID
        self.defaultDataset = defaultDataset
        self.validation = validation
        self.questions = questions
        // A continued run (`--append`) keeps refusing questions it already has.
        try database.forEachRow("SELECT DISTINCT question_id FROM option_scores WHERE run_id = ?", [.integer(runID)]) {
            _ = written.insert($0.int64(0))
        }
    }

    /// Checks a prediction and computes what is stored: the probabilities
    /// (softmax of raw scores) and the scores. Pure; runs on any thread.
    static func checked(_ prediction: Prediction, validation: ValidationOptions) throws(ValidationError) -> CheckedPrediction {
        let count = prediction.values.count
        if count < 2 { throw ValidationError("a question needs at least 2 options, found \(count)") }
        if prediction.label < 0 || prediction.label >= count {
            throw ValidationError("label \(prediction.label) is out of range for \(count) options (0...\(count - 1))")
        }
        if prediction.questionID.isEmpty { throw ValidationError("empty question id") }
        switch prediction.values {
        case .probabilities(let p):
            switch Probabilities.validated(p, tolerance: validation.tolerance, renormalize: validation.renormalize) {
            case .success(let row): return CheckedPrediction(prediction, probabilities: row, scores: nil)
            case .failure(let error): throw ValidationError(error.reason)
            }
        case .scores(let s):
            if let reason = s.withUnsafeBufferPointer({ Probabilities.validateScores($0) }) { throw ValidationError(reason) }
            return CheckedPrediction(prediction, probabilities: Probabilities.softmax(s), scores: s)
        }
    }

    /// Validates one prediction and queues its rows; throws `ValidationError` for a bad row.
    func write(_ prediction: Prediction) throws {
        try write(try Self.checked(prediction, validation: validation))
    }

    /// Queues the rows of a checked prediction; throws `ValidationError` when
    /// its question conflicts with the stored one or appears twice in the run.
    func write(_ prediction: CheckedPrediction) throws {
        let k = prediction.probabilities.count
        let questionID = try questions.resolve(database, dataset: prediction.dataset ?? defaultDataset,
                                               externalID: prediction.questionID, subject: prediction.subject,
                                               optionCount: k, label: prediction.label)
        guard written.insert(questionID) else {
            throw ValidationError("question '\(prediction.questionID)' appears twice in this run")
        }
        for option in 0..<k {
            rowQuestion.append(questionID)
            rowOption.append(Int32(option))
            rowProbability.append(prediction.probabilities[option])
            rowScore.append(prediction.scores?[option] ?? 0)
            rowHasScore.append(prediction.scores != nil)
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

/// A prediction that passed validation, with the probabilities to store.
struct CheckedPrediction: Sendable {
    var questionID: String
    var label: Int
    var subject: String?
    var dataset: String?
    var probabilities: [Double]
    var scores: [Double]?

    init(_ prediction: Prediction, probabilities: [Double], scores: [Double]?) {
        questionID = prediction.questionID
        label = prediction.label
        subject = prediction.subject
        dataset = prediction.dataset
        self.probabilities = probabilities
        self.scores = scores
    }
}

/// A set of question ids as a bitmap: ids are dense row ids, so membership
/// costs one bit and no hashing.
struct QuestionBitmap {
    private var words: [UInt64] = []

    /// Adds `id`; false when it was already there.
    mutating func insert(_ id: Int64) -> Bool {
        precondition(id >= 0)
        let word = Int(id >> 6), bit = UInt64(1) << UInt64(id & 63)
        if word >= words.count { words.append(contentsOf: repeatElement(0, count: max(word + 1 - words.count, words.count))) }
        if words[word] & bit != 0 { return false }
        words[word] |= bit
        return true
    }

    func contains(_ id: Int64) -> Bool {
        let word = Int(id >> 6)
        return word < words.count && words[word] & (UInt64(1) << UInt64(id & 63)) != 0
    }
}
