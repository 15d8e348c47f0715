import TrackCalibration

/// Validates predictions and writes them in long form (one row per option)
/// for one run. Must be used inside a transaction of its database.
final class PredictionWriter {
    let database: Database
    let runID: Int64
    let defaultDataset: String
    let validation: ValidationOptions
    let questions: QuestionIndex
    private var probabilities: [Double] = []
    private var scores: [Double] = []

    init(database: Database, runID: Int64, defaultDataset: String, validation: ValidationOptions,
         questions: QuestionIndex) {
        self.database = database
        self.runID = runID
        self.defaultDataset = defaultDataset
        self.validation = validation
        self.questions = questions
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

    /// Validates and writes one prediction.
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
        let statement = try optionInsert(count: k)
        for option in 0..<k {
            let base = Int32(option * 5)
            statement.bind(runID, at: base + 1)
            statement.bind(questionID, at: base + 2)
            statement.bind(option, at: base + 3)
            statement.bind(probabilities[option], at: base + 4)
            if hasScores { statement.bind(scores[option], at: base + 5) } else { statement.bindNull(at: base + 5) }
        }
        do {
            try statement.step()
            statement.reset()
        } catch {
            if error.isPrimaryKeyViolation {
                throw ValidationError("question '\(prediction.questionID)' appears twice in this run")
            }
            throw error
        }
    }

    /// One multi-row INSERT for the K options of a question.
    private func optionInsert(count: Int) throws -> Statement {
        let row = "(?, ?, ?, ?, ?)"
        let values = Array(repeating: row, count: count).joined(separator: ", ")
        return try database.cachedStatement(
            "INSERT INTO option_scores(run_id, question_id, option, prob, score) VALUES \(values)")
    }
}
