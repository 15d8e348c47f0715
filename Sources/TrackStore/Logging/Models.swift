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

    public init(questionID: String, label: Int, values: OptionValues,
                subject: String? = nil, dataset: String? = nil) {
        self.questionID = questionID
        self.label = label
        self.values = values
        self.subject = subject
        self.dataset = dataset
    }
}

/// Where a run is in its life (the `runs.status` column).
public enum RunStatus: String, Sendable, Equatable, CaseIterable {
    /// Being written, or left by a writer that stopped without finishing (see `--append`).
    case running
    case finished
    /// Its input had a bad row; the valid rows before it are kept.
    case failed
}

/// What describes a run: where it came from and what it measured.
public struct RunMetadata: Sendable, Equatable {
    public var name: String
    public var experiment: String?
    public var model: String?
    public var method: String?
    public var dataset: String?
    public var split: String?
    public var step: Int?
    public var epoch: Double?
    /// How option scores were obtained: `choice`, `continuation-sum`,
    /// `continuation-min`, `continuation-mean` or `probability`.
    public var extraction: String?
    public var parentRunID: Int64?
    public var params: [String: String]
    public var tags: [String: String]
    public var sourceFile: String?
    public var sourceSHA256: String?
    public var sourceFormat: String?

    public init(name: String, experiment: String? = nil, model: String? = nil, method: String? = nil,
                dataset: String? = nil, split: String? = nil, step: Int? = nil, epoch: Double? = nil,
                extraction: String? = nil, parentRunID: Int64? = nil,
                params: [String: String] = [:], tags: [String: String] = [:],
                sourceFile: String? = nil, sourceSHA256: String? = nil, sourceFormat: String? = nil) {
        self.name = name
        self.experiment = experiment
        self.model = model
        self.method = method
        self.dataset = dataset
        self.split = split
        self.step = step
        self.epoch = epoch
        self.extraction = extraction
        self.parentRunID = parentRunID
        self.params = params
        self.tags = tags
        self.sourceFile = sourceFile
        self.sourceSHA256 = sourceSHA256
        self.sourceFormat = sourceFormat
    }

    /// The known confidence-extraction methods (METHODS §1).
    public static let extractionMethods = ["choice", "continuation-sum", "continuation-min",
                                           "continuation-mean", "probability"]
}

/// How rows are checked on the way in.
public struct ValidationOptions: Sendable, Equatable {
    /// Rescale probability rows that do not sum to 1 instead of refusing them.
    public var renormalize: Bool
    /// Tolerance on `|Σ p − 1|`.
    public var tolerance: Double

    public init(renormalize: Bool = false, tolerance: Double = 1e-6) {
        self.renormalize = renormalize
        self.tolerance = tolerance
    }
}
