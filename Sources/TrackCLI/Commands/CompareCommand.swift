import Foundation
import TrackCalibration
import TrackStore

/// `track compare`: one run against others, metric by metric and question by question.
enum CompareCommand: Command {
    static let spec = CommandSpec(
        name: "compare", abstract: "Compare runs with a base run: metric deltas, change rates, paired per-question analyses.",
        usage: "<base> <other>... [--bins <n>] [--metrics <keys>] [--by subject|dataset] [--format table|csv|json|latex|markdown]",
        discussion: """
        For every metric: base, other, delta = other − base, and the change rate of Oh & Hwang,
        CR = (other − base) / base × 100%. When the runs share questions (same dataset and id),
        also the paired analysis on the shared questions: answers flipped right→wrong and
        wrong→right, mean Δconf and mean |Δconf|, broken down by subject (or --by dataset).
        """,
        arguments: [("<base>", "The reference run (e.g. the pre-alignment model)."), ("<other>...", "Runs to compare with it.")],
        options: SharedOptions.database + AnalysisOptions.specs + [
            .value("metrics", "keys", "Comma-separated metric keys (default: all)."),
            .value("by", "key", "Paired breakdown by subject (default) or dataset."),
            .value("format", "format", "table, csv, json, latex or markdown (default: table)."),
            .value("out", "file", "Also write the output to this file."),
        ])

    static func run(_ arguments: ParsedArguments) throws {
        guard arguments.positionals.count >= 2 else { throw UsageError(message: "expected a base run and at least one other run") }
        let format = try SharedOptions.outputFormat(arguments)
        let options = try AnalysisOptions(arguments)
        let keys = try MetricColumns.parse(arguments.value("metrics")) ?? CalibrationMetrics.keys
        let groupKey = try GroupKey(rawValue: arguments.value("by") ?? "subject")
            ?? { throw UsageError(message: "--by must be subject or dataset") }()
        let store = try SharedOptions.openStore(arguments, readOnly: true)
        let base = try store.loadRun(named: arguments.positionals[0], details: true)
        let baseMetrics = CalibrationAnalyzer(base.predictions, bins: options.bins, epsilon: options.epsilon).metrics()

        var metricRows: [[TextTable.Cell]] = []
        var pairedRows: [[TextTable.Cell]] = []
        var groupRows: [[TextTable.Cell]] = []
        var json: [JSONValue] = []
        for name in arguments.positionals.dropFirst() {
            let other = try store.loadRun(named: name, details: true)
            let otherAnalyzer = CalibrationAnalyzer(other.predictions, bins: options.bins, epsilon: options.epsilon)
            let otherMetrics = otherAnalyzer.metrics()
            var metricJSON: [JSONObject.Entry] = []
            for key in keys {
                let b = baseMetrics[key], o = otherMetrics[key]
                let delta = b.flatMap { b in o.map { $0 - b } }
                let rate = b.flatMap { b in o.flatMap { b != 0 ? ($0 - b) / abs(b) * 100 : nil } }
                metricRows.append([.text(name), .text(key), .number(b, digits: 4), .number(o, digits: 4),
                                   .number(delta, digits: 4), .number(rate, digits: 1)])
                metricJSON.append(.init(key: key, value: .object(JSONObject([
                    .init(key: "base", value: b.map(JSONValue.number) ?? .null),
                    .init(key: "other", value: o.map(JSONValue.number) ?? .null),
                    .init(key: "delta", value: delta.map(JSONValue.number) ?? .null),
                    .init(key: "change_rate_percent", value: rate.map(JSONValue.number) ?? .null),
                ]))))
            }
            let paired = PairedComparison(base: base, other: other, groupKey: groupKey)
            var entries: [JSONObject.Entry] = [.init(key: "base", value: .string(base.name)),
                                               .init(key: "other", value: .string(name)),
                                               .init(key: "metrics", value: .object(JSONObject(metricJSON)))]
            if paired.total.n > 0 {
                pairedRows.append([.text(name)] + paired.total.cells)
                for (group, stats) in paired.groups { groupRows.append([.text(name), .text(group)] + stats.cells) }
                entries.append(.init(key: "paired", value: paired.total.json))
                entries.append(.init(key: "paired_by_\(groupKey.rawValue)", value: .object(JSONObject(
                    paired.groups.map { .init(key: $0.0, value: $0.1.json) }))))
            }
            json.append(.object(JSONObject(entries)))
        }

        var text: String
        if format == .json {
            text = JSONValue.array(json).jsonText + "\n"
        } else {
            var metricsTable = TextTable(columns: ["run", "metric", "base", "other", "delta", "CR %"], rows: metricRows)
            metricsTable.caption = "base: \(base.name)"
            text = metricsTable.render(format)
            if !pairedRows.isEmpty {
                text += "\n" + TextTable(columns: ["run"] + PairedStats.columns, rows: pairedRows)
                    .withCaption("paired on shared questions").render(format)
                text += "\n" + TextTable(columns: ["run", groupKey.rawValue] + PairedStats.columns, rows: groupRows)
                    .withCaption("paired, by \(groupKey.rawValue)").render(format)
            } else {
                text += "\n(no shared questions: no paired analysis)\n"
            }
        }
        Console.out(text)
        if let out = arguments.value("out") { try writeExport(text, to: out) }
    }
}

extension TextTable {
    func withCaption(_ caption: String) -> TextTable {
        var copy = self
        copy.caption = caption
        return copy
    }
}

/// Per-question comparison of two runs over the questions they share.
struct PairedStats {
    var n = 0
    var baseCorrect = 0, otherCorrect = 0
    var rightToWrong = 0, wrongToRight = 0
    var sumDelta = 0.0, sumAbsDelta = 0.0

    static let columns = ["n", "acc base", "acc other", "right→wrong", "wrong→right", "mean Δconf", "mean |Δconf|"]

    mutating func add(baseCorrect b: Bool, otherCorrect o: Bool, delta: Double) {
        n += 1
        if b { baseCorrect += 1 }
        if o { otherCorrect += 1 }
        if b && !o { rightToWrong += 1 }
        if !b && o { wrongToRight += 1 }
        sumDelta += delta
        sumAbsDelta += abs(delta)
    }

    var cells: [TextTable.Cell] {
        let d = Double(max(n, 1))
        return [.integer(Int64(n)), .number(Double(baseCorrect) / d, digits: 4), .number(Double(otherCorrect) / d, digits: 4),
                .integer(Int64(rightToWrong)), .integer(Int64(wrongToRight)),
                .number(sumDelta / d, digits: 4), .number(sumAbsDelta / d, digits: 4)]
    }

    var json: JSONValue {
        let d = Double(max(n, 1))
        return .object(JSONObject([
            .init(key: "n", value: .number(Double(n))),
            .init(key: "accuracy_base", value: .number(Double(baseCorrect) / d)),
            .init(key: "accuracy_other", value: .number(Double(otherCorrect) / d)),
            .init(key: "right_to_wrong", value: .number(Double(rightToWrong))),
            .init(key: "wrong_to_right", value: .number(Double(wrongToRight))),
            .init(key: "mean_delta_confidence", value: .number(sumDelta / d)),
            .init(key: "mean_abs_delta_confidence", value: .number(sumAbsDelta / d)),
        ]))
    }
}

struct PairedComparison {
    var total = PairedStats()
    var groups: [(String, PairedStats)] = []

    /// Pairs questions by their store id (same dataset and external id).
    init(base: LoadedRun, other: LoadedRun, groupKey: GroupKey) {
        let baseAnalyzer = CalibrationAnalyzer(base.predictions)
        let otherAnalyzer = CalibrationAnalyzer(other.predictions)
        var index: [Int64: Int] = [:]
        for (i, id) in base.predictions.questionIDs.enumerated() { index[id] = i }
        var byGroup: [String: PairedStats] = [:]
        for (j, id) in other.predictions.questionIDs.enumerated() {
            guard let i = index[id] else { continue }
            let delta = otherAnalyzer.confidences[j] - baseAnalyzer.confidences[i]
            let b = baseAnalyzer.correctness[i], o = otherAnalyzer.correctness[j]
            total.add(baseCorrect: b, otherCorrect: o, delta: delta)
            byGroup[groupKey.value(base, i), default: PairedStats()].add(baseCorrect: b, otherCorrect: o, delta: delta)
        }
        groups = byGroup.keys.sorted().map { ($0, byGroup[$0]!) }
    }
}
