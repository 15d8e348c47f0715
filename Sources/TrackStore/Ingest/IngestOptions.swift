/// The input formats `track ingest` reads.
public enum IngestFormat: String, Sendable, CaseIterable {
    case auto
    case jsonl
    case csv
    case lmEval = "lm-eval"
    case npy
}

/// What `track ingest` was asked to do with a file.
public struct IngestOptions: Sendable {
    public var format: IngestFormat = .auto
    /// Run metadata from flags. An empty name means: derive it from the file.
    public var metadata = RunMetadata(name: "")
    /// Skip (and report) bad rows instead of refusing the file.
    public var skipInvalid = false
    /// Ingest a file again although its SHA-256 is already stored, replacing its runs.
    public var force = false
    public var validation = ValidationOptions()
    /// Labels for `.npy` input: another `.npy` (1-D integers) or a text file of one label per line.
    public var labelsPath: String?
    /// Progress of reading a file: (bytes read, the file's size).
    public var progress: (@Sendable (Int, Int) -> Void)?

    public init() {}
}

/// What one ingested file produced.
public struct IngestReport: Sendable {
    public struct RunReport: Sendable, Equatable {
        public var name: String
        public var questions: Int
    }
    public var file: String
    public var format: IngestFormat
    public var sha256: String
    public var runs: [RunReport] = []
    /// Rows skipped with `--skip-invalid`, each with file, line and reason.
    public var skipped: [InputError] = []
    /// Non-empty when the file had been ingested before and nothing changed.
    public var alreadyIngestedAs: [String] = []
    /// Runs replaced because of `--force`.
    public var replaced: [String] = []
    /// Things the user should know about the input that did not stop it (e.g. a results file
    /// beside the samples that is not one, so their accuracy could not be checked).
    public var notes: [String] = []
}
