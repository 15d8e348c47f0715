import TrackCalibration

/// Validates predictions and writes them in long form (one row per option)
/// for one run, buffering rows into multi-row INSERTs, with each question's
/// top label and the run's summary totals (schema v5) in the same
/// transaction. Must be used inside a write transaction of its database,
/// after `QuestionIndex.begin`, flushed before the transaction commits, and
/// told how it ended (`committed` / `rolledBack`).
final class PredictionWriter {
    let database: Database
    let runID: Int64
    let defaultDataset: String
    let validation: ValidationOptions
    let questions: QuestionIndex
    /// Question ids this run already has (a question may appear once per run): one bit each.
    private var written = QuestionBitmap()
    /// The summary of the rows queued since the last flush.
    private var summary = RunSummaryDelta()
    private var topQuestion: [Int64] = []
    private var topPrediction: [Int32] = []
    /// Queued questions whose probabilities were rescaled to a distribution.
    private var rescaledQueued = 0
    // Buffered option rows.
    private var rowQuestion: [Int64] = []
    private var rowOption: [Int32] = []
    private var rowProbability: [Double] = []
    private var rowScore: [Double] = []
    private var rowHasScore: [Bool] = []
    private lazy var optionInsert = ChunkedInsert(
        database: database, prefix: "INSERT INTO option_scores(run_id, question_id, option, prob, score)", columns: 5)
    private lazy var topInsert = ChunkedInsert(
        database: database, prefix: "INSERT INTO _track_top_labels(run_id, question_id, pred)", columns: 3)

    init(database: Database, runID: Int64, defaultDataset: String, validation: ValidationOptions,
         questions: QuestionIndex) throws {
        self.database = database
        self.runID = runID
        self.defaultDataset = defaultDataset
        self.validation = validation
        self.questions = questions
        // A continued run (`--append`) keeps refusing questions it already has.
        try readWritten()
    }

    /// The run's stored questions into `written` (its top labels: one row per question).
    private func readWritten() throws {
        written = QuestionBitmap()
        try database.forEachRow("SELECT question_id FROM _track_top_labels WHERE run_id = ?", [.integer(runID)]) {
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
        try refuseNUL("question id", prediction.questionID)
        try refuseNUL("subject", prediction.subject)
        try refuseNUL("dataset", prediction.dataset)
        try refuseNUL("category", prediction.category)
        switch prediction.values {
        case .probabilities(let p):
            switch Probabilities.validated(p, tolerance: validation.tolerance, renormalize: validation.renormalize) {
            case .success(let row):
                var checked = CheckedPrediction(prediction, probabilities: row.values, scores: nil)
                checked.rescaled = row.rescaled
                return checked
            case .failure(let error): throw ValidationError(error.reason, remedy: error.renormalizable ? .renormalize : nil)
            }
        case .scores(let s):
            if let reason = s.withUnsafeBufferPointer({ Probabilities.validateScores($0) }) { throw ValidationError(reason) }
            return CheckedPrediction(prediction, probabilities: Probabilities.softmax(s), scores: s)
        }
    }

    /// SQLite and C strings end at a NUL: such text would be stored cut short.
    private static func refuseNUL(_ what: String, _ text: String?) throws(ValidationError) {
        if let text, text.utf8.contains(0) {
            throw ValidationError("the \(what) \(text.debugDescription) contains a NUL character")
        }
    }

    /// Queues the rows of a checked prediction; throws `ValidationError` when
    /// its question conflicts with the stored one or appears twice in the run.
    func write(_ prediction: CheckedPrediction) throws {
        let k = prediction.probabilities.count
        let questionID = try questions.resolve(database, dataset: prediction.dataset ?? defaultDataset,
                                               externalID: prediction.questionID, subject: prediction.subject,
                                               category: prediction.category,
                                               optionCount: k, label: prediction.label)
        guard written.insert(questionID) else {
            throw ValidationError("question '\(prediction.questionID)' appears twice in this run")
        }
        let top = prediction.probabilities.withUnsafeBufferPointer { p in
            if let scores = prediction.scores {
                return scores.withUnsafeBufferPointer { summary.add(label: prediction.label, probabilities: p, scores: $0) }
            }
            return summary.add(label: prediction.label, probabilities: p, scores: nil)
        }
        if prediction.rescaled { rescaledQueued += 1 }
        topQuestion.append(questionID)
        topPrediction.append(Int32(top.prediction))
        for option in 0..<k {
            rowQuestion.append(questionID)
            rowOption.append(Int32(option))
            rowProbability.append(prediction.probabilities[option])
            rowScore.append(prediction.scores?[option] ?? 0)
            rowHasScore.append(prediction.scores != nil)
        }
        if rowQuestion.count >= 4096 { try flush() }
    }

    /// Writes every queued row (and, first, the new questions they refer to),
    /// the top labels of their questions and their totals.
    func flush() throws {
        guard !rowQuestion.isEmpty else { return }
        try questions.flush(database)
        try optionInsert.insert(count: rowQuestion.count) { row, statement, first in
            statement.bind(runID, at: first)
            statement.bind(rowQuestion[row], at: first + 1)
            statement.bind(Int64(rowOption[row]), at: first + 2)
            statement.bind(rowProbability[row], at: first + 3)
            if rowHasScore[row] { statement.bind(rowScore[row], at: first + 4) } else { statement.bindNull(at: first + 4) }
        }
        try topInsert.insert(count: topQuestion.count) { row, statement, first in
            statement.bind(runID, at: first)
            statement.bind(topQuestion[row], at: first + 1)
            statement.bind(Int64(topPrediction[row]), at: first + 2)
        }
        try summary.write(to: database, runID: runID)
        if rescaledQueued > 0 {
            // Recorded with the run: how many rows were rounded or noisy enough to be rescaled.
            try database.execute("""
                INSERT INTO params(run_id, key, value) VALUES (?, 'track.rescaled_rows', ?)
                ON CONFLICT(run_id, key) DO UPDATE SET value = CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER)
                """, [.integer(runID), .text(String(rescaledQueued))])
        }
        dropQueued()
    }

    /// The enclosing transaction committed: what it wrote stays.
    func committed() {}

    /// The enclosing transaction rolled back: drop the queued rows and read back which
    /// questions the run has (what the rolled-back transaction wrote is gone), in memory that
    /// does not grow with the transaction. If the store cannot be read, no question is marked:
    /// the store's key on (run, question, option) still refuses a repeat.
    func rolledBack() {
        dropQueued()
        do { try readWritten() } catch { written = QuestionBitmap() }
    }

    private func dropQueued() {
        rowQuestion.removeAll(keepingCapacity: true)
        rowOption.removeAll(keepingCapacity: true)
        rowProbability.removeAll(keepingCapacity: true)
        rowScore.removeAll(keepingCapacity: true)
        rowHasScore.removeAll(keepingCapacity: true)
        topQuestion.removeAll(keepingCapacity: true)
        topPrediction.removeAll(keepingCapacity: true)
        summary = RunSummaryDelta()
        rescaledQueued = 0
    }
}

/// A prediction that passed validation, with the probabilities to store.
struct CheckedPrediction: Sendable {
    var questionID: String
    var label: Int
    var subject: String?
    var dataset: String?
    var category: String?
    var probabilities: [Double]
    var scores: [Double]?
    /// The probabilities were rescaled or clamped to form a distribution (rounding, float noise, --renormalize).
    var rescaled = false

    init(_ prediction: Prediction, probabilities: [Double], scores: [Double]?) {
        questionID = prediction.questionID
        label = prediction.label
        subject = prediction.subject
        dataset = prediction.dataset
        category = prediction.category
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

    mutating func remove(_ id: Int64) {
        let word = Int(id >> 6)
        if word < words.count { words[word] &= ~(UInt64(1) << UInt64(id & 63)) }
    }

    func contains(_ id: Int64) -> Bool {
        let word = Int(id >> 6)
        return word < words.count && words[word] & (UInt64(1) << UInt64(id & 63)) != 0
    }
}
