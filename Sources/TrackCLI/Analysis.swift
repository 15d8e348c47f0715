import Foundation
import TrackCalibration
import TrackStore

/// Options shared by the commands that compute metrics.
struct AnalysisOptions {
    var bins = 10
    var epsilon = 0.01

    static let specs: [OptionSpec] = [
        .value("bins", "n", "Number of bins (default: 10)."),
        .value("epsilon", "x", "TACE threshold: only p > x count (default: 0.01)."),
    ]

    init(_ arguments: ParsedArguments) throws {
        // Ranges are checked once, by the parser (NumericOptions).
        if let bins = try arguments.int("bins") { self.bins = bins }
        if let epsilon = try arguments.double("epsilon") { self.epsilon = epsilon }
    }

    init() {}
}

/// Per-question grouping for `--by`.
enum GroupKey: String, CaseIterable {
    case subject, dataset

    func value(_ run: LoadedRun, _ i: Int) -> String {
        switch self {
        case .subject: run.subjects[i] ?? "(none)"
        case .dataset: run.datasets[i]
        }
    }
}

extension LoadedRun {
    /// The run split by subject or dataset, in name order.
    func grouped(by key: GroupKey) -> [(String, PredictionSet)] {
        var indices: [String: [Int]] = [:]
        for i in 0..<predictions.count { indices[key.value(self, i), default: []].append(i) }
        return indices.keys.sorted().map { ($0, predictions.subset(indices[$0]!)) }
    }
}

/// Metric columns of a report: their labels and which way is better.
enum MetricColumns {
    static let main = ["accuracy", "mean_confidence", "overconfidence", "conf_ece", "mce", "rmsce", "cw_ece", "pooled_ece", "brier", "nll"]
    static let adaptive = ["eq_mass_ece", "ace", "tace"]

    static func parse(_ text: String?) throws -> [String]? {
        guard let text else { return nil }
        let keys = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        for key in keys where !CalibrationMetrics.keys.contains(key) {
            throw UsageError(message: "unknown metric '\(key)'; known: \(CalibrationMetrics.keys.joined(separator: ", "))")
        }
        return keys
    }

    static func best(_ key: String) -> TextTable.Best? {
        switch key {
        case "accuracy": .highest
        case "overconfidence", "mean_confidence": nil
        default: .lowest
        }
    }
}

extension RunSummary {
    /// A run field by name (model, method, dataset, split, step, epoch, extraction; "none" is
    /// empty), as tables and curve families group runs; nil for other names.
    func field(_ name: String) -> String? {
        switch name {
        case "model": model ?? ""
        case "method": method ?? ""
        case "dataset": dataset ?? ""
        case "split": split ?? ""
        case "step": step.map(String.init) ?? ""
        case "epoch": epoch.map { JSONValue.format($0) } ?? ""
        case "extraction": extraction ?? ""
        case "none": ""
        default: nil
        }
    }
}
