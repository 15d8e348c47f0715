import Foundation
import TrackCalibration
import TrackStore

/// Bootstrap settings: percentile intervals over questions (METHODS §6).
public struct BootstrapSettings: Sendable, Equatable {
    public var resamples: Int
    public var seed: Int64
    public var level: Double
    public init(resamples: Int = 1000, seed: Int64 = 0, level: Double = 0.95) {
        self.resamples = resamples
        self.seed = seed
        self.level = level
    }
}

/// `track metrics` as a request: runs, bins, optional breakdown and intervals.
public struct MetricsRequest: Sendable {
    public var runs: [String]
    public var settings = BinSettings()
    public var groupBy: GroupKey?
    public var bootstrap: BootstrapSettings?
    /// Keep each analyzer's per-bin tables (reliability, classwise, pooled).
    public var reliability = false
    /// Also the smooth and ℓ2 metrics (smECE, cw-smECE, ℓ2 ECE), which search a bandwidth each.
    public var smooth = true

    public init(runs: [String]) { self.runs = runs }
}

/// One row of a metrics report: a run (or one group of it) with its metrics.
public struct MetricsRow: Sendable {
    public var run: String
    public var group: String?
    public var metrics: CalibrationMetrics
    public var intervals: [MetricKey: Interval]
    /// The test of calibration of each binned error (with intervals).
    public var tests: [MetricKey: CalibrationTest] = [:]
    /// The per-bin tables, when the request asked for them.
    public var bins: ReliabilityTables?
}

/// A run's per-bin tables: top label, one per class, and pooled.
public struct ReliabilityTables: Sendable {
    public var topLabel: [BinRow]
    public var classwise: [[BinRow]]
    public var pooled: [BinRow]
    public var binCount: Int

    public init(_ analyzer: CalibrationAnalyzer) {
        topLabel = analyzer.reliabilityBins()
        classwise = analyzer.classwiseBins()
        pooled = analyzer.pooledClasswiseBins()
        binCount = analyzer.bins
    }
}

/// The result of a metrics request, with the renderings `track metrics` prints.
public struct MetricsReport: Sendable {
    public var rows: [MetricsRow]
    public var groupBy: GroupKey?
    public var level: Double?

    /// A table of `keys`: with intervals, `_lo`/`_hi` columns (one name per quantity), or each value
    /// and its interval in one cell (`0.118 [0.111, 0.126]`, as papers print it) when `style` is given.
    public func table(keys: [MetricKey], intervalsInCells style: TextTable.IntervalStyle? = nil) -> TextTable {
        let ci = level != nil, inCells = ci && style != nil
        var columns = ["run"] + (groupBy.map { [$0.rawValue] } ?? []) + ["n"]
        var best: [TextTable.Best?] = Array(repeating: nil, count: columns.count)
        for key in keys {
            columns.append(inCells ? key.label : key.rawValue)
            best.append(MetricColumns.best(key))
            if ci, !inCells {
                columns += ["\(key.rawValue)_lo", "\(key.rawValue)_hi"]
                best += [nil, nil]
            }
        }
        if ci {
            columns.append(inCells ? "calibration p" : "calibration_p")
            best.append(nil)
        }
        var table = TextTable(columns: columns, rows: rows.map { row in
            var cells: [TextTable.Cell] = [.text(row.run)]
            if groupBy != nil { cells.append(.text(row.group)) }
            cells.append(.integer(Int64(row.metrics.n)))
            for key in keys {
                let interval = row.intervals[key]
                if let style, ci {
                    cells.append(.estimate(TextTable.Estimate(row.metrics[key], lower: interval?.lower, upper: interval?.upper, digits: 4, style: style)))
                    continue
                }
                cells.append(.number(row.metrics[key], digits: 4))
                if ci { cells += [.number(interval?.lower, digits: 4), .number(interval?.upper, digits: 4)] }
            }
            if ci { cells.append(.text(row.tests[.confECE].map { PairedTests.format($0.p) })) }
            return cells
        })
        table.best = best
        if let level { table.caption = Self.intervalCaption(level: level, keys: keys, rows: rows, style: inCells ? style : nil) }
        return table
    }

    /// What the intervals are, and where a lower end of 0 comes from the test.
    static func intervalCaption(level: Double, keys: [MetricKey], rows: [MetricsRow], style: TextTable.IntervalStyle? = nil) -> String {
        var methods: [IntervalMethod: [MetricKey]] = [:]
        for key in keys {
            if let method = rows.lazy.compactMap({ $0.intervals[key]?.method }).first { methods[method, default: []].append(key) }
        }
        let percent = Int((level * 100).rounded())
        let named = switch style { case nil: "_lo/_hi: "; case .brackets: "[lower, upper]: "; case .pm: "±: half the width of the " }
        let low = style == nil ? "_lo" : "lower end", test = style == nil ? "calibration_p" : "calibration p"
        var caption = "\(named)\(percent)% intervals: " + IntervalMethod.allCases.compactMap { method in
            methods[method].map { "\(method.rawValue) (\($0.map(\.rawValue).joined(separator: ", ")))" }
        }.joined(separator: "; ") + " (METHODS §3)"
        caption += "\n\(test): test of H0 'perfectly calibrated' (consistency resampling, statistic conf_ece); "
        caption += "where it is not below \(JSONValue.format(((1 - level) * 1e9).rounded() / 1e9)) a binned error's \(low) is 0: the data cannot tell it from a calibrated run"
        return caption
    }

    /// Every key of every row, with intervals under "ci".
    public var json: JSONValue {
        .array(rows.map { row in
            var entries: [JSONObject.Entry] = [.init(key: "run", value: .string(row.run))]
            if let groupBy { entries.append(.init(key: groupBy.rawValue, value: row.group.map(JSONValue.string) ?? .null)) }
            entries.append(.init(key: "n", value: .number(Double(row.metrics.n))))
            entries.append(.init(key: "bins", value: .number(Double(row.metrics.bins))))
            for key in MetricKey.allCases {
                entries.append(.init(key: key.rawValue, value: row.metrics[key].map(JSONValue.number) ?? .null))
            }
            entries.append(.init(key: "smece_sigma", value: row.metrics.smECEBandwidth.map(JSONValue.number) ?? .null))
            entries.append(.init(key: "nll_from_scores", value: .bool(row.metrics.nllFromScores)))
            if !row.intervals.isEmpty {
                let ci = MetricKey.allCases.compactMap { key in
                    row.intervals[key].map { JSONObject.Entry(key: key.rawValue, value: .array([.number($0.lower), .number($0.upper)])) }
                }
                entries.append(.init(key: "ci", value: .object(JSONObject(ci))))
                entries.append(.init(key: "ci_method", value: .object(JSONObject(MetricKey.allCases.compactMap { key in
                    row.intervals[key].map { JSONObject.Entry(key: key.rawValue, value: .string($0.method.rawValue)) }
                }))))
                entries.append(.init(key: "ci_at_boundary", value: .array(MetricKey.allCases.filter { row.intervals[$0]?.atBoundary == true }
                    .map { .string($0.rawValue) })))
            }
            if let test = row.tests[.confECE] {
                entries.append(.init(key: "calibration_test", value: test.json))
                entries.append(.init(key: "calibration_tests", value: .object(JSONObject(MetricKey.allCases.compactMap { key in
                    row.tests[key].map { JSONObject.Entry(key: key.rawValue, value: $0.json) }
                }))))
            }
            return .object(JSONObject(entries))
        })
    }

    /// The per-bin tables as text (top label, each class, pooled), for every row that has them.
    public var reliabilityText: String {
        var out = ""
        for row in rows {
            guard let tables = row.bins else { continue }
            let name = row.run + (row.group.map { " [\($0)]" } ?? "")
            func cells(_ bins: [BinRow]) -> [[TextTable.Cell]] {
                bins.map { [.text(String(format: "[%.2f, %.2f%@", $0.lower, $0.upper, $0.bin == tables.binCount - 1 ? "]" : ")")),
                             .integer(Int64($0.count)), .number($0.accuracy, digits: 4), .number($0.confidence, digits: 4),
                             .number($0.gap, digits: 4)] }
            }
            out += "\nreliability (top label): \(name)\n"
            out += TextTable(columns: ["bin", "n", "accuracy", "confidence", "gap"], rows: cells(tables.topLabel)).render(.table)
            for (k, bins) in tables.classwise.enumerated() {
                out += "\nclasswise, option \(optionLetter(k)): \(name)\n"
                out += TextTable(columns: ["bin", "n", "frequency", "mean p", "gap"], rows: cells(bins)).render(.table)
            }
            out += "\npooled (every question x option): \(name)\n"
            out += TextTable(columns: ["bin", "n", "frequency", "mean p", "gap"], rows: cells(tables.pooled)).render(.table)
        }
        return out
    }
}

/// Reports progress of long work: `(done, total, what)`; called from any thread.
public typealias ProgressHandler = @Sendable (Int, Int, String) -> Void

extension RunReader {
    /// Every metric of each run (or each group of it), with bootstrap intervals when asked.
    public func metrics(_ request: MetricsRequest, progress: ProgressHandler? = nil) throws -> MetricsReport {
        var rows: [MetricsRow] = []
        for name in request.runs {
            var analyzers: [(String?, CalibrationAnalyzer)]
            if let groupBy = request.groupBy {
                let run = try load(name)
                analyzers = run.grouped(by: groupBy).map {
                    ($0.0, CalibrationAnalyzer($0.1, bins: request.settings.bins, epsilon: request.settings.epsilon))
                }
            } else {
                analyzers = [(nil, try analyzer(named: name, request.settings))]
            }
            for (group, analyzer) in analyzers {
                var report = IntervalReport()
                if let bootstrap = request.bootstrap {
                    let label = "bootstrap \(name)\(group.map { " [\($0)]" } ?? "")"
                    report = analyzer.intervals(resamples: bootstrap.resamples, seed: UInt64(bitPattern: bootstrap.seed),
                                                level: bootstrap.level, smooth: request.smooth) { done, total in progress?(done, total, label) }
                }
                rows.append(MetricsRow(run: name, group: group, metrics: analyzer.metrics(smooth: request.smooth), intervals: report.intervals,
                                       tests: report.tests, bins: request.reliability ? ReliabilityTables(analyzer) : nil))
            }
        }
        return MetricsReport(rows: rows, groupBy: request.groupBy, level: request.bootstrap?.level)
    }
}

extension CalibrationTest {
    /// `{"p": …, "statistic": …, "method": …}` (and the resamples).
    public var json: JSONValue {
        .object(JSONObject([
            .init(key: "p", value: .number(p)), .init(key: "statistic", value: .number(statistic)),
            .init(key: "resamples", value: .number(Double(resamples))), .init(key: "method", value: .string(method)),
        ]))
    }
}
