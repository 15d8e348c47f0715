import Foundation
import TrackStore

/// One run as `track show` (and a report) presents it: metadata, provenance, summary,
/// params, tags and the last value of each logged scalar.
public struct RunCard: Sendable {
    public var summary: RunSummary
    public var detail: RunDetail
    public var params: [(String, String)]
    public var tags: [(String, String)]
    public var logged: [LoggedMetricSummary]

    /// The run named `name`, or nil when there is none.
    public init?(store: any RunReading, name: String) throws {
        var filter = RunFilter()
        filter.names = [name]
        guard let summary = try store.runSummaries(filter).first else { return nil }
        self.summary = summary
        detail = try store.runDetail(runID: summary.id)
        params = try store.keyValues("params", runID: summary.id)
        tags = try store.keyValues("tags", runID: summary.id)
        logged = try store.loggedMetrics(runID: summary.id)
    }

    /// Labelled fields in display order (absent ones left out of the text).
    var fields: [(String, String?)] {
        [("uuid", detail.uuid), ("experiment", detail.experiment), ("model", summary.model), ("method", summary.method),
         ("dataset", summary.dataset), ("split", summary.split), ("step", summary.step.map(String.init)),
         ("epoch", summary.epoch.map { JSONValue.format($0) }), ("extraction", summary.extraction),
         ("parent", detail.parent), ("status", summary.status.rawValue), ("started", detail.startedAt), ("finished", detail.finishedAt),
         ("source", detail.sourceFile), ("sha256", detail.sourceSHA256), ("format", detail.sourceFormat)]
    }

    public var text: String {
        // The same names as the JSON keys, aligned.
        func line(_ key: String, _ value: String) -> String { (key + ":").padding(toLength: 18, withPad: " ", startingAt: 0) + value + "\n" }
        var out = line("run", summary.name)
        for (key, value) in fields {
            guard let value else { continue }
            out += line(key, value)
        }
        out += line("n", String(summary.n))
        if let accuracy = summary.accuracy, let confidence = summary.meanConfidence {
            out += line("accuracy", String(format: "%.4f", accuracy)) + line("mean_confidence", String(format: "%.4f", confidence))
                + line("overconfidence", String(format: "%+.4f", confidence - accuracy))
        }
        for (table, pairs) in [("params", params), ("tags", tags)] where !pairs.isEmpty {
            out += "\(table):\n"
            for (key, value) in pairs { out += "  \(key) = \(value)\n" }
        }
        if !logged.isEmpty {
            out += "metrics (last value):\n"
            for metric in logged {
                if let value = metric.lastValue { out += "  \(metric.key) = \(JSONValue.format(value))  (\(metric.count) logged)\n" }
            }
        }
        return out
    }

    public var json: JSONValue {
        var entries: [JSONObject.Entry] = [.init(key: "run", value: .string(summary.name))]
        entries += fields.map { .init(key: $0.0, value: $0.1.map(JSONValue.string) ?? .null) }
        entries += [.init(key: "n", value: .number(Double(summary.n))),
                    .init(key: "accuracy", value: summary.accuracy.map(JSONValue.number) ?? .null),
                    .init(key: "mean_confidence", value: summary.meanConfidence.map(JSONValue.number) ?? .null)]
        for (table, pairs) in [("params", params), ("tags", tags)] {
            entries.append(.init(key: table, value: .object(JSONObject(pairs.map { .init(key: $0.0, value: .string($0.1)) }))))
        }
        entries.append(.init(key: "metrics", value: .object(JSONObject(logged.map {
            .init(key: $0.key, value: .object(JSONObject([.init(key: "last", value: $0.lastValue.map(JSONValue.number) ?? .null),
                                                           .init(key: "count", value: .number(Double($0.count)))])))
        }))))
        return .object(JSONObject(entries))
    }
}
