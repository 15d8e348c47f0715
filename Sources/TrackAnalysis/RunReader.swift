import Foundation
import TrackCalibration
import TrackStore

/// The settings every binned metric shares (METHODS §2–§3).
public struct BinSettings: Sendable, Equatable {
    public var bins: Int
    /// TACE's threshold: only p > epsilon count.
    public var epsilon: Double
    public init(bins: Int = 10, epsilon: Double = 0.01) {
        self.bins = bins
        self.epsilon = epsilon
    }
}

/// Reads runs for the analyses: whole runs for paired work, and runs straight into
/// calibration analyzers. The store only reads rows; the parallelism (a second
/// connection reading the upper half of a large run) lives here, and that
/// connection waits for locks as long as the caller's store does.
public struct RunReader {
    /// The store read: a SQLite file or a PostgreSQL server.
    public let store: any RunWriting

    public init(_ store: any RunWriting) { self.store = store }

    /// Runs of fewer question ids than this are read in one scan.
    static let parallelThreshold: Int64 = 4096

    public func analyzer(named name: String, _ settings: BinSettings = BinSettings()) throws -> CalibrationAnalyzer {
        try analyzer(id: store.requireRun(name), name: name, settings)
    }

    /// Two halves of the run's question ids, read in parallel: this thread on the
    /// store's connection, a second on its own read-only connection; each half feeds
    /// its own builder and the halves join in question order.
    public func analyzer(id runID: Int64, name: String, _ settings: BinSettings = BinSettings()) throws -> CalibrationAnalyzer {
        var builder = CalibrationAnalyzer.Builder(bins: settings.bins, epsilon: settings.epsilon)
        guard let range = try store.questionIDRange(runID: runID) else { return builder.build() }
        // Arrays sized once for the whole run (the second half is appended in place): no
        // doubling copies, and no capacity beyond the run's questions.
        let shape = try store.storedShape(runID: runID)
        if let shape { builder.reserve(questions: shape.questions, options: shape.maxOptions) }
        guard range.upperBound - range.lowerBound >= Self.parallelThreshold else {
            try store.forEachQuestion(runID: runID, name: name) { builder.append(id: $0, label: $1, probabilities: $2, scores: $3) }
            return builder.build()
        }
        let middle = range.lowerBound + (range.upperBound - range.lowerBound) / 2 + 1
        var secondBuilder = CalibrationAnalyzer.Builder(bins: settings.bins, epsilon: settings.epsilon)
        if let shape { secondBuilder.reserve(questions: shape.questions / 2 + 1, options: shape.maxOptions) }
        let second = SecondHalf(secondBuilder)
        let group = DispatchGroup()
        // The second connection is opened on its own thread (its path or URI are constants).
        let box = ReaderBox(store)
        DispatchQueue.global().async(group: group) {
            do {
                try box.reader.parallelReader().forEachQuestion(runID: runID, name: name, in: middle...range.upperBound) {
                    second.builder.append(id: $0, label: $1, probabilities: $2, scores: $3)
                }
            } catch {
                second.error = error
            }
        }
        do {
            try store.forEachQuestion(runID: runID, name: name, in: range.lowerBound...(middle - 1)) {
                builder.append(id: $0, label: $1, probabilities: $2, scores: $3)
            }
        } catch {
            group.wait()
            throw error
        }
        group.wait()
        if let error = second.error { throw error }
        builder.append(contentsOf: second.builder)
        second.builder = CalibrationAnalyzer.Builder(bins: settings.bins, epsilon: settings.epsilon)  // its arrays freed before the sorts
        return builder.build()
    }

    /// A run's metrics for `keys`: from its stored summary when that answers them
    /// with these bins (accuracy and the like need no bins), else from a pass over
    /// its rows. `optionCount` is K when every question has K options.
    public func metrics(named name: String, _ settings: BinSettings = BinSettings(),
                        keys: Set<MetricKey>) throws -> (metrics: CalibrationMetrics, optionCount: Int?) {
        let id = try store.requireRun(name)
        if keys.isSubset(of: RunStore.storedMetricKeys), settings.bins == RunStore.storedBins || keys.allSatisfy({ !$0.definition.usesBins }) {
            var stored = try store.storedMetrics(runIDs: [id])[id] ?? CalibrationMetrics()
            stored.bins = settings.bins
            return (stored, try store.uniformOptionCount(runID: id))
        }
        let analyzer = try analyzer(id: id, name: name, settings)
        return (analyzer.metrics(smooth: !keys.isSubset(of: Set(MetricKey.resampled))), analyzer.set.uniformOptionCount)
    }

    /// A whole run with its questions' subjects, datasets and ids.
    public func load(_ name: String) throws -> LoadedRun {
        try store.loadRun(named: name, details: true)
    }
}

/// The store whose second connection the other thread opens.
private final class ReaderBox: @unchecked Sendable {
    let reader: any RunReading
    init(_ reader: any RunReading) { self.reader = reader }
}

/// The second half's builder (or error), filled on its thread and read after it ends.
private final class SecondHalf: @unchecked Sendable {
    var builder: CalibrationAnalyzer.Builder
    var error: (any Error)?
    init(_ builder: CalibrationAnalyzer.Builder) { self.builder = builder }
}

/// Per-question grouping (`--by`).
public enum GroupKey: String, CaseIterable, Sendable {
    case subject, category, dataset

    public func value(_ run: LoadedRun, _ i: Int) -> String {
        switch self {
        case .subject: run.subjects[i] ?? "(none)"
        case .category: run.categories[i] ?? "(none)"
        case .dataset: run.datasets[i]
        }
    }
}

extension LoadedRun {
    /// The run split by subject or dataset, in name order.
    public func grouped(by key: GroupKey) -> [(String, PredictionSet)] {
        var indices: [String: [Int]] = [:]
        for i in 0..<predictions.count { indices[key.value(self, i), default: []].append(i) }
        return indices.keys.sorted().map { ($0, predictions.subset(indices[$0]!)) }
    }
}

/// A field of a run by which tables group rows and curves group families.
public enum RunField: Hashable, Sendable, CustomStringConvertible {
    case model, method, dataset, split, step, epoch, extraction, none
    case param(String), tag(String)

    public static let plain: [RunField] = [.model, .method, .dataset, .split, .step, .epoch, .extraction, .none]

    /// `model`, `param:lr`, `tag:seed`, …; nil for an unknown name.
    public init?(_ text: String) {
        if text.hasPrefix("param:") { self = .param(String(text.dropFirst(6))); return }
        if text.hasPrefix("tag:") { self = .tag(String(text.dropFirst(4))); return }
        guard let field = Self.plain.first(where: { $0.description == text }) else { return nil }
        self = field
    }

    public var description: String {
        switch self {
        case .model: "model"
        case .method: "method"
        case .dataset: "dataset"
        case .split: "split"
        case .step: "step"
        case .epoch: "epoch"
        case .extraction: "extraction"
        case .none: "none"
        case .param(let key): "param:\(key)"
        case .tag(let key): "tag:\(key)"
        }
    }

    /// The machine name, as `--where` spells it: `model`, `params.lr`, `tags.seed`.
    public var key: String {
        switch self {
        case .param(let key): "params.\(key)"
        case .tag(let key): "tags.\(key)"
        default: description
        }
    }

    /// The column header: the key of a param or tag, else the capitalised name.
    public var header: String {
        switch self {
        case .param(let key), .tag(let key): key
        default: description.capitalized
        }
    }

    public var isParameter: Bool {
        if case .param = self { return true }
        return false
    }

    /// The field's value for a run ("" when unset).
    public func value(_ summary: RunSummary, params: [String: String] = [:], tags: [String: String] = [:]) -> String {
        switch self {
        case .model: summary.model ?? ""
        case .method: summary.method ?? ""
        case .dataset: summary.dataset ?? ""
        case .split: summary.split ?? ""
        case .step: summary.step.map(String.init) ?? ""
        case .epoch: summary.epoch.map { JSONValue.format($0) } ?? ""
        case .extraction: summary.extraction ?? ""
        case .none: ""
        case .param(let key): params[key] ?? ""
        case .tag(let key): tags[key] ?? ""
        }
    }
}

/// The metric columns of reports.
public enum MetricColumns {
    public static let main: [MetricKey] = [.accuracy, .meanConfidence, .overconfidence, .confECE, .mce, .rmsce, .cwECE,
                                           .pooledECE, .brier, .nll]
    public static let adaptive: [MetricKey] = [.equalMassECE, .ace, .tace, .smECE, .cwSmECE, .l2ECE, .debiasedL2ECE]

    public static func best(_ key: MetricKey) -> TextTable.Best? {
        key.higherIsBetter.map { $0 ? .highest : .lowest }
    }
}
