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

    /// The runs and their metrics as JSON: one object per run, metric keys as `track metrics` writes them.
    public var json: JSONValue {
        .array(runs.map { run in
            var entries: [JSONObject.Entry] = [
                .init(key: "run", value: .string(run.summary.name)),
                .init(key: "model", value: run.summary.model.map(JSONValue.string) ?? .null),
                .init(key: "method", value: run.summary.method.map(JSONValue.string) ?? .null),
                .init(key: "dataset", value: run.summary.dataset.map(JSONValue.string) ?? .null),
                .init(key: "split", value: run.summary.split.map(JSONValue.string) ?? .null),
                .init(key: "status", value: .string(run.summary.status.rawValue)),
                .init(key: "parent", value: run.detail.parent.map(JSONValue.string) ?? .null),
                .init(key: "n", value: .number(Double(run.summary.n))),
            ]
            for key in MetricKey.allCases where RunStore.storedMetricKeys.contains(key) {
                entries.append(.init(key: key.rawValue, value: run.metrics?[key].map(JSONValue.number) ?? .null))
            }
            entries.append(.init(key: "params", value: .object(JSONObject(run.params.keys.sorted().map { .init(key: $0, value: .string(run.params[$0]!)) }))))
            entries.append(.init(key: "tags", value: .object(JSONObject(run.tags.keys.sorted().map { .init(key: $0, value: .string(run.tags[$0]!)) }))))
            return .object(JSONObject(entries))
        })
    }
}

extension RunReader {
    public func reportData(_ filter: RunFilter = RunFilter()) throws -> ReportData {
        let summaries = try store.runSummaries(filter)
        let params = try store.keyValuesByRun("params"), tags = try store.keyValuesByRun("tags")
        let stored = try store.storedSummaries(runIDs: summaries.map(\.id))
        let runs = try summaries.map { summary in
            ReportData.Run(summary: summary, detail: try store.runDetail(runID: summary.id), params: params[summary.id] ?? [:],
                           tags: tags[summary.id] ?? [:], metrics: summary.n > 0 ? stored.metrics[summary.id] : nil,
                           bins: summary.n > 0 ? stored.bins[summary.id] ?? [] : [], logged: try store.loggedMetrics(runID: summary.id))
        }
        var tableRequest = PaperTableRequest()
        tableRequest.filter = filter
        let table = runs.contains { $0.metrics != nil } ? try paperTable(tableRequest) : nil
        let note = table?.crowdedNote.map { $0 + "; the runs table has them all." }
        return ReportData(runs: runs, paperTable: table?.table, paperTableNote: note)
    }
}
