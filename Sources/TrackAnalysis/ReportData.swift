import Foundation
import TrackCalibration
import TrackStore

/// What a browsable report (or any other front end) shows of a store: every run with
/// its metadata, stored metrics and logged scalars, and the paper table over them.
/// Read from the stored summaries, so it costs one pass over the run tables, not the rows.
public struct ReportData: Sendable {
    public struct Run: Sendable {
        public var summary: RunSummary
        public var detail: RunDetail
        public var params: [String: String]
        public var tags: [String: String]
        /// Every metric the stored summary answers (10 bins); nil for an empty run.
        public var metrics: CalibrationMetrics?
        /// Its top-label reliability bins (10), from the same stored totals; empty for an empty run.
        public var bins: [BinRow]
        public var logged: [LoggedMetricSummary]
    }

    public var runs: [Run]
    /// Table 2 over the runs, when they have metrics.
    public var paperTable: TextTable?
    /// What Table 2 leaves out: cells that hold several runs (e.g. epochs) show the latest.
    public var paperTableNote: String?

    /// The runs and their metrics as JSON: one object per run (`Run.json`).
    public var json: JSONValue { .array(runs.map(\.json)) }
}

extension ReportData.Run {
    /// Every field, the stored metrics (keys as `track metrics` writes them), params and tags.
    public var json: JSONValue {
        var entries: [JSONObject.Entry] = ["run", "model", "method", "dataset", "split", "step", "epoch", "extraction", "status",
                                           "experiment", "parent", "n"].map { .init(key: $0, value: cell($0).json) }
        for key in MetricKey.allCases where RunStore.storedMetricKeys.contains(key) {
            entries.append(.init(key: key.rawValue, value: metrics?[key].map(JSONValue.number) ?? .null))
        }
        entries.append(.init(key: "params", value: .object(JSONObject(params.keys.sorted().map { .init(key: $0, value: .string(params[$0]!)) }))))
        entries.append(.init(key: "tags", value: .object(JSONObject(tags.keys.sorted().map { .init(key: $0, value: .string(tags[$0]!)) }))))
        return .object(JSONObject(entries))
    }

    /// One column of the run as `track runs` shows it: a field, a stored metric, `params.KEY` or `tags.KEY`.
    public func cell(_ column: String) -> TextTable.Cell {
        let s = summary
        switch column.lowercased() {
        case "run", "name": return .text(s.name)
        case "model": return .text(s.model)
        case "method": return .text(s.method)
        case "dataset": return .text(s.dataset)
        case "split": return .text(s.split)
        case "step": return .integer(s.step.map(Int64.init))
        case "epoch": return .real(s.epoch)
        case "extraction": return .text(s.extraction)
        case "status": return .text(s.status.rawValue)
        case "experiment": return .text(detail.experiment)
        case "parent": return .text(detail.parent)
        case "n": return .integer(Int64(s.n))
        case "accuracy": return .number(s.accuracy, digits: 4)
        case "mean_confidence": return .number(s.meanConfidence, digits: 4)
        case "overconfidence": return .number(s.accuracy.flatMap { a in s.meanConfidence.map { $0 - a } }, digits: 4)
        default:
            if column.hasPrefix("params.") { return .text(params[String(column.dropFirst(7))]) }
            if column.hasPrefix("tags.") { return .text(tags[String(column.dropFirst(5))]) }
            if let key = MetricKey(rawValue: column.lowercased()) { return .number(metrics?[key], digits: 4) }
            return .text(nil)
        }
    }
}

extension RunReader {
    /// The runs a filter selects with their metadata, stored metrics and bins, params, tags and
    /// (with `logged`) logged scalars: read from the stored summaries, not the rows.
    public func runRecords(_ filter: RunFilter = RunFilter(), logged: Bool = true) throws -> [ReportData.Run] {
        let summaries = try store.runSummaries(filter)
        guard !summaries.isEmpty else { return [] }
        let params = try store.keyValuesByRun("params"), tags = try store.keyValuesByRun("tags")
        let stored = try store.storedSummaries(runIDs: summaries.map(\.id))
        return try summaries.map { summary in
            ReportData.Run(summary: summary, detail: try store.runDetail(runID: summary.id), params: params[summary.id] ?? [:],
                           tags: tags[summary.id] ?? [:], metrics: summary.n > 0 ? stored.metrics[summary.id] : nil,
                           bins: summary.n > 0 ? stored.bins[summary.id] ?? [] : [],
                           logged: logged ? try store.loggedMetrics(runID: summary.id) : [])
        }
    }

    public func reportData(_ filter: RunFilter = RunFilter()) throws -> ReportData {
        let runs = try runRecords(filter)
        var tableRequest = PaperTableRequest()
        tableRequest.filter = filter
        let table = runs.contains { $0.metrics != nil } ? try paperTable(tableRequest) : nil
        let note = table?.crowdedNote.map { $0 + "; the runs table has them all." }
        return ReportData(runs: runs, paperTable: table?.table, paperTableNote: note)
    }
}
