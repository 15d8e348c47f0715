import Foundation
import TrackCalibration
import TrackFigures
import TrackStore

/// `track plot`: figures for papers from stored runs.
enum PlotCommand: Command {
    static let spec = CommandSpec(
        name: "plot", abstract: "Draw reliability diagrams, classwise panels, grids and curves (PNG, PDF, SVG).",
        usage: "reliability|classwise|grid|curve|regime <run>... --out exports/NAME.{png,pdf,svg} [options]",
        discussion: """
        reliability  one run's reliability diagram (paper Figure 3): bars = accuracy per confidence
                     bin, shaded by the bin's share of samples; red = gap to the bin's mean
                     confidence; dashed = perfect calibration; ECE and n in the title.
        classwise    one panel per option (all N values p_ik) plus the pooled panel (Figures 5-8).
        grid         several runs side by side with shared axes (e.g. DPO / TS / CFT / RCFT).
        curve        a metric over epoch or step for families of runs (Figure 1, right);
                     families are runs sharing --family fields (default model,method,split).
        regime       ECE (--metric) against accuracy with the band between the TCE bounds,
                     A* marked and runs as points (Figure 2); A* as in `track tce`.
        The format comes from the extension of --out. Beside the figure, a CSV of the numbers
        drawn is written (same name, .csv), and the store records file, SHA-256, runs and command.
        """,
        arguments: [("<kind>", "reliability, classwise, grid or curve."), ("<run>...", "Run names.")],
        options: SharedOptions.database + AnalysisOptions.specs + [
            .value("out", "file", "Output file: .png, .pdf or .svg (default: exports/<kind>.png)."),
            .flag("bin-ci", "Draw each bin's 95% Wilson interval of accuracy (CSV: ci_low, ci_high, ci_method)."),
            .value("by", "subject|dataset", "grid: one panel per subject (or dataset) of one run."),
            .value("order", "ece|name", "grid --by: panels by conf-ECE, worst first (default), or by name."),
            .value("data", "file", "Where the CSV of the numbers drawn goes (default: the figure's name + .csv, e.g. rel.png.csv)."),
            .value("dpi", "n", "PNG resolution (default: 200)."),
            .value("width", "pt", "Panel width in points (default: 260)."),
            .value("height", "pt", "Panel height in points (default: 300)."),
            .value("columns", "n", "Panels per row (grid, classwise)."),
            .flag("no-histogram", "Leave out the count strip under reliability diagrams."),
            .value("title", "text", "Figure title."),
            .value("metric", "key", "curve: the metric (default: conf_ece)."),
            .value("x", "field", "curve: epoch (default) or step."),
            .value("family", "fields", "curve: fields that name a family (default: model,method,split)."),
            .flag("ci", "curve: bootstrap bands (95%)."),
            .value("resamples", "n", "curve: bootstrap resamples (default: 200)."),
        ] + regimeOptions)

    static func run(_ arguments: ParsedArguments) throws {
        guard let kind = arguments.positionals.first else { throw UsageError(message: "expected a kind: reliability, classwise, grid or curve") }
        let runs = Array(arguments.positionals.dropFirst())
        guard !runs.isEmpty else { throw UsageError(message: "expected at least one run name") }
        let options = try AnalysisOptions(arguments)
        let out = arguments.value("out") ?? "exports/\(kind).png"
        _ = try FigureFormat(path: out)
        let dpi = try arguments.double("dpi") ?? 200
        let width = try arguments.double("width") ?? 260
        let height = try arguments.double("height") ?? 300
        let histogram = !arguments.flag("no-histogram")
        let binCI = arguments.flag("bin-ci")
        // Which interval the CSV's ci_low/ci_high are (with --bin-ci).
        let intervalColumns = binCI ? ["ci_low", "ci_high", "ci_method"] : []
        let store = try SharedOptions.openStore(arguments)
        var data = TextTable(columns: [], rows: [])
        let figure: Figure
        switch kind {
        case "reliability", "grid":
            if kind == "reliability", runs.count != 1 { throw UsageError(message: "reliability draws one run; use grid for several") }
            var panels: [Panel] = []
            data.columns = ["run", "panel", "bin", "lower", "upper", "n", "accuracy", "confidence", "gap"] + intervalColumns
            if let by = try arguments.value("by").map({ text -> GroupKey in
                guard kind == "grid", let key = GroupKey(rawValue: text) else {
                    throw UsageError(message: "--by subject|dataset draws one run's groups with `plot grid`")
                }
                return key
            }) {
                // Small multiples: one panel per subject (or dataset) of one run, shared axes.
                guard runs.count == 1 else { throw UsageError(message: "--by draws one run's groups") }
                let run = try store.loadRun(named: runs[0], details: true)
                var groups = run.grouped(by: by).map { group, set in
                    (group, CalibrationAnalyzer(set, bins: options.bins, epsilon: options.epsilon))
                }.map { ($0.0, $0.1, $0.1.metrics()) }
                let order = try arguments.choice("order", ["ece", "name"], default: "ece")
                if order == "ece" { groups.sort { ($0.2.confECE ?? 0) > ($1.2.confECE ?? 0) } }
                for (group, analyzer, metrics) in groups {
                    let bins = analyzer.reliabilityBins()
                    var panel = ReliabilityPanel(title: group, bins: bins, ece: metrics.confECE, n: metrics.n, showHistogram: histogram)
                    panel.binIntervals = binCI
                    panels.append(.reliability(panel))
                    data.rows += binRows(run: runs[0], panel: group, bins, intervals: binCI)
                }
            } else {
                for name in runs {
                    let analyzer = try store.analyzeRun(named: name, bins: options.bins, epsilon: options.epsilon)
                    let metrics = analyzer.metrics()
                    let bins = analyzer.reliabilityBins()
                    var panel = ReliabilityPanel(title: name, bins: bins, ece: metrics.confECE, n: metrics.n, showHistogram: histogram)
                    panel.binIntervals = binCI
                    panels.append(.reliability(panel))
                    data.rows += binRows(run: name, panel: "top-label", bins, intervals: binCI)
                }
            }
            let columns = try arguments.int("columns") ?? min(panels.count, 4)
            figure = Figure(title: arguments.value("title"), panels: panels, columns: columns, panelWidth: width, panelHeight: height)
        case "classwise":
            guard runs.count == 1 else { throw UsageError(message: "classwise draws one run") }
            let name = runs[0]
            let analyzer = try store.analyzeRun(named: name, bins: options.bins, epsilon: options.epsilon)
            let metrics = analyzer.metrics()
            let perClass = analyzer.classwiseBins()
            guard !perClass.isEmpty else { throw CommandFailure(message: "run '\(name)' mixes option counts: no classwise panels") }
            data.columns = ["run", "panel", "bin", "lower", "upper", "n", "frequency", "mean_prob", "gap"] + intervalColumns
            var panels: [Panel] = []
            for (k, bins) in perClass.enumerated() {
                let ece = classECE(bins, n: metrics.n)
                var panel = ReliabilityPanel(title: "option \(optionLetter(k))", bins: bins, ece: ece, n: metrics.n,
                                             showHistogram: histogram, xLabel: "p(option \(optionLetter(k)))",
                                             yLabel: "Frequency", eceLabel: "class ECE")
                panel.binIntervals = binCI
                panels.append(.reliability(panel))
                data.rows += binRows(run: name, panel: "option \(optionLetter(k))", bins, intervals: binCI)
            }
            let pooled = analyzer.pooledClasswiseBins()
            // The pooled panel draws every question x option: it is titled with its own (pooled) ECE;
            // cw-ECE, the mean of the class panels' ECEs, goes in the figure's title.
            var pooledPanel = ReliabilityPanel(title: "pooled (all options)", bins: pooled, ece: metrics.pooledECE,
                                               n: metrics.n * perClass.count, showHistogram: histogram,
                                               xLabel: "Probability", yLabel: "Frequency", eceLabel: "pooled ECE")
            pooledPanel.binIntervals = binCI
            panels.append(.reliability(pooledPanel))
            data.rows += binRows(run: name, panel: "pooled", pooled, intervals: binCI)
            let columns = try arguments.int("columns") ?? min(panels.count, 3)
            let cw = metrics.cwECE.map { String(format: "cw-ECE = %.4f", $0) } ?? "cw-ECE n/a"
            figure = Figure(title: arguments.value("title") ?? "\(name): classwise reliability (\(cw))", panels: panels,
                            columns: columns, panelWidth: width, panelHeight: height)
        case "curve":
            let (panel, rows) = try curve(store: store, runs: runs, arguments: arguments, options: options)
            data.columns = ["family", "run", "x", "value", "low", "high"]
            data.rows = rows
            figure = Figure(title: arguments.value("title"), panels: [.curve(panel)], columns: 1,
                            panelWidth: max(width, 360), panelHeight: max(height, 280))
        case "regime":
            let metric = arguments.value("metric") ?? "conf_ece"
            guard CalibrationMetrics.keys.contains(metric) else { throw UsageError(message: "unknown metric '\(metric)'") }
            let target = try arguments.value("target").map { name in
                (name, try store.metrics(named: name, bins: options.bins, keys: ["accuracy"]).metrics.accuracy)
            }
            let (aStar, source) = try resolveAStar(store: store, arguments: arguments, target: target, bins: options.bins)
            var points: [RegimePanel.Point] = []
            var k = 0
            data.columns = ["run", "accuracy", metric, "regime", "a_star"]
            for name in runs {
                let (m, optionCount) = try store.metrics(named: name, bins: options.bins, epsilon: options.epsilon,
                                                         keys: ["accuracy", metric])
                guard let accuracy = m.accuracy, let value = m[metric] else { continue }
                k = max(k, optionCount ?? 0)
                points.append(RegimePanel.Point(label: name, accuracy: accuracy, value: value))
                data.rows.append([.text(name), .number(accuracy, digits: 6), .number(value, digits: 6),
                                  .text(Regimes.regime(accuracy: accuracy, aStar: aStar).rawValue), .number(aStar, digits: 6)])
            }
            guard k >= 2 else { throw CommandFailure(message: "the runs have no common option count") }
            let labels = shortLabels(points.map(\.label))
            for index in points.indices { points[index].label = labels[index] }
            let panel = RegimePanel(title: "Regimes (A* \(source.hasPrefix("given") ? "given" : source.hasPrefix("accuracy") ? "from the target run" : "estimated"))",
                                    yLabel: CalibrationMetrics.labels[metric] ?? metric, aStar: aStar, optionCount: k,
                                    lowerConstant: try arguments.double("c-lower") ?? 0, points: points)
            figure = Figure(title: arguments.value("title"), panels: [.regime(panel)], columns: 1,
                            panelWidth: max(width, 380), panelHeight: max(height, 320))
            Console.err("A* = \(String(format: "%.4f", aStar)) (\(source))\n")
        default:
            throw UsageError(message: "unknown kind '\(kind)': use reliability, classwise, grid, curve or regime")
        }
        try figure.render(to: out, dpi: dpi)
        // The numbers drawn go beside the figure, named after it (`fig.png.csv`), so that
        // they never replace a CSV the user has (e.g. `fig.csv`), nor the PNG's the PDF's.
        let dataPath = arguments.value("data") ?? out + ".csv"
        try writeExport(data.render(.csv), to: dataPath)
        let runIDs = try runs.compactMap { try store.runID(named: $0) }
        try store.recordExport(ExportRecord(path: out, kind: kind, format: (out as NSString).pathExtension.lowercased(),
                                            dataPath: dataPath, command: commandLine(), runIDs: runIDs))
        Console.out("wrote \(out) and \(dataPath)\n")
    }

    static func binRows(run: String, panel: String, _ bins: [BinRow], intervals: Bool = false) -> [[TextTable.Cell]] {
        bins.map { bin in
            var row: [TextTable.Cell] = [.text(run), .text(panel), .integer(Int64(bin.bin)), .number(bin.lower, digits: 4),
                                         .number(bin.upper, digits: 4), .integer(Int64(bin.count)), .number(bin.accuracy, digits: 6),
                                         .number(bin.confidence, digits: 6), .number(bin.gap, digits: 6)]
            if intervals {
                let interval = ReliabilityPanel.interval(bin)
                row += [.number(interval?.lower, digits: 6), .number(interval?.upper, digits: 6), .text(interval == nil ? nil : "wilson95")]
            }
            return row
        }
    }

    /// One class's ECE: Σ_m (n_km/N)·|freq − meanp| (cw-ECE is the mean over classes).
    static func classECE(_ bins: [BinRow], n: Int) -> Double? {
        guard n > 0 else { return nil }
        return bins.reduce(0.0) { sum, bin in
            guard let gap = bin.gap else { return sum }
            return sum + Double(bin.count) / Double(n) * abs(gap)
        }
    }

    static func curve(store: RunStore, runs: [String], arguments: ParsedArguments,
                      options: AnalysisOptions) throws -> (CurvePanel, [[TextTable.Cell]]) {
        let metric = arguments.value("metric") ?? "conf_ece"
        guard CalibrationMetrics.keys.contains(metric) else {
            throw UsageError(message: "unknown metric '\(metric)'; known: \(CalibrationMetrics.keys.joined(separator: ", "))")
        }
        let xField = try arguments.choice("x", ["epoch", "step"], default: "epoch")
        let familyFields = (arguments.value("family") ?? "model,method,split").split(separator: ",").map(String.init)
        let resamples = try arguments.int("resamples") ?? 200
        var filter = RunFilter()
        filter.names = runs
        let summaries = try store.runSummaries(filter)
        var families: [String: [(x: Double, y: Double, low: Double?, high: Double?, run: String)]] = [:]
        var order: [String] = []
        for summary in summaries {
            guard let x = xField == "epoch" ? summary.epoch : summary.step.map(Double.init) else {
                throw CommandFailure(message: "run '\(summary.name)' has no \(xField); curves need it on every run")
            }
            let family = familyFields.map { summary.field($0) ?? "" }.filter { !$0.isEmpty }.joined(separator: " / ")
            let y: Double?, interval: Interval?
            if arguments.flag("ci") {
                let analyzer = try store.analyzeRun(named: summary.name, bins: options.bins, epsilon: options.epsilon)
                y = analyzer.metrics()[metric]
                interval = analyzer.bootstrap(resamples: resamples, seed: 0)[metric]
            } else {
                y = try store.metrics(named: summary.name, bins: options.bins, epsilon: options.epsilon, keys: [metric]).metrics[metric]
                interval = nil
            }
            guard let y else { continue }
            if families[family] == nil { order.append(family) }
            families[family, default: []].append((x, y, interval?.lower, interval?.upper, summary.name))
        }
        let series = order.map { name in
            let points = families[name]!
            return Series(label: name, points: points.map { ($0.x, $0.y) },
                          band: points.compactMap { p in p.low.flatMap { low in p.high.map { (p.x, low, $0) } } })
        }
        let rows: [[TextTable.Cell]] = order.flatMap { name in
            families[name]!.sorted { $0.x < $1.x }.map {
                [.text(name), .text($0.run), .number($0.x, digits: 4), .number($0.y, digits: 6),
                 .number($0.low, digits: 6), .number($0.high, digits: 6)]
            }
        }
        let label = CalibrationMetrics.labels[metric] ?? metric
        return (CurvePanel(title: "\(label) over \(xField)s", xLabel: xField.capitalized, yLabel: label, series: series), rows)
    }
}

/// Labels without the part every name shares up to a "/" (e.g. the model), so points stay readable.
func shortLabels(_ names: [String]) -> [String] {
    guard names.count > 1, var prefix = names.first else { return names }
    for name in names.dropFirst() { while !name.hasPrefix(prefix) { prefix.removeLast() } }
    guard let slash = prefix.lastIndex(of: "/") else { return names }
    let cut = prefix.distance(from: prefix.startIndex, to: slash) + 1
    return names.map { String($0.dropFirst(cut)) }
}

/// The command line as typed, for provenance.
func commandLine() -> String {
    CommandLine.arguments.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
}
