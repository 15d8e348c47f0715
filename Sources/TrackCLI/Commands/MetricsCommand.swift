import Foundation
import TrackCalibration
import TrackStore

/// `track metrics`: every calibration metric of stored runs.
enum MetricsCommand: Command {
    static let spec = CommandSpec(
        name: "metrics", abstract: "Compute calibration metrics of runs (conf-ECE, cw-ECE, Brier, NLL, …).",
        usage: "<run>... [--bins <n>] [--adaptive] [--ci] [--by subject|dataset] [--reliability] [--format table|csv|json|latex|markdown]",
        discussion: """
        Metrics (JSON keys): accuracy, mean_confidence, overconfidence, conf_ece, mce, rmsce,
        cw_ece (= SCE), eq_mass_ece, ace, tace, brier, nll; plus n, bins and nll_from_scores.
        Classwise metrics are null when a run's questions differ in option count.
        --adaptive adds the equal-mass metrics (eq_mass_ece, ace, tace) to the table; JSON
        always has every key. --ci adds percentile bootstrap intervals over questions
        (xoshiro256** seeded with --seed: the same seed gives the same interval everywhere).
        """,
        arguments: [("<run>...", "Run names (see `track runs`).")],
        options: SharedOptions.database + AnalysisOptions.specs + [
            .flag("adaptive", "Also show the equal-mass metrics (eq_mass_ece, ace, tace)."),
            .value("metrics", "keys", "Comma-separated metric keys to show."),
            .flag("ci", "Add bootstrap confidence intervals."),
            .value("resamples", "n", "Bootstrap resamples (default: 1000)."),
            .value("seed", "n", "Bootstrap seed (default: 0)."),
            .value("level", "x", "Interval level (default: 0.95)."),
            .value("by", "key", "Break down by question subject or dataset."),
            .flag("reliability", "Print the per-bin reliability tables (top label and classwise)."),
            .value("format", "format", "table, csv, json, latex or markdown (default: table)."),
            .value("out", "file", "Also write the output to this file."),
        ])

    struct Row {
        var run: String
        var group: String?
        var metrics: CalibrationMetrics
        var intervals: [String: Interval]
    }

    static func run(_ arguments: ParsedArguments) throws {
        guard !arguments.positionals.isEmpty else { throw UsageError(message: "expected at least one run name") }
        let format = try SharedOptions.outputFormat(arguments)
        let options = try AnalysisOptions(arguments)
        let groupBy = try arguments.value("by").map { text -> GroupKey in
            guard let key = GroupKey(rawValue: text) else { throw UsageError(message: "--by must be subject or dataset") }
            return key
        }
        let resamples = try arguments.int("resamples") ?? 1000
        let seed = try arguments.int("seed") ?? 0
        let level = try arguments.double("level") ?? 0.95
        var keys = try MetricColumns.parse(arguments.value("metrics"))
            ?? (MetricColumns.main + (arguments.flag("adaptive") ? MetricColumns.adaptive : []))
        if keys.isEmpty { keys = MetricColumns.main }

        let store = try SharedOptions.openStore(arguments, readOnly: true)
        var rows: [Row] = []
        var reliability = ""
        for name in arguments.positionals {
            var analyzers: [(String?, CalibrationAnalyzer)]
            if let groupBy {
                let run = try store.loadRun(named: name, details: true)
                analyzers = run.grouped(by: groupBy).map { ($0.0, CalibrationAnalyzer($0.1, bins: options.bins, epsilon: options.epsilon)) }
            } else {
                analyzers = [(nil, try store.analyzeRun(named: name, bins: options.bins, epsilon: options.epsilon))]
            }
            for (group, analyzer) in analyzers {
                let progress = ProgressLine("bootstrap \(name)\(group.map { " [\($0)]" } ?? "")")
                let intervals = arguments.flag("ci")
                    ? analyzer.bootstrap(resamples: resamples, seed: UInt64(bitPattern: Int64(seed)), level: level) { done, total in
                        progress.update(done: done, total: total)
                    } : [:]
                rows.append(Row(run: name, group: group, metrics: analyzer.metrics(), intervals: intervals))
                if arguments.flag("reliability") {
                    reliability += reliabilityText(name: name + (group.map { " [\($0)]" } ?? ""), analyzer: analyzer)
                }
            }
        }
        let text: String
        if format == .json {
            text = json(rows, groupBy: groupBy)
        } else {
            text = table(rows, keys: keys, groupBy: groupBy, ci: arguments.flag("ci"), level: level).render(format)
        }
        Console.out(text + (format == .table ? reliability : ""))
        if let out = arguments.value("out") { try writeExport(text, to: out) }
    }

    static func table(_ rows: [Row], keys: [String], groupBy: GroupKey?, ci: Bool, level: Double) -> TextTable {
        var columns = ["run"] + (groupBy.map { [$0.rawValue] } ?? []) + ["n"]
        var best: [TextTable.Best?] = Array(repeating: nil, count: columns.count)
        for key in keys {
            columns.append(CalibrationMetrics.labels[key] ?? key)
            best.append(MetricColumns.best(key))
            if ci {
                columns += ["lo", "hi"]
                best += [nil, nil]
            }
        }
        var table = TextTable(columns: columns, rows: rows.map { row in
            var cells: [TextTable.Cell] = [.text(row.run)]
            if groupBy != nil { cells.append(.text(row.group)) }
            cells.append(.integer(Int64(row.metrics.n)))
            for key in keys {
                cells.append(.number(row.metrics[key], digits: 4))
                if ci {
                    cells.append(.number(row.intervals[key]?.lower, digits: 4))
                    cells.append(.number(row.intervals[key]?.upper, digits: 4))
                }
            }
            return cells
        })
        table.best = best
        if ci { table.caption = "lo/hi: \(Int((level * 100).rounded()))% percentile bootstrap interval" }
        return table
    }

    static func json(_ rows: [Row], groupBy: GroupKey?) -> String {
        let objects: [JSONValue] = rows.map { row in
            var entries: [JSONObject.Entry] = [.init(key: "run", value: .string(row.run))]
            if let groupBy { entries.append(.init(key: groupBy.rawValue, value: row.group.map(JSONValue.string) ?? .null)) }
            entries.append(.init(key: "n", value: .number(Double(row.metrics.n))))
            entries.append(.init(key: "bins", value: .number(Double(row.metrics.bins))))
            for key in CalibrationMetrics.keys {
                entries.append(.init(key: key, value: row.metrics[key].map(JSONValue.number) ?? .null))
            }
            entries.append(.init(key: "nll_from_scores", value: .bool(row.metrics.nllFromScores)))
            if !row.intervals.isEmpty {
                let ci = CalibrationMetrics.keys.compactMap { key in
                    row.intervals[key].map { JSONObject.Entry(key: key, value: .array([.number($0.lower), .number($0.upper)])) }
                }
                entries.append(.init(key: "ci", value: .object(JSONObject(ci))))
            }
            return .object(JSONObject(entries))
        }
        return JSONValue.array(objects).jsonText + "\n"
    }

    static func reliabilityText(name: String, analyzer: CalibrationAnalyzer) -> String {
        func rows(_ bins: [BinRow]) -> [[TextTable.Cell]] {
            bins.map { [.text(String(format: "[%.2f, %.2f%@", $0.lower, $0.upper, $0.bin == analyzer.bins - 1 ? "]" : ")")),
                         .integer(Int64($0.count)), .number($0.accuracy, digits: 4), .number($0.confidence, digits: 4),
                         .number($0.gap, digits: 4)] }
        }
        var out = "\nreliability (top label): \(name)\n"
        out += TextTable(columns: ["bin", "n", "accuracy", "confidence", "gap"], rows: rows(analyzer.reliabilityBins())).render(.table)
        for (k, bins) in analyzer.classwiseBins().enumerated() {
            out += "\nclasswise, option \(optionLetter(k)): \(name)\n"
            out += TextTable(columns: ["bin", "n", "frequency", "mean p", "gap"], rows: rows(bins)).render(.table)
        }
        out += "\npooled (every question x option): \(name)\n"
        out += TextTable(columns: ["bin", "n", "frequency", "mean p", "gap"], rows: rows(analyzer.pooledClasswiseBins())).render(.table)
        return out
    }
}

/// "A", "B", … for option indexes.
func optionLetter(_ k: Int) -> String {
    k < 26 ? String(UnicodeScalar(UInt8(65 + k))) : String(k)
}

/// Writes an export, creating its folder; a failure says which file and why.
func writeExport(_ text: String, to path: String) throws {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw CommandFailure(message: "cannot write \(path): it is a directory")
    }
    do {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ""
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    } catch {
        throw CommandFailure(message: "cannot write \(path): \(fileErrorReason(error))")
    }
}

/// The operating system's reason behind a Foundation file error (e.g. "No space left on device").
func fileErrorReason(_ error: Error) -> String {
    let ns = error as NSError
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    return ns.localizedDescription
}
