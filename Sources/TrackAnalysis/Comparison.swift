import Foundation
import TrackCalibration
import TrackStore

/// `track compare`: one base run against others.
public struct ComparisonRequest: Sendable {
    public var base: String
    public var others: [String]
    public var keys: [MetricKey] = MetricKey.allCases
    public var settings = BinSettings()
    public var groupBy: GroupKey = .subject
    /// The paired bootstrap on the shared questions (nil: none).
    public var bootstrap: BootstrapSettings? = BootstrapSettings()
    /// Differences with p below this are significant; intervals are at 1 − alpha.
    public var alpha = 0.05

    public init(base: String, others: [String]) {
        self.base = base
        self.others = others
    }
}

/// One metric of base and other: their values, the difference and the change rate.
public struct MetricDelta: Sendable {
    public var key: MetricKey
    public var base: Double?
    public var other: Double?
    /// other − base.
    public var delta: Double? { base.flatMap { b in other.map { $0 - b } } }
    /// The change rate of Oh & Hwang: (other − base) / |base| × 100 %.
    public var changeRatePercent: Double? { base.flatMap { b in other.flatMap { b != 0 ? ($0 - b) / abs(b) * 100 : nil } } }
}

/// A difference on the shared questions with its paired-bootstrap interval and p-value.
public struct PairedDifference: Sendable {
    public var key: MetricKey
    public var base: Double?
    public var other: Double?
    public var delta: Double? { base.flatMap { b in other.map { $0 - b } } }
    public var interval: Interval?
    public var p: Double?
}

/// McNemar's exact test of accuracy: b questions only the base answers right, c only the other.
public struct McNemar: Sendable {
    public var b: Int
    public var c: Int
    public var p: Double
    /// log10 p, exact where p is below the smallest double.
    public var log10P: Double
}

/// One other run compared with the base.
public struct RunComparison: Sendable {
    public var other: String
    public var deltas: [MetricDelta]
    public var paired: PairedComparison
    /// On the shared questions, when the request asked for the paired bootstrap.
    public var differences: [PairedDifference] = []
    public var mcnemar: McNemar?
    /// Every metric of both runs on the shared questions of each group (subject, category or
    /// dataset), in the groups' order: what changed where (e.g. conf-ECE by subject).
    public var groupDeltas: [(group: String, deltas: [MetricDelta])] = []
}

public struct ComparisonReport: Sendable {
    public var base: String
    public var groupBy: GroupKey
    public var comparisons: [RunComparison]
    public var alpha = 0.05
    public var bootstrap: BootstrapSettings?

    public var json: JSONValue {
        .array(comparisons.map { comparison in
            let metrics = comparison.deltas.map { d in
                JSONObject.Entry(key: d.key.rawValue, value: .object(JSONObject([
                    .init(key: "base", value: d.base.map(JSONValue.number) ?? .null),
                    .init(key: "other", value: d.other.map(JSONValue.number) ?? .null),
                    .init(key: "delta", value: d.delta.map(JSONValue.number) ?? .null),
                    .init(key: "change_rate_percent", value: d.changeRatePercent.map(JSONValue.number) ?? .null),
                ])))
            }
            var entries: [JSONObject.Entry] = [.init(key: "base", value: .string(base)),
                                               .init(key: "other", value: .string(comparison.other)),
                                               .init(key: "metrics", value: .object(JSONObject(metrics)))]
            if comparison.paired.total.n > 0 {
                entries.append(.init(key: "paired", value: comparison.paired.total.json))
                entries.append(.init(key: "paired_by_\(groupBy.rawValue)", value: .object(JSONObject(
                    comparison.paired.groups.map { .init(key: $0.0, value: $0.1.json) }))))
            }
            if !comparison.groupDeltas.isEmpty {
                entries.append(.init(key: "metrics_by_\(groupBy.rawValue)", value: .object(JSONObject(comparison.groupDeltas.map { group in
                    .init(key: group.group, value: .object(JSONObject(group.deltas.map { d in
                        .init(key: d.key.rawValue, value: .object(JSONObject([
                            .init(key: "base", value: d.base.map(JSONValue.number) ?? .null),
                            .init(key: "other", value: d.other.map(JSONValue.number) ?? .null),
                            .init(key: "delta", value: d.delta.map(JSONValue.number) ?? .null),
                        ])))
                    })))
                }))))
            }
            if !comparison.differences.isEmpty {
                entries.append(.init(key: "paired_tests", value: .object(JSONObject(comparison.differences.map { d in
                    .init(key: d.key.rawValue, value: .object(JSONObject([
                        .init(key: "base", value: d.base.map(JSONValue.number) ?? .null),
                        .init(key: "other", value: d.other.map(JSONValue.number) ?? .null),
                        .init(key: "delta", value: d.delta.map(JSONValue.number) ?? .null),
                        .init(key: "ci", value: d.interval.map { .array([.number($0.lower), .number($0.upper)]) } ?? .null),
                        .init(key: "ci_method", value: d.interval.map { .string($0.method.rawValue) } ?? .null),
                        .init(key: "p", value: d.p.map(JSONValue.number) ?? .null),
                        .init(key: "significant", value: d.p.map { .bool($0 < alpha) } ?? .null),
                    ])))
                }))))
            }
            if let test = comparison.mcnemar {
                entries.append(.init(key: "mcnemar", value: .object(JSONObject([
                    .init(key: "b", value: .number(Double(test.b))), .init(key: "c", value: .number(Double(test.c))),
                    .init(key: "p", value: .number(test.p)), .init(key: "log10_p", value: .number(test.log10P)),
                    .init(key: "significant", value: .bool(test.log10P < log10(alpha))),
                ]))))
            }
            return .object(JSONObject(entries))
        })
    }

    /// The parts of a comparison, each one table: `metrics` (each metric, base and other, delta,
    /// change rate), `tests` (paired-bootstrap differences and McNemar), `paired` (flips and
    /// Δconfidence on the shared questions), `groups` (the same by subject or dataset) and
    /// `group_metrics` (every metric of both runs and its change, by group).
    public static let tableNames = ["metrics", "tests", "paired", "groups", "group_metrics"]

    /// Every part, in `tableNames` order (a part without rows is an empty table).
    public func tables() -> [(name: String, table: TextTable)] {
        var metricRows: [[TextTable.Cell]] = [], pairedRows: [[TextTable.Cell]] = [], groupRows: [[TextTable.Cell]] = []
        for comparison in comparisons {
            for d in comparison.deltas {
                metricRows.append([.text(comparison.other), .text(d.key.rawValue), .number(d.base, digits: 4), .number(d.other, digits: 4),
                                   .number(d.delta, digits: 4), .number(d.changeRatePercent, digits: 1)])
            }
            guard comparison.paired.total.n > 0 else { continue }
            pairedRows.append([.text(comparison.other)] + comparison.paired.total.cells)
            for (group, stats) in comparison.paired.groups { groupRows.append([.text(comparison.other), .text(group)] + stats.cells) }
        }
        var result = [("metrics", TextTable(columns: ["run", "metric", "base", "other", "delta", "CR %"], rows: metricRows, caption: "base: \(base)"))]
        var testRows: [[TextTable.Cell]] = []
        for comparison in comparisons {
            for d in comparison.differences {
                testRows.append([.text(comparison.other), .text(d.key.rawValue), .number(d.base, digits: 4), .number(d.other, digits: 4),
                                 .number(d.delta, digits: 4), .number(d.interval?.lower, digits: 4), .number(d.interval?.upper, digits: 4),
                                 .pValue(d.p), .text(d.p.map { $0 < alpha ? "yes" : "no" })])
            }
            if let test = comparison.mcnemar {
                testRows.append([.text(comparison.other), .text("accuracy (McNemar exact, b=\(test.b) c=\(test.c))"), .text(nil), .text(nil),
                                 .text(nil), .text(nil), .text(nil), .pValue(test.p),
                                 .text(test.log10P < log10(alpha) ? "yes" : "no")])
            }
        }
        let level = Int(((1 - alpha) * 100).rounded())
        let resampling = bootstrap.map { "\($0.resamples) resamples, seed \($0.seed); " } ?? ""
        result.append(("tests", TextTable(columns: ["run", "metric", "base", "other", "delta", "delta_lo", "delta_hi", "p", "significant"], rows: testRows,
                                          caption: "is the difference real? paired on shared questions: \(level)% paired-bootstrap interval and p (\(resampling)binned errors: bin-bounded (RMSCE, MCE: norm-bounded), the rest percentile; METHODS §8); alpha \(JSONValue.format(alpha))")))
        result.append(("paired", TextTable(columns: ["run"] + PairedStats.columns, rows: pairedRows, caption: "paired on shared questions")))
        result.append(("groups", TextTable(columns: ["run", groupBy.rawValue] + PairedStats.columns, rows: groupRows, caption: "paired, by \(groupBy.rawValue)")))
        let groupMetricRows: [[TextTable.Cell]] = comparisons.flatMap { comparison in
            comparison.groupDeltas.flatMap { group in
                group.deltas.map { d -> [TextTable.Cell] in
                    [.text(comparison.other), .text(group.group), .text(d.key.rawValue), .number(d.base, digits: 4), .number(d.other, digits: 4),
                     .number(d.delta, digits: 4)]
                }
            }
        }
        result.append(("group_metrics", TextTable(columns: ["run", groupBy.rawValue, "metric", "base", "other", "delta"], rows: groupMetricRows,
                                                  caption: "every metric on the shared questions, by \(groupBy.rawValue)")))
        return result
    }

    /// Every table that has rows, in turn (JSON: the whole comparison); CSV holds one table, `table` (default
    /// `metrics`), so that pandas.read_csv loads it.
    public func text(_ format: OutputFormat, table: String? = nil) -> String {
        if format == .json { return json.jsonText + "\n" }
        let parts = tables()
        if format == .csv {
            // One table, even an empty one: its header says what it would hold.
            let name = table ?? "metrics"
            return (parts.first { $0.name == name } ?? parts[0]).table.render(.csv)
        }
        var text = parts.filter { !$0.table.rows.isEmpty && (table == nil || $0.name == table) }.map { $0.table.render(format) }.joined(separator: "\n")
        if table == nil, parts.contains(where: { $0.name == "paired" && $0.table.rows.isEmpty }) { text += "\n(no shared questions: no paired analysis)\n" }
        return text
    }
}

extension RunReader {
    public func compare(_ request: ComparisonRequest) throws -> ComparisonReport {
        let base = try load(request.base)
        let smooth = !Set(request.keys).isSubset(of: Set(MetricKey.resampled))
        let baseMetrics = CalibrationAnalyzer(base.predictions, bins: request.settings.bins, epsilon: request.settings.epsilon).metrics(smooth: smooth)
        var comparisons: [RunComparison] = []
        for name in request.others {
            let other = try load(name)
            let otherMetrics = CalibrationAnalyzer(other.predictions, bins: request.settings.bins, epsilon: request.settings.epsilon).metrics(smooth: smooth)
            var comparison = RunComparison(
                other: name, deltas: request.keys.map { MetricDelta(key: $0, base: baseMetrics[$0], other: otherMetrics[$0]) },
                paired: PairedComparison(base: base, other: other, groupKey: request.groupBy))
            if let bootstrap = request.bootstrap, comparison.paired.total.n > 0 {
                (comparison.differences, comparison.mcnemar) = Self.pairedTests(base, other, request, bootstrap)
            }
            if comparison.paired.groups.count > 1 {
                comparison.groupDeltas = Self.groupDeltas(base, other, request)
            }
            comparisons.append(comparison)
        }
        return ComparisonReport(base: base.name, groupBy: request.groupBy, comparisons: comparisons, alpha: request.alpha,
                                bootstrap: request.bootstrap)
    }

    /// Every metric of both runs on the shared questions of each group (the base run's group of the
    /// question), in group name order.
    static func groupDeltas(_ base: LoadedRun, _ other: LoadedRun, _ request: ComparisonRequest) -> [(group: String, deltas: [MetricDelta])] {
        var index: [Int64: Int] = [:]
        for (i, id) in base.predictions.questionIDs.enumerated() { index[id] = i }
        var rows: [String: (base: [Int], other: [Int])] = [:]
        for (j, id) in other.predictions.questionIDs.enumerated() {
            guard let i = index[id] else { continue }
            let group = request.groupBy.value(base, i)
            rows[group, default: ([], [])].base.append(i)
            rows[group, default: ([], [])].other.append(j)
        }
        let smooth = !Set(request.keys).isSubset(of: Set(MetricKey.resampled))
        return rows.keys.sorted().map { group in
            let (b, o) = rows[group]!
            let settings = request.settings
            let mb = CalibrationAnalyzer(base.predictions.subset(b), bins: settings.bins, epsilon: settings.epsilon).metrics(smooth: smooth)
            let mo = CalibrationAnalyzer(other.predictions.subset(o), bins: settings.bins, epsilon: settings.epsilon).metrics(smooth: smooth)
            return (group, request.keys.map { MetricDelta(key: $0, base: mb[$0], other: mo[$0]) })
        }
    }

    /// On the questions both runs answered (in one order, so that a seed draws the same
    /// Poisson weights for both): each metric's difference with its paired-bootstrap
    /// interval and p-value, and McNemar's exact test of accuracy.
    static func pairedTests(_ base: LoadedRun, _ other: LoadedRun, _ request: ComparisonRequest,
                            _ bootstrap: BootstrapSettings) -> ([PairedDifference], McNemar) {
        var index: [Int64: Int] = [:]
        for (i, id) in base.predictions.questionIDs.enumerated() { index[id] = i }
        var baseRows: [Int] = [], otherRows: [Int] = []
        for (j, id) in other.predictions.questionIDs.enumerated() {
            if let i = index[id] { baseRows.append(i); otherRows.append(j) }
        }
        let settings = request.settings
        let a = CalibrationAnalyzer(base.predictions.subset(baseRows), bins: settings.bins, epsilon: settings.epsilon)
        let b = CalibrationAnalyzer(other.predictions.subset(otherRows), bins: settings.bins, epsilon: settings.epsilon)
        let smooth = request.keys.contains(.smECE)
        let (ma, mb) = (a.metrics(smooth: smooth), b.metrics(smooth: smooth))
        let seed = UInt64(bitPattern: bootstrap.seed)
        // The means (and smECE) from the plain resamples; the binned errors from their cells.
        let ra = a.bootstrapResamples(resamples: bootstrap.resamples, seed: seed, smooth: smooth, binned: false)
        let rb = b.bootstrapResamples(resamples: bootstrap.resamples, seed: seed, smooth: smooth, binned: false)
        let keys = request.keys.filter { MetricKey.resampled.contains($0) || $0 == .smECE }
        let binned = PairedTests.binnedDifferences(base: a, other: b, resamples: bootstrap.resamples, seed: seed, level: 1 - request.alpha)
        let differences = keys.map { key -> PairedDifference in
            if let test = binned[key] {
                return PairedDifference(key: key, base: ma[key], other: mb[key], interval: test.interval, p: test.p)
            }
            let deltas = zip(ra, rb).compactMap { x, y -> Double? in
                guard let u = x?[key], let v = y?[key] else { return nil }
                return v - u
            }
            let test = PairedTests.bootstrapDifference(deltas, level: 1 - request.alpha)
            return PairedDifference(key: key, base: ma[key], other: mb[key], interval: test?.interval, p: test?.p)
        }
        var onlyBase = 0, onlyOther = 0
        for (x, y) in zip(a.correctness, b.correctness) {
            if x && !y { onlyBase += 1 }
            if !x && y { onlyOther += 1 }
        }
        let logP = PairedTests.mcnemarExactLog(b: onlyBase, c: onlyOther)
        return (differences, McNemar(b: onlyBase, c: onlyOther, p: exp(logP), log10P: logP / M_LN10))
    }
}

/// Per-question comparison of two runs over the questions they share.
public struct PairedStats: Sendable {
    public var n = 0
    public var baseCorrect = 0, otherCorrect = 0
    public var rightToWrong = 0, wrongToRight = 0
    public var sumDelta = 0.0, sumAbsDelta = 0.0

    public static let columns = ["n", "acc base", "acc other", "right→wrong", "wrong→right", "mean Δconf", "mean |Δconf|"]

    mutating func add(baseCorrect b: Bool, otherCorrect o: Bool, delta: Double) {
        n += 1
        if b { baseCorrect += 1 }
        if o { otherCorrect += 1 }
        if b && !o { rightToWrong += 1 }
        if !b && o { wrongToRight += 1 }
        sumDelta += delta
        sumAbsDelta += abs(delta)
    }

    public var cells: [TextTable.Cell] {
        let d = Double(max(n, 1))
        return [.integer(Int64(n)), .number(Double(baseCorrect) / d, digits: 4), .number(Double(otherCorrect) / d, digits: 4),
                .integer(Int64(rightToWrong)), .integer(Int64(wrongToRight)),
                .number(sumDelta / d, digits: 4), .number(sumAbsDelta / d, digits: 4)]
    }

    public var json: JSONValue {
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

public struct PairedComparison: Sendable {
    public var total = PairedStats()
    public var groups: [(String, PairedStats)] = []

    /// Pairs questions by their store id (same dataset and external id).
    public init(base: LoadedRun, other: LoadedRun, groupKey: GroupKey) {
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
