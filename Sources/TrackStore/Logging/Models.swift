import TrackCalibration

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
    /// When the run started (ISO 8601, UTC); the time it is stored when nil. Ingested
    /// evaluations carry their own date (e.g. the harness's results file).
    public var startedAt: String?

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
