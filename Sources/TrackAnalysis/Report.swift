import Foundation
import TrackCalibration
import TrackStore

/// `track report`: one self-contained HTML file (no network: CSS, script and data inline) to
/// browse a store's runs as a lab does daily — a runs table with a column chooser (every metric,
/// params, tags, epoch, step, parent, status, source; kept in the URL fragment), each row linked
/// to its run's section; a compare view of 2–5 selected runs (metrics side by side, paired
/// bootstrap differences and McNemar's test as `track compare` computes them, their reliability
/// diagrams overlaid, per-subject deltas); per-run sections with intervals, the test of
/// calibration, the derivation chain, per-subject tables and diagrams; logged scalars (single
/// values too) with smoothing and a log scale; Table 2 and win rates. Figures are drawn in the
/// browser (SVG) from the numbers embedded, when they scroll into view.
public struct ReportRequest: Sendable {
    public var filter = RunFilter()
    public var out: String
    /// Runs given a detail section (metrics with intervals, figures, subjects); the table lists every run.
    public var detailLimit = 50
    public var resamples = 1000
    public var title = "track report"
    /// What made the report, recorded in it.
    public var provenance = "track report"
    /// Subjects drawn as small multiples in a run's section (the highest conf-ECE first).
    public var topSubjects = 6
    /// Points kept of a logged series (every k-th and the last): what the page draws.
    public var loggedPoints = 400
    /// At most this many pairs of runs get paired tests for the compare view (each costs a paired bootstrap).
    public var maxPairs = 100

    public init(out: String) { self.out = out }
}

public struct ReportResult: Sendable {
    public var path: String
    public var runs: Int
    public var detailed: Int
    /// Pairs of runs the compare view has paired tests for.
    public var pairs: Int
    public var bytes: Int
}

public enum Report {
    /// The metrics of the run sections.
    static let keys: [MetricKey] = MetricColumns.main
    /// The metrics of the runs table's default columns and of the compare view's paired tests.
    static let compareKeys: [MetricKey] = [.accuracy, .confECE, .cwECE, .brier, .nll]

    public static func build(_ request: ReportRequest, store: any RunWriting) throws -> ReportResult {
        let reader = RunReader(store)
        let data = try reader.reportData(request.filter)
        guard !data.runs.isEmpty else { throw StoreError("no runs match", kind: .notFound) }
        let detailed = Array(data.runs.filter { $0.summary.n > 0 }.prefix(request.detailLimit))
        let anchors = Dictionary(uniqueKeysWithValues: data.runs.map { ($0.summary.name, anchor($0.summary)) })

        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="generator" content="\(escape(request.provenance))">
            <title>\(escape(request.title))</title>
            <style>\(ReportPage.style)</style></head><body>
            <h1>\(escape(request.title))</h1>
            <p class="meta">\(data.runs.count) runs from <code>\(escape(store.displayName))</code>. Metrics: METHODS §3 of track
            (10 equal-width bins; 95% intervals from \(request.resamples) Poisson-bootstrap resamples: percentile for accuracy, confidence,
            Brier and NLL, bin-bounded or norm-bounded for the binned errors, whose lower end is 0 where the test of calibration does not
            reject; the method is named beside each interval). Figures are drawn from the numbers in this file; `track plot` draws them for papers.</p>
            <nav><a href="#runs-heading">Runs</a> · <a href="#compare">Compare</a> · <a href="#table2-heading">Table 2</a> ·
            <a href="#details">Runs in detail</a> · <a href="#logged">Logged metrics</a></nav>
            <h2 id="runs-heading">Runs</h2>
            <div class="controls"><input id="filter" type="search" placeholder="filter by run, model, method, dataset, split or tag" size="50">
            <details id="chooser"><summary>Columns</summary><div id="column-list"></div></details>
            <button id="compare-button" type="button" disabled>Compare selected (0)</button>
            <span class="meta">select 2–5 runs with the boxes</span></div>
            <table id="runs" class="sortable"><thead><tr></tr></thead><tbody></tbody></table>
            <section id="compare" hidden><h2>Compare</h2><div id="compare-body"></div></section>

            """
        if let table = data.paperTable {
            html += "<h2 id=\"table2-heading\">Table 2: metrics by model × method and split</h2>\n" + htmlTable(table, id: "table2")
            if let note = data.paperTableNote { html += "<p class=\"meta\" id=\"table2-note\">\(escape(note))</p>\n" }
        }

        // Runs in detail: metrics with intervals, the test, derivation, subjects; figures drawn from `detail`.
        var details: [JSONObject.Entry] = []
        html += "<h2 id=\"details\">Runs in detail</h2>\n"
        for run in detailed {
            let name = run.summary.name
            let loaded = try reader.load(name)
            let analyzer = CalibrationAnalyzer(loaded.predictions)
            let metrics = analyzer.metrics(smooth: true)
            let report = analyzer.intervals(resamples: request.resamples, seed: 0)
            html += "<section class=\"run\" id=\"\(anchors[name]!)\" data-run=\"\(escape(name))\"><h3>\(escape(name))</h3>\n"
            html += derivationHTML(run, anchors: anchors)
            html += "<table class=\"metrics\"><tr><th>metric</th><th>value</th><th>95% interval</th><th>interval</th></tr>"
            for key in keys + [.smECE] {
                let interval = report.intervals[key]
                let method = interval.map { $0.method.rawValue + ($0.atBoundary ? "; 0: not rejected by the test below" : "") } ?? ""
                html += "<tr><td>\(key.rawValue)</td><td class=\"num\" data-key=\"\(key.rawValue)\" data-value=\"\(metrics[key].map { JSONValue.format($0) } ?? "")\">"
                html += "\(metrics[key].map { String(format: "%.4f", $0) } ?? "")</td>"
                html += "<td class=\"num\">\(interval.map { String(format: "%.4f – %.4f", $0.lower, $0.upper) } ?? "")</td><td class=\"method\">\(escape(method))</td></tr>"
            }
            html += "</table>\n"
            if let test = report.tests[.confECE] {
                html += "<p class=\"test\" data-p=\"\(JSONValue.format(test.p))\">Test of calibration (H0: perfectly calibrated; \(escape(test.method))): "
                html += "p = \(escape(PairedTests.format(test.p)))\(test.p < 0.05 ? " — miscalibrated at the 5% level" : " — not distinguishable from a calibrated run")</p>\n"
            }
            html += "<div class=\"figs\"><div class=\"fig\" data-kind=\"reliability\" data-run=\"\(escape(name))\"></div>"
            var detail: [JSONObject.Entry] = [.init(key: "bins", value: binsJSON(analyzer.reliabilityBins()))]
            if analyzer.set.uniformOptionCount != nil {
                detail.append(.init(key: "classwise", value: .array(analyzer.classwiseBins().map(binsJSON))))
                detail.append(.init(key: "pooled", value: binsJSON(analyzer.pooledClasswiseBins())))
                html += "<div class=\"fig\" data-kind=\"classwise\" data-run=\"\(escape(name))\"></div>"
            }
            html += "</div>\n"
            // Per subject: the rows `track metrics RUN --by subject` gives, and the worst subjects drawn.
            var bySubject = MetricsRequest(runs: [name])
            bySubject.groupBy = .subject
            bySubject.smooth = false
            bySubject.reliability = true
            let subjects = try reader.metrics(bySubject).rows
            if subjects.count > 1 {
                html += "<h4>By subject</h4>\n" + subjectTableHTML(subjects, run: name)
                let worst = subjects.sorted { ($0.metrics.confECE ?? 0, $1.group ?? "") > ($1.metrics.confECE ?? 0, $0.group ?? "") }
                    .prefix(request.topSubjects)
                detail.append(.init(key: "subjects", value: .array(worst.map { row in
                    .object(JSONObject([.init(key: "subject", value: .string(row.group ?? "")), .init(key: "n", value: .number(Double(row.metrics.n))),
                                        .init(key: "conf_ece", value: number(row.metrics.confECE)),
                                        .init(key: "bins", value: binsJSON(row.bins?.topLabel ?? []))]))
                })))
                html += "<div class=\"fig wide\" data-kind=\"subjects\" data-run=\"\(escape(name))\"></div>\n"
            }
            html += csvLink(name: "\(name) reliability bins", bins: analyzer.reliabilityBins())
            html += "</section>\n"
            details.append(.init(key: name, value: .object(JSONObject(detail))))
        }
        if data.runs.count > detailed.count {
            html += "<p class=\"meta\">\(data.runs.count - detailed.count) more runs have a brief section below (details for the first \(detailed.count); --details N).</p>\n"
        }
        // Every other run: a brief section, so that every row of the table links somewhere.
        let detailedNames = Set(detailed.map(\.summary.name))
        let brief = data.runs.filter { !detailedNames.contains($0.summary.name) }
        if !brief.isEmpty {
            html += "<div class=\"briefs\">\n"
            for run in brief {
                html += "<section class=\"run brief\" id=\"\(anchors[run.summary.name]!)\" data-run=\"\(escape(run.summary.name))\"><h3>\(escape(run.summary.name))</h3>"
                html += derivationHTML(run, anchors: anchors) + "</section>\n"
            }
            html += "</div>\n"
        }

        // Paired comparisons the compare view can show: detailed runs of one model on one dataset,
        // each against the later ones (the earlier is the base), as `track compare` computes them.
        var comparisons: [JSONValue] = []
        var families: [String: [String]] = [:], familyOrder: [String] = []
        for run in detailed {
            let family = [run.summary.model ?? "", run.summary.dataset ?? ""].joined(separator: "\u{1F}")
            if families[family] == nil { familyOrder.append(family) }
            families[family, default: []].append(run.summary.name)
        }
        for family in familyOrder {
            let names = families[family]!
            for (index, base) in names.enumerated() where index + 1 < names.count && comparisons.count < request.maxPairs {
                let others = names[(index + 1)...].prefix(request.maxPairs - comparisons.count)
                var comparison = ComparisonRequest(base: base, others: Array(others))
                comparison.keys = compareKeys
                comparison.bootstrap = BootstrapSettings(resamples: request.resamples, seed: 0)
                comparisons += try reader.compare(comparison).json.arrayValue ?? []
            }
        }

        // Logged scalars: every key, single values too.
        let loggedKeys = Set(data.runs.flatMap { $0.logged.map(\.key) }).sorted()
        var logged: [JSONObject.Entry] = []
        for key in loggedKeys {
            var series: [JSONValue] = []
            for run in data.runs where run.logged.contains(where: { $0.key == key }) {
                let points = try store.loggedSeries(runID: run.summary.id, key: key)
                let stride = max(1, (points.count + request.loggedPoints - 1) / request.loggedPoints)
                let kept = points.enumerated().filter { $0.offset % stride == 0 || $0.offset == points.count - 1 }.map(\.element)
                series.append(.object(JSONObject([.init(key: "run", value: .string(run.summary.name)), .init(key: "count", value: .number(Double(points.count))),
                                                  .init(key: "points", value: .array(kept.map { .array([.number(Double($0.step)), .number($0.value)]) }))])))
            }
            logged.append(.init(key: key, value: .array(series)))
        }
        html += "<h2 id=\"logged\">Logged metrics</h2>\n"
        if loggedKeys.isEmpty {
            html += "<p class=\"meta\">No run logged a scalar metric.</p>\n"
        } else {
            html += """
                <p class="controls"><label>smoothing (EMA) <input id="smoothing" type="range" min="0" max="0.95" step="0.05" value="0"></label>
                <output id="smoothing-value">0</output> <label><input id="log-scale" type="checkbox"> log scale</label>
                <span class="meta">(series of more than \(request.loggedPoints) values are drawn from every k-th value and the last)</span></p>

                """
            for key in loggedKeys { html += "<h3>\(escape(key))</h3><div class=\"fig wide\" data-kind=\"logged\" data-key=\"\(escape(key))\"></div>\n" }
        }
        // Win rates of runs with preference pairs.
        let withPairs = try data.runs.filter { try store.hasPreferencePairs(runID: $0.summary.id) }.map(\.summary.name)
        if !withPairs.isEmpty {
            html += "<h2>Win rates (sequence likelihood)</h2>\n" + htmlTable(try reader.winRates(WinRateRequest(runs: withPairs)), id: "winrates")
        }

        let payload = JSONValue.object(JSONObject([
            .init(key: "runs", value: .array(data.runs.map { runJSON($0, anchor: anchors[$0.summary.name]!, detailed: detailedNames.contains($0.summary.name)) })),
            .init(key: "metricKeys", value: .array(compareKeys.map { .string($0.rawValue) })),
            .init(key: "storedKeys", value: .array(MetricKey.allCases.filter { RunStore.storedMetricKeys.contains($0) }.map { .string($0.rawValue) })),
            .init(key: "detail", value: .object(JSONObject(details))),
            .init(key: "comparisons", value: .array(comparisons)),
            .init(key: "logged", value: .object(JSONObject(logged))),
            .init(key: "resamples", value: .number(Double(request.resamples))),
        ]))
        html += "<script type=\"application/json\" id=\"report-data\">\(scriptSafe(payload.jsonText))</script>\n"
        html += "<script>\(ReportPage.script)</script>\n</body></html>\n"
        try writeExport(html, to: request.out)
        return ReportResult(path: request.out, runs: data.runs.count, detailed: detailed.count, pairs: comparisons.count, bytes: html.utf8.count)
    }

    /// A run's anchor: `run-<id>-<name with other characters as ->`, unique and readable in a URL.
    static func anchor(_ summary: RunSummary) -> String {
        let slug = String(summary.name.lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "-" }.prefix(60))
        return "run-\(summary.id)-\(slug)"
    }

    static func number(_ value: Double?) -> JSONValue { value.flatMap { $0.isFinite ? JSONValue.number($0) : nil } ?? .null }

    /// Bins as `[lower, upper, n, accuracy, confidence]` rows.
    static func binsJSON(_ bins: [BinRow]) -> JSONValue {
        .array(bins.map { .array([.number($0.lower), .number($0.upper), .number(Double($0.count)), number($0.accuracy), number($0.confidence)]) })
    }

    /// A run as the page reads it: `track runs --format json`'s record (its name under `name`), with its anchor, source,
    /// whether it has a section in detail, its last logged values and its stored reliability bins.
    static func runJSON(_ run: ReportData.Run, anchor: String, detailed: Bool) -> JSONValue {
        guard case .object(var record) = run.json else { return run.json }
        record.entries[0].key = "name"   // the page's key for the run's name ("run" is the column)
        let source = [run.detail.sourceFormat, run.detail.sourceFile].compactMap { $0 }.joined(separator: ": ")
        record.entries += [
            .init(key: "anchor", value: .string(anchor)), .init(key: "source", value: source.isEmpty ? .null : .string(source)),
            .init(key: "detailed", value: .bool(detailed)),
            .init(key: "logged", value: .object(JSONObject(run.logged.map { .init(key: $0.key, value: number($0.lastValue)) }))),
            .init(key: "bins", value: binsJSON(run.bins)),
        ]
        return .object(record)
    }

    /// Where a run came from: its parent and method, the fit (params of a derived run), its source.
    static func derivationHTML(_ run: ReportData.Run, anchors: [String: String]) -> String {
        var parts: [String] = []
        if let method = run.summary.method { parts.append("method <b>\(escape(method))</b>") }
        if let parent = run.detail.parent {
            let link = anchors[parent].map { "<a href=\"#\($0)\">\(escape(parent))</a>" } ?? escape(parent)
            parts.append("derived from \(link)")
        }
        // A derived run's fit: temperature(s), split, folds or holdout, seed.
        let fitted = run.params.filter { key, _ in ["ts.", "ms.", "iso.", "hb."].contains { key.hasPrefix($0) } && !key.hasSuffix(".criterion") }
        if !fitted.isEmpty {
            parts.append("fit: " + fitted.keys.sorted().map { "<code>\(escape($0))</code> = \(escape(fitted[$0]!))" }.joined(separator: ", "))
        }
        let others = run.params.filter { key, _ in fitted[key] == nil && !key.hasSuffix(".criterion") }
        if !others.isEmpty { parts.append("params: " + others.keys.sorted().map { "\(escape($0)) = \(escape(others[$0]!))" }.joined(separator: ", ")) }
        if !run.tags.isEmpty { parts.append("tags: " + run.tags.keys.sorted().map { "\(escape($0)) = \(escape(run.tags[$0]!))" }.joined(separator: ", ")) }
        var facts = ["n = \(run.summary.n)", "status \(run.summary.status.rawValue)"]
        if let epoch = run.summary.epoch { facts.append("epoch \(JSONValue.format(epoch))") }
        if let step = run.summary.step { facts.append("step \(step)") }
        if let file = run.detail.sourceFile { facts.append("source \(escape(file))") }
        return "<p class=\"derivation\">" + (parts + facts).joined(separator: " · ") + "</p>\n"
    }

    /// The per-subject table of a run: the rows of `track metrics RUN --by subject`, sortable.
    static func subjectTableHTML(_ rows: [MetricsRow], run: String) -> String {
        let keys: [MetricKey] = [.accuracy, .confECE, .cwECE, .brier, .nll]
        var html = "<table class=\"subjects sortable\" data-run=\"\(escape(run))\"><thead><tr><th>subject</th><th>n</th>"
        html += keys.map { "<th>\($0.rawValue)</th>" }.joined() + "</tr></thead><tbody>"
        for row in rows {
            html += "<tr data-subject=\"\(escape(row.group ?? ""))\"><td>\(escape(row.group ?? ""))</td><td class=\"num\" data-key=\"n\" data-value=\"\(row.metrics.n)\">\(row.metrics.n)</td>"
            for key in keys {
                let value = row.metrics[key]
                html += "<td class=\"num\" data-key=\"\(key.rawValue)\" data-value=\"\(value.map { JSONValue.format($0) } ?? "")\">\(value.map { String(format: "%.4f", $0) } ?? "")</td>"
            }
            html += "</tr>"
        }
        return html + "</tbody></table>\n"
    }

    /// The numbers a run's diagram draws, as a CSV download: the rows `track plot` writes beside a figure.
    static func csvLink(name: String, bins: [BinRow]) -> String {
        let csv = TextTable(columns: RunReader.binColumns,
                            rows: RunReader.binRows(run: name, panel: "top-label", bins, intervals: false)).render(.csv)
        let file = name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" }
        return "<p class=\"meta\"><a download=\"\(escape(String(file))).csv\" href=\"data:text/csv;base64,\(Data(csv.utf8).base64EncodedString())\">CSV of the reliability bins</a></p>\n"
    }

    static func htmlTable(_ table: TextTable, id: String) -> String {
        var html = "<table id=\"\(id)\">"
        if let caption = table.caption { html += "<caption>\(escape(caption))</caption>" }
        html += "<thead><tr>" + table.flatColumns.map { "<th>\(escape($0))</th>" }.joined() + "</tr></thead><tbody>"
        for row in table.rows {
            html += "<tr>" + row.map { cell in
                cell.isNumeric ? "<td class=\"num\">\(escape(cell.display))</td>" : "<td>\(escape(cell.display))</td>"
            }.joined() + "</tr>"
        }
        return html + "</tbody></table>\n"
    }

    /// JSON that may stand inside a `<script>` element: `<`, `>` and `&` occur in JSON only inside
    /// strings, where `\u003c` etc. mean the same, so no `</script>` or `<!--` can end or hide the block.
    static func scriptSafe(_ json: String) -> String {
        json.replacingOccurrences(of: "<", with: "\\u003c").replacingOccurrences(of: ">", with: "\\u003e")
            .replacingOccurrences(of: "&", with: "\\u0026")
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
