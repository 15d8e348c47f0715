import Foundation
import TrackCalibration
import TrackFigures
import TrackStore

/// `track report`: one self-contained HTML file (no network: CSS, script and figures inline)
/// of a store's runs — a sortable, filterable runs table, Table 2, each run's metrics with
/// bootstrap intervals and its reliability diagram (PNG, inline), logged scalars over steps, win rates —
/// with each figure's provenance (runs, SHA-256) and the CSV of its numbers.
public struct ReportRequest: Sendable {
    public var filter = RunFilter()
    public var out: String
    /// Runs given a detail section (metrics with intervals, figures); the table lists every run.
    public var detailLimit = 50
    public var resamples = 1000
    public var title = "track report"
    /// What made the report, recorded in it.
    public var provenance = "track report"

    public init(out: String) { self.out = out }
}

public struct ReportResult: Sendable {
    public var path: String
    public var runs: Int
    public var detailed: Int
    public var bytes: Int
}

public enum Report {
    public static func build(_ request: ReportRequest, store: any RunWriting) throws -> ReportResult {
        let reader = RunReader(store)
        let data = try reader.reportData(request.filter)
        guard !data.runs.isEmpty else { throw StoreError("no runs match", kind: .notFound) }
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="generator" content="\(escape(request.provenance))">
            <title>\(escape(request.title))</title>
            <style>\(style)</style></head><body>
            <h1>\(escape(request.title))</h1>
            <p class="meta">\(data.runs.count) runs from <code>\(escape(store.displayName))</code>. Metrics: METHODS §3 of track
            (10 equal-width bins; 95% intervals from \(request.resamples) Poisson-bootstrap resamples: percentile for accuracy, confidence,
            Brier and NLL, bin-bounded or norm-bounded for the binned errors, whose lower end is 0 where the test of calibration does not
            reject; the method is named beside each interval).</p>
            <h2>Runs</h2>
            <p><input id="filter" type="search" placeholder="filter by run, model, method, dataset, split or tag" size="60"></p>

            """
        // The runs table: every run, numbers in data-value for sorting.
        let columns: [(String, MetricKey?)] = [("run", nil), ("model", nil), ("method", nil), ("dataset", nil), ("split", nil),
                                               ("n", nil), ("accuracy", .accuracy), ("conf_ece", .confECE), ("cw_ece", .cwECE),
                                               ("brier", .brier), ("nll", .nll)]
        html += "<table id=\"runs\" class=\"sortable\"><thead><tr>"
        for (name, _) in columns { html += "<th data-key=\"\(name)\">\(name)</th>" }
        html += "</tr></thead><tbody>\n"
        for run in data.runs {
            let s = run.summary
            let tags = run.tags.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
            html += "<tr data-run=\"\(escape(s.name))\" data-search=\"\(escape([s.name, s.model ?? "", s.method ?? "", s.dataset ?? "", s.split ?? "", tags].joined(separator: " ").lowercased()))\">"
            for (name, key) in columns {
                if let key {
                    let value = run.metrics?[key]
                    html += "<td class=\"num\" data-value=\"\(value.map { JSONValue.format($0) } ?? "")\">\(value.map { String(format: "%.4f", $0) } ?? "")</td>"
                } else if name == "n" {
                    html += "<td class=\"num\" data-value=\"\(s.n)\">\(s.n)</td>"
                } else {
                    let text = name == "run" ? s.name : RunField(name)?.value(s) ?? ""
                    html += "<td>\(escape(text))</td>"
                }
            }
            html += "</tr>\n"
        }
        html += "</tbody></table>\n"
        if let table = data.paperTable {
            html += "<h2>Table 2: metrics by model × method and split</h2>\n" + htmlTable(table, id: "table2")
        }
        // Detail sections: metrics with intervals and the reliability diagram of each run.
        var figures: [(name: String, runs: [String], image: Data, csv: String)] = []
        let detailed = Array(data.runs.filter { $0.summary.n > 0 }.prefix(request.detailLimit))
        var metricsJSON: [JSONValue] = []
        // The figures are drawn into a private folder (0700, removed on every way out) and embedded.
        let folder = try TemporaryFolders.make(prefix: "track-report")
        defer { TemporaryFolders.remove(folder) }
        let scratch = folder.path
        html += "<h2>Runs in detail</h2>\n"
        for run in detailed {
            let name = run.summary.name
            let analyzer = try reader.analyzer(named: name)
            let metrics = analyzer.metrics(smooth: true)
            let report = analyzer.intervals(resamples: request.resamples, seed: 0)
            let intervals = report.intervals
            metricsJSON.append(.object(JSONObject([.init(key: "run", value: .string(name))] + MetricKey.allCases.map {
                .init(key: $0.rawValue, value: metrics[$0].map(JSONValue.number) ?? .null)
            })))
            html += "<section class=\"run\" data-run=\"\(escape(name))\"><h3>\(escape(name))</h3>\n"
            html += "<table class=\"metrics\"><tr><th>metric</th><th>value</th><th>95% interval</th><th>interval</th></tr>"
            for key in MetricColumns.main + [.smECE] {
                let interval = intervals[key].map { String(format: "%.4f – %.4f", $0.lower, $0.upper) } ?? ""
                let method = intervals[key].map { $0.method.rawValue + ($0.atBoundary ? "; 0: not rejected by the test below" : "") } ?? ""
                html += "<tr><td>\(key.rawValue)</td><td class=\"num\" data-key=\"\(key.rawValue)\" data-value=\"\(metrics[key].map { JSONValue.format($0) } ?? "")\">\(metrics[key].map { String(format: "%.4f", $0) } ?? "")</td><td class=\"num\">\(interval)</td><td class=\"method\">\(escape(method))</td></tr>"
            }
            html += "</table>\n"
            if let test = report.tests[.confECE] {
                html += "<p class=\"test\" data-p=\"\(JSONValue.format(test.p))\">Test of calibration (H0: perfectly calibrated; \(escape(test.method))): "
                html += "p = \(escape(PairedTests.format(test.p)))\(test.p < 0.05 ? " — miscalibrated at the 5% level" : " — not distinguishable from a calibrated run")</p>\n"
            }
            var request = FigureRequest(kind: .reliability, runs: [name], out: "\(scratch)/\(figures.count).png")
            request.provenance = "track report"
            request.record = false
            request.dpi = 110
            let figure = try reader.figure(request)
            figures.append((name: "reliability \(name)", runs: [name], image: try Data(contentsOf: URL(fileURLWithPath: figure.path)),
                            csv: try String(contentsOfFile: figure.dataPath, encoding: .utf8)))
            html += figureHTML(figures.last!)
            if analyzer.set.uniformOptionCount != nil {
                var classwise = FigureRequest(kind: .classwise, runs: [name], out: "\(scratch)/\(figures.count).png")
                classwise.provenance = "track report"
                classwise.record = false
                classwise.dpi = 110
                classwise.histogram = false
                let result = try reader.figure(classwise)
                figures.append((name: "classwise \(name)", runs: [name], image: try Data(contentsOf: URL(fileURLWithPath: result.path)),
                                csv: try String(contentsOfFile: result.dataPath, encoding: .utf8)))
                html += figureHTML(figures.last!)
            }
            html += "</section>\n"
        }
        if data.runs.count > detailed.count {
            html += "<p class=\"meta\">\(data.runs.count - detailed.count) more runs are in the table above (details for the first \(detailed.count)).</p>\n"
        }
        // Logged scalars over steps.
        let logged = Set(data.runs.flatMap { $0.logged.filter { $0.count > 1 }.map(\.key) }).sorted()
        if !logged.isEmpty { html += "<h2>Logged metrics</h2>\n" }
        for key in logged {
            let runs = data.runs.filter { $0.logged.contains { $0.key == key && $0.count > 1 } }.map(\.summary.name)
            var request = FigureRequest(kind: .curve, runs: Array(runs.prefix(12)), out: "\(scratch)/\(figures.count).png")
            request.logged = key
            request.dpi = 110
            request.provenance = "track report"
            request.record = false
            let result = try reader.figure(request)
            figures.append((name: "\(key) over steps", runs: request.runs, image: try Data(contentsOf: URL(fileURLWithPath: result.path)),
                            csv: try String(contentsOfFile: result.dataPath, encoding: .utf8)))
            html += figureHTML(figures.last!)
        }
        // Win rates of runs with preference pairs.
        let withPairs = try data.runs.filter { try store.hasPreferencePairs(runID: $0.summary.id) }.map(\.summary.name)
        if !withPairs.isEmpty {
            html += "<h2>Win rates (sequence likelihood)</h2>\n" + htmlTable(try reader.winRates(WinRateRequest(runs: withPairs)), id: "winrates")
        }
        html += "<script type=\"application/json\" id=\"metrics-data\">\(scriptSafe(JSONValue.array(metricsJSON).jsonText))</script>\n"
        html += "<script>\(script)</script>\n</body></html>\n"
        try writeExport(html, to: request.out)
        return ReportResult(path: request.out, runs: data.runs.count, detailed: detailed.count, bytes: html.utf8.count)
    }

    static func figureHTML(_ figure: (name: String, runs: [String], image: Data, csv: String)) -> String {
        let sha = SHA256.hex(of: Array(figure.image))
        // The PNG inline (light for the browser even with hundreds of figures), the CSV as a data link.
        let csv = Data(figure.csv.utf8).base64EncodedString()
        return """
            <figure class="figure"><img alt="\(escape(figure.name))" src="data:image/png;base64,\(figure.image.base64EncodedString())">
            <figcaption>\(escape(figure.name)). Runs: \(figure.runs.map(escape).joined(separator: ", ")). SHA-256 of the figure: <code>\(sha)</code>.
            <a download="\(escape(figure.name.replacingOccurrences(of: "/", with: "_"))).csv" href="data:text/csv;base64,\(csv)">CSV of the numbers drawn</a></figcaption></figure>

            """
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

    static let style = """
        body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:2em;color:#222;max-width:1200px}
        table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}
        td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
        table.sortable th{cursor:pointer}table.sortable th.asc:after{content:" \\25B2"}table.sortable th.desc:after{content:" \\25BC"}
        .meta{color:#666}section.run{border-top:2px solid #ccc;margin-top:1.5em}figure{margin:1em 0}
        figure img{max-width:100%;height:auto}caption{caption-side:top;text-align:left;color:#555;padding:4px 0}
        """

    static let script = """
        (function(){
          var table=document.getElementById('runs');var body=table.tBodies[0];
          var headers=table.tHead.rows[0].cells;
          function key(row,i){var c=row.cells[i];var v=c.getAttribute('data-value');
            if(v!==null){return v===''?Number.POSITIVE_INFINITY:parseFloat(v);}return c.textContent.toLowerCase();}
          Array.prototype.forEach.call(headers,function(th,i){th.addEventListener('click',function(){
            var ascending=!th.classList.contains('asc');
            Array.prototype.forEach.call(headers,function(h){h.classList.remove('asc','desc');});
            th.classList.add(ascending?'asc':'desc');
            var rows=Array.prototype.slice.call(body.rows);
            rows.sort(function(a,b){var x=key(a,i),y=key(b,i);return (x<y?-1:x>y?1:0)*(ascending?1:-1);});
            rows.forEach(function(r){body.appendChild(r);});});});
          document.getElementById('filter').addEventListener('input',function(e){
            var q=e.target.value.toLowerCase();
            Array.prototype.forEach.call(body.rows,function(r){r.style.display=r.getAttribute('data-search').indexOf(q)>=0?'':'none';});});
        })();
        """
}
