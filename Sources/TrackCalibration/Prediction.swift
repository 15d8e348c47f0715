/// The prediction model shared by logging, the store and the analyzers: one
/// `Prediction` per question as it is logged, and `PredictionSet` (the columnar
/// form the analyzers read) built from them or from stored rows.

/// The per-option values of one prediction as the input gave them.
public enum OptionValues: Sendable, Equatable {
    /// Probabilities over the K options: each in [0, 1], summing to 1.
    case probabilities([Double])
    /// Raw scores (logits or log-probabilities); softmax gives the probabilities.
    case scores([Double])

    public var count: Int {
        switch self {
        case .probabilities(let p): p.count
        case .scores(let s): s.count
        }
    }
}

/// One multiple-choice question answered by one run.
public struct Prediction: Sendable, Equatable {
    /// Stable external id of the question (doc_id, row id, …), unique within its dataset.
    public var questionID: String
    /// Gold option index, 0-based.
    public var label: Int
    public var values: OptionValues
    public var subject: String?
    /// The question's dataset; the run's dataset when nil.
    public var dataset: String?
    /// A grouping coarser than the subject (e.g. MMLU's `stem` for `abstract_algebra`).
    public var category: String?

    public init(questionID: String, label: Int, values: OptionValues,
                subject: String? = nil, dataset: String? = nil, category: String? = nil) {
        self.questionID = questionID
        self.label = label
        self.values = values
        self.subject = subject
        self.dataset = dataset
        self.category = category
    }
}

extension PredictionSet {
    /// The set of `predictions` in order: probabilities as given, scores through softmax
    /// (rows are not validated here; the store validates what it writes). Ids are the positions.
    public init(_ predictions: [Prediction]) {
        self.init()
        for (i, prediction) in predictions.enumerated() {
            switch prediction.values {
            case .probabilities(let p): append(id: Int64(i), label: prediction.label, probabilities: p)
            case .scores(let s): append(id: Int64(i), label: prediction.label, probabilities: Probabilities.softmax(s), scores: s)
            }
        }
    }
}
