import Foundation
import TrackCalibration
import TrackFigures
import TrackStore

/// `track plot`: a figure for a paper, the CSV of the numbers it draws, and its provenance.
public struct FigureRequest: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case reliability, classwise, grid, curve, regime, smooth
    }
    /// grid --by: panels by conf-ECE (worst first), by questions (most first), or by name.
    public enum PanelOrder: String, Sendable, CaseIterable { case ece, n, name }
    public enum CurveAxis: String, Sendable, CaseIterable { case epoch, step }

    public var kind: Kind
    public var runs: [String]
    /// .png, .pdf or .svg.
    public var out: String
    /// Where the CSV goes (default: the figure's path + ".csv").
    public var dataPath: String?
    public var settings = BinSettings()
    public var dpi = 200.0
    public var panelWidth = 260.0
    public var panelHeight = 300.0
    public var columns: Int?
    public var histogram = true
    public var binIntervals = false
    public var title: String?
    /// grid: one panel per group of one run.
    public var groupBy: GroupKey?
    public var order: PanelOrder = .ece
    /// grid --by: only the first K groups in `order`.
    public var top: Int?
    /// Labels of the runs (or curve families), in order; nil: the part of their names that differs.
    public var labels: [String]?
    /// reliability: several runs in one panel.
    public var overlay = false
    /// curve and regime: the metric drawn.
    public var metric: MetricKey = .confECE
    public var axis: CurveAxis = .epoch
    public var family: [RunField] = [.model, .method, .split]
    /// curve: bootstrap bands with this many resamples.
    public var bands: Int?
    /// curve: a logged scalar metric (e.g. `train/loss`) over steps instead of a calibration metric.
    public var logged: String?
    public var aStar = AStarRequest()
    public var lowerConstant = 0.0
    /// What made the figure (e.g. the command line), recorded with it.
    public var provenance = ""
    /// Record the figure in the store's `exports` table (a report's figures live in the report).
    public var record = true

    public init(kind: Kind, runs: [String], out: String) {
        self.kind = kind
        self.runs = runs
        self.out = out
    }
}

public struct FigureResult: Sendable {
    public var path: String
    public var dataPath: String
    /// regime: the A* drawn.
    public var aStar: AStar?
}

extension RunReader {
    public func figure(_ request: FigureRequest) throws -> FigureResult {
        let runs = request.runs
        guard !runs.isEmpty else { throw StoreError("a figure needs at least one run", kind: .usage) }
        _ = try FigureFormat(path: request.out)
        let settings = request.settings
        // Which interval the CSV's ci_low/ci_high are.
        let intervalColumns = request.binIntervals ? ["ci_low", "ci_high", "ci_method"] : []
        var data = TextTable(columns: [], rows: [])
        var aStar: AStar?
        let figure: Figure
        // Multi-run figures drop what every run's name shares from their labels and say it in the title.
        let shared = distinctLabels(runs).shared
        var defaultTitle: String? = request.labels == nil && !shared.isEmpty && request.kind != .regime ? shared : nil
        func panel(_ title: String, _ bins: [BinRow], ece: Double?, n: Int) -> ReliabilityPanel {
            var panel = ReliabilityPanel(title: title, bins: bins, ece: ece, n: n, showHistogram: request.histogram)
            panel.binIntervals = request.binIntervals
            return panel
        }
        switch request.kind {
        case .reliability, .grid:
            if request.kind == .reliability, runs.count != 1, !request.overlay {
                throw StoreError("a reliability diagram draws one run: give --overlay to draw \(runs.count) in one panel, or use `plot grid`", kind: .usage)
            }
            var panels: [Panel] = []
            data.columns = Self.binColumns + intervalColumns
            if let by = request.groupBy {
                // Small multiples: one panel per subject (or dataset) of one run, shared axes.
                guard request.kind == .grid, runs.count == 1 else {
                    throw StoreError("panels by \(by.rawValue) draw one run's groups, as a grid", kind: .usage)
                }
                let run = try load(runs[0])
                var groups = run.grouped(by: by).map { group, set in
                    let analyzer = CalibrationAnalyzer(set, bins: settings.bins, epsilon: settings.epsilon)
                    return (group, analyzer, analyzer.metrics())
                }
                switch request.order {
                case .ece: groups.sort { ($0.2.confECE ?? 0, $1.0) > ($1.2.confECE ?? 0, $0.0) }
                case .n: groups.sort { ($0.2.n, $1.0) > ($1.2.n, $0.0) }
                case .name: break
                }
                let total = groups.count
                if let top = request.top { groups = Array(groups.prefix(top)) }
                for (group, analyzer, metrics) in groups {
                    let bins = analyzer.reliabilityBins()
                    panels.append(.reliability(panel(group, bins, ece: metrics.confECE, n: metrics.n)))
                    data.rows += Self.binRows(run: runs[0], panel: group, bins, intervals: request.binIntervals)
                }
                if request.title == nil, let top = request.top, top < total {
                    defaultTitle = "\(runs[0]): \(groups.count) of \(total) \(by.rawValue)s, \(request.order == .name ? "by name" : request.order == .n ? "most questions first" : "highest conf-ECE first")"
                }
            } else {
                let labels = try labels(for: runs, request)
                var overlaid: [OverlayReliabilityPanel.Run] = []
                for (name, label) in zip(runs, labels) {
                    let analyzer = try analyzer(named: name, settings)
                    let metrics = analyzer.metrics()
                    let bins = analyzer.reliabilityBins()
                    if request.overlay {
                        overlaid.append(OverlayReliabilityPanel.Run(label: label, bins: bins, ece: metrics.confECE, n: metrics.n))
                    } else {
                        panels.append(.reliability(panel(label, bins, ece: metrics.confECE, n: metrics.n)))
                    }
                    data.rows += Self.binRows(run: name, panel: request.overlay ? "overlay" : "top-label", bins, intervals: request.binIntervals)
                }
                if request.overlay {
                    panels = [.overlay(OverlayReliabilityPanel(title: "", runs: overlaid, showHistogram: request.histogram))]
                }
            }
            figure = Figure(title: request.title ?? defaultTitle, panels: panels, columns: request.columns ?? min(panels.count, 4),
                            panelWidth: request.panelWidth, panelHeight: request.panelHeight)
        case .classwise:
            guard runs.count == 1 else { throw StoreError("a classwise figure draws one run", kind: .usage) }
            let name = runs[0]
            let analyzer = try analyzer(named: name, settings)
            let metrics = analyzer.metrics()
            let perClass = analyzer.classwiseBins()
            guard analyzer.set.count > 0 else { throw StoreError("run '\(name)' has no questions: nothing to draw", kind: .invalidInput) }
            guard !perClass.isEmpty else { throw StoreError("run '\(name)' mixes option counts: no classwise panels", kind: .invalidInput) }
            data.columns = ["run", "panel", "bin", "lower", "upper", "n", "frequency", "mean_prob", "gap"] + intervalColumns
            var panels: [Panel] = []
            for (k, bins) in perClass.enumerated() {
                var classPanel = ReliabilityPanel(title: "option \(optionLetter(k))", bins: bins, ece: Self.classECE(bins, n: metrics.n),
                                                  n: metrics.n, showHistogram: request.histogram,
                                                  xLabel: "p(option \(optionLetter(k)))", yLabel: "Frequency", eceLabel: "class ECE")
                classPanel.binIntervals = request.binIntervals
                panels.append(.reliability(classPanel))
                data.rows += Self.binRows(run: name, panel: "option \(optionLetter(k))", bins, intervals: request.binIntervals)
            }
            let pooled = analyzer.pooledClasswiseBins()
            // The pooled panel draws every question x option: it is titled with its own (pooled) ECE;
            // cw-ECE, the mean of the class panels' ECEs, goes in the figure's title.
            var pooledPanel = ReliabilityPanel(title: "pooled (all options)", bins: pooled, ece: metrics.pooledECE,
                                               n: metrics.n * perClass.count, showHistogram: request.histogram,
                                               xLabel: "Probability", yLabel: "Frequency", eceLabel: "pooled ECE")
            pooledPanel.binIntervals = request.binIntervals
            panels.append(.reliability(pooledPanel))
            data.rows += Self.binRows(run: name, panel: "pooled", pooled, intervals: request.binIntervals)
            let cw = metrics.cwECE.map { String(format: "cw-ECE = %.4f", $0) } ?? "cw-ECE n/a"
            figure = Figure(title: request.title ?? "\(name): classwise reliability (\(cw))", panels: panels,
                            columns: request.columns ?? min(panels.count, 3), panelWidth: request.panelWidth, panelHeight: request.panelHeight)
        case .smooth:
            // relplot's smooth reliability diagram, one panel per run.
            var panels: [Panel] = []
            data.columns = ["run", "t", "curve", "low", "high", "density", "shown", "smece", "smece_low", "smece_high", "sigma"]
            for (name, label) in zip(runs, try labels(for: runs, request)) {
                let analyzer = try analyzer(named: name, settings)
                let panel = Self.smoothPanel(label, analyzer, resamples: request.bands ?? 1000)
                panels.append(.smooth(panel))
                let shown = panel.visibility
                for j in panel.mesh.indices {
                    data.rows.append([.text(name), .number(panel.mesh[j], digits: 6), .number(panel.curve[j], digits: 6),
                                      .number(panel.lower[j], digits: 6), .number(panel.upper[j], digits: 6),
                                      .number(panel.density[j], digits: 6), .number(shown[j], digits: 3), .number(panel.smECE, digits: 6),
                                      .number(panel.smECEInterval?.lower, digits: 6), .number(panel.smECEInterval?.upper, digits: 6),
                                      .number(panel.sigma, digits: 6)])
                }
            }
            figure = Figure(title: request.title ?? defaultTitle, panels: panels, columns: request.columns ?? min(panels.count, 4),
                            panelWidth: request.panelWidth, panelHeight: request.panelHeight)
        case .curve:
            let (panel, rows) = try curve(request)
            data.columns = ["family", "run", "x", "value", "low", "high"]
            data.rows = rows
            figure = Figure(title: request.title, panels: [.curve(panel)], columns: 1,
                            panelWidth: max(request.panelWidth, 360), panelHeight: max(request.panelHeight, 280))
        case .regime:
            let metric = request.metric
            let resolved = try self.aStar(request.aStar, bins: settings.bins)
            aStar = resolved
            var points: [RegimePanel.Point] = []
            var k = 0
            data.columns = ["run", "accuracy", metric.rawValue, "regime", "a_star"]
            for name in runs {
                let (m, optionCount) = try metrics(named: name, settings, keys: [.accuracy, metric])
                guard let accuracy = m.accuracy, let value = m[metric] else { continue }
                k = max(k, optionCount ?? 0)
                points.append(RegimePanel.Point(label: name, accuracy: accuracy, value: value,
                                                isTarget: resolved.origin == .target && request.aStar.target == name))
                data.rows.append([.text(name), .number(accuracy, digits: 6), .number(value, digits: 6),
                                  .text(Regimes.regime(accuracy: accuracy, aStar: resolved.value).rawValue), .number(resolved.value, digits: 6)])
            }
            guard k >= 2 else { throw StoreError("the runs have no common option count", kind: .invalidInput) }
            let given = try labels(for: runs, request)
            let labels = Dictionary(zip(runs, given), uniquingKeysWith: { first, _ in first })
            for index in points.indices { points[index].label = labels[points[index].label] ?? points[index].label }
            let origin = switch resolved.origin { case .given: "given"; case .target: "from the target run"; case .estimated: "estimated" }
            let panel = RegimePanel(title: "Regimes (A* \(origin))", yLabel: metric.label, aStar: resolved.value, optionCount: k,
                                    lowerConstant: request.lowerConstant, points: points)
            figure = Figure(title: request.title, panels: [.regime(panel)], columns: 1,
                            panelWidth: max(request.panelWidth, 380), panelHeight: max(request.panelHeight, 350))
        }
        try OutputFile.replace(request.out) { try figure.render(to: $0, dpi: request.dpi) }
        // The numbers drawn go beside the figure, named after it (`fig.png.csv`), so that
        // they never replace a CSV the user has (e.g. `fig.csv`), nor the PNG's the PDF's.
        let dataPath = request.dataPath ?? request.out + ".csv"
        try writeExport(data.render(.csv), to: dataPath)
        let runIDs = try runs.compactMap { try store.runID(named: $0) }
        if request.record { try store.recordExport(ExportRecord(path: request.out, kind: request.kind.rawValue,
                                            format: (request.out as NSString).pathExtension.lowercased(),
                                            dataPath: dataPath, command: request.provenance, runIDs: runIDs)) }
        return FigureResult(path: request.out, dataPath: dataPath, aStar: aStar)
    }

    /// The labels of `runs`: `--labels` (one per run), else the part of their names that differs.
    func labels(for runs: [String], _ request: FigureRequest) throws -> [String] {
        guard let given = request.labels else { return shortLabels(runs) }
        guard given.count == runs.count else {
            throw StoreError("--labels gives \(given.count) label\(given.count == 1 ? "" : "s") for \(runs.count) run\(runs.count == 1 ? "" : "s")", kind: .usage)
        }
        return given
    }

    /// relplot's smooth reliability diagram of a run (METHODS §9) as a panel.
    static func smoothPanel(_ name: String, _ analyzer: CalibrationAnalyzer, resamples: Int) -> SmoothReliabilityPanel {
        let diagram = SmoothECE.diagram(analyzer.confidences, analyzer.correctness.map { $0 ? 1.0 : 0.0 }, resamples: resamples)
        var panel = SmoothReliabilityPanel(title: name, mesh: diagram.mesh, curve: diagram.curve, lower: diagram.lower, upper: diagram.upper,
                                           density: diagram.density, smECE: diagram.smECE, sigma: diagram.sigma,
                                           n: analyzer.confidences.count)
        // smECE's interval as `track metrics --ci` gives it (the same resamples and seed).
        if let interval = analyzer.percentileIntervals([.smECE], resamples: resamples, seed: 0)[.smECE] {
            panel.smECEInterval = (interval.lower, interval.upper)
        }
        return panel
    }

    /// The columns of `binRows` (without intervals).
    static let binColumns = ["run", "panel", "bin", "lower", "upper", "n", "accuracy", "confidence", "gap"]

    static func binRows(run: String, panel: String, _ bins: [BinRow], intervals: Bool) -> [[TextTable.Cell]] {
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

    /// A logged scalar metric over steps, one line per run.
    func loggedCurve(_ request: FigureRequest, key: String) throws -> (CurvePanel, [[TextTable.Cell]]) {
        var series: [Series] = [], rows: [[TextTable.Cell]] = []
        for (name, label) in zip(request.runs, try labels(for: request.runs, request)) {
            let points = try store.loggedSeries(runID: try store.requireRun(name), key: key)
            guard !points.isEmpty else { throw StoreError("run '\(name)' has no logged metric '\(key)'", kind: .notFound) }
            series.append(Series(label: label, points: points.map { (Double($0.step), $0.value) }))
            rows += points.map { [.text(name), .text(name), .number(Double($0.step), digits: 0), .number($0.value, digits: 6),
                                  .number(nil, digits: 6), .number(nil, digits: 6)] }
        }
        var panel = CurvePanel(title: "\(key) over steps", xLabel: "Step", yLabel: key, series: series)
        panel.yFromZero = false   // a loss or an accuracy is read against its own range
        return (panel, rows)
    }

    /// A metric over epochs or steps, one line per family of runs, with bootstrap bands when asked.
    func curve(_ request: FigureRequest) throws -> (CurvePanel, [[TextTable.Cell]]) {
        if let key = request.logged { return try loggedCurve(request, key: key) }
        let metric = request.metric
        var filter = RunFilter()
        filter.names = request.runs
        var families: [String: [(x: Double, y: Double, low: Double?, high: Double?, run: String)]] = [:]
        var order: [String] = []
        for summary in try store.runSummaries(filter) {
            guard let x = request.axis == .epoch ? summary.epoch : summary.step.map(Double.init) else {
                throw StoreError("run '\(summary.name)' has no \(request.axis.rawValue); curves need it on every run", kind: .invalidInput)
            }
            let family = request.family.map { $0.value(summary) }.filter { !$0.isEmpty }.joined(separator: " / ")
            let y: Double?, interval: Interval?
            if let resamples = request.bands {
                let analyzer = try analyzer(named: summary.name, request.settings)
                y = analyzer.metrics(smooth: !MetricKey.resampled.contains(metric))[metric]
                interval = analyzer.bootstrap(resamples: resamples, seed: 0, smooth: metric == .smECE)[metric]
            } else {
                y = try metrics(named: summary.name, request.settings, keys: [metric]).metrics[metric]
                interval = nil
            }
            guard let y else { continue }
            if families[family] == nil { order.append(family) }
            families[family, default: []].append((x, y, interval?.lower, interval?.upper, summary.name))
        }
        let labels = try request.labels.map { given in
            guard given.count == order.count else {
                throw StoreError("--labels gives \(given.count) labels for \(order.count) curve famil\(order.count == 1 ? "y" : "ies")", kind: .usage)
            }
            return given
        } ?? shortLabels(order)
        let series = zip(order, labels).map { name, label in
            let points = families[name]!
            return Series(label: label, points: points.map { ($0.x, $0.y) },
                          band: points.compactMap { p in p.low.flatMap { low in p.high.map { (p.x, low, $0) } } })
        }
        let rows: [[TextTable.Cell]] = order.flatMap { name in
            families[name]!.sorted { $0.x < $1.x }.map {
                [.text(name), .text($0.run), .number($0.x, digits: 4), .number($0.y, digits: 6),
                 .number($0.low, digits: 6), .number($0.high, digits: 6)]
            }
        }
        return (CurvePanel(title: "\(metric.label) over \(request.axis.rawValue)s", xLabel: request.axis.rawValue.capitalized,
                           yLabel: metric.label, series: series), rows)
    }
}

/// Short labels for several runs: each name without the words every name shares at its start and
/// at its end (words split at "/", "-", "_", "+", ":" and spaces), keeping at least one word each
/// (`Llama-8B/DPO/in-domain`, `Llama-8B/CFT/e3/in-domain` → `DPO`, `CFT/e3`); the names
/// themselves when they are one, or when the short labels would not tell them apart.
public func shortLabels(_ names: [String]) -> [String] {
    distinctLabels(names).labels
}

/// `shortLabels` and what they left out, as `shared…shared` (e.g. `Llama-8B/…/in-domain`), empty
/// when nothing was.
public func distinctLabels(_ names: [String]) -> (labels: [String], shared: String) {
    guard names.count > 1 else { return (names, "") }
    // Words with the separator before each: "a-b/c" → ["a", "-b", "/c"].
    let separators: Set<Character> = ["/", "-", "_", "+", ":", " "]
    let words: [[Substring]] = names.map { name in
        var result: [Substring] = [], start = name.startIndex
        for index in name.indices where separators.contains(name[index]) && index != start {
            result.append(name[start..<index])
            start = index
        }
        result.append(name[start...])
        return result
    }
    let shortest = words.map(\.count).min() ?? 0
    var prefix = 0
    while prefix < shortest, words.allSatisfy({ $0[prefix] == words[0][prefix] }) { prefix += 1 }
    var suffix = 0
    while suffix < shortest - prefix, words.allSatisfy({ $0[$0.count - 1 - suffix] == words[0][words[0].count - 1 - suffix] }) { suffix += 1 }
    // Every label keeps a word.
    while prefix + suffix > shortest - 1, prefix + suffix > 0 { if suffix > 0 { suffix -= 1 } else { prefix -= 1 } }
    guard prefix + suffix > 0 else { return (names, "") }
    let labels = words.map { word -> String in
        let kept = word[prefix..<(word.count - suffix)].joined()
        return prefix > 0 ? String(kept.dropFirst()) : kept
    }
    guard Set(labels).count == Set(names).count, !labels.contains(where: \.isEmpty) else { return (names, "") }
    let head = words[0][..<prefix].joined(), tail = words[0][(words[0].count - suffix)...].joined()
    // The separator before the first word that differs stands for it: "Llama-3.1-…/DPO", "Llama/…/in".
    let shared = (prefix > 0 ? head + String(words[0][prefix].prefix(1)) : "") + "…" + tail
    return (labels, shared)
}
