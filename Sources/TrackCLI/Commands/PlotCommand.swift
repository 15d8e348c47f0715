import Foundation
import TrackAnalysis
import TrackCalibration
import TrackFigures
import TrackStore

/// `track plot`: figures for papers from stored runs.
enum PlotCommand: Command {
    static let out = Option.text("out", "file", "Output file: .png, .pdf or .svg (default: exports/<kind>.png).")
    static let binCI = Option.flag("bin-ci", "Draw each bin's 95% Wilson interval of accuracy (CSV: ci_low, ci_high, ci_method).")
    static let by = Option.choice("by", GroupKey.self, "grid: one panel per subject (or category, or dataset) of one run.")
    static let order = Defaulted.choice("order", "grid --by: panels by conf-ECE (worst first), by questions (most first) or by name.", default: FigureRequest.PanelOrder.ece)
    static let top = Option.integer("top", "k", 1...100_000, "grid --by: only the first K panels in --order.")
    static let labels = Option.text("labels", "a,b,c", "Labels of the runs (curve: of the families), comma-separated, in order (default: the part of the names that differs).")
    static let overlay = Option.flag("overlay", "reliability: draw several runs in one panel (outlined bars, one colour each, and their count strips).")
    static let data = Option.text("data", "file", "Where the CSV of the numbers drawn goes (default: the figure's name + .csv, e.g. rel.png.csv).")
    static let dpi = Defaulted.number("dpi", "n", 10...2400, "PNG resolution.", default: 200)
    static let width = Defaulted.number("width", "pt", 120...5000, "Panel width in points.", default: 260)
    static let height = Defaulted.number("height", "pt", 120...5000, "Panel height in points.", default: 300)
    static let columns = Option.integer("columns", "n", 1...100, "Panels per row (grid, classwise).")
    static let noHistogram = Option.flag("no-histogram", "Leave out the count strip under reliability diagrams.")
    static let title = Option.text("title", "text", "Figure title.")
    static let x = Defaulted.choice("x", "curve: the x axis.", default: FigureRequest.CurveAxis.epoch)
    static let family = Defaulted.text("family", "fields", "curve: fields that name a family.", default: "model,method,split")
    static let ci = Option.flag("ci", "curve: bootstrap bands (95%).")
    static let logged = Option.text("logged", "key", "curve: a scalar metric logged with the runs (e.g. train/loss) over their steps.")
    static let spec = CommandSpec(
        name: "plot", abstract: "Draw reliability diagrams, classwise panels, grids and curves (PNG, PDF, SVG).",
        usage: "reliability|classwise|grid|curve|regime|smooth <run>... --out exports/NAME.{png,pdf,svg} [options]",
        discussion: """
        reliability  one run's reliability diagram (paper Figure 3): bars = accuracy per confidence
                     bin, shaded by its number of samples (one scale per figure, in the legend);
                     light red above a bar = overconfident gap to the bin's mean confidence,
                     orange over it = underconfident; dashed = perfect calibration; conf-ECE and
                     n in the title. With --overlay, several runs in one panel (outlined bars).
        classwise    one panel per option (all N values p_ik) plus the pooled panel (Figures 5-8).
        grid         several runs side by side with shared axes (e.g. DPO / TS / CFT / RCFT), or
                     one run's subjects (--by subject --top K --order ece|n|name).
        curve        a metric over epoch or step for families of runs (Figure 1, right);
                     families are runs sharing --family fields (default model,method,split).
        regime       ECE (--metric) against accuracy with the band between the TCE bounds,
                     A* marked and runs as points (Figure 2); A* as in `track tce`.
        smooth       relplot's smooth reliability diagram of each run: the kernel regression of
                     correctness on confidence at smECE's bandwidth, its 95% bootstrap band
                     (--resamples), the diagonal, and the confidences' density below.
        The format comes from the extension of --out. Beside the figure, a CSV of the numbers
        drawn is written (same name, .csv), and the store records file, SHA-256, runs and command.
        """,
        arguments: [("<kind>", "reliability, classwise, grid, curve, regime or smooth."), ("<run>...", "Run names.")],
        options: Options.database + Options.analysis + [out, binCI, by, order, top, labels, overlay, data, dpi, width, height, columns, noHistogram,
                                                        title, Options.metric, x, family, ci, logged, BootstrapOptions.resamples] + Options.regime)

    static func validate(_ arguments: ParsedArguments) throws {
        let kind = try arguments.positional(0, as: FigureRequest.Kind.self, "kind")
        guard arguments.positionals.count > 1 else { throw UsageError(message: "expected at least one run name") }
        if arguments.given(by), kind != .grid { throw UsageError(message: "--by subject|category|dataset draws one run's groups with `plot grid`") }
        if arguments.given(top), !arguments.given(by) { throw UsageError(message: "--top K picks panels of `plot grid --by …`") }
        if arguments.given(overlay), kind != .reliability { throw UsageError(message: "--overlay draws several runs in one reliability panel: `plot reliability A B --overlay`") }
        if kind == .reliability, arguments.positionals.count > 2, !arguments.given(overlay) {
            throw UsageError(message: "a reliability diagram draws one run: add --overlay to draw \(arguments.positionals.count - 1) in one panel, or use `plot grid`")
        }
        if let text = arguments.value(labels) {
            let count = text.split(separator: ",", omittingEmptySubsequences: false).count
            if kind != .curve, count != arguments.positionals.count - 1 {
                throw UsageError(message: "--labels gives \(count) label\(count == 1 ? "" : "s") for \(arguments.positionals.count - 1) run\(arguments.positionals.count == 2 ? "" : "s")")
            }
        }
        if let path = arguments.value(out) {
            do { _ = try FigureFormat(path: path) } catch { throw UsageError(message: "\(error)") }
        }
    }

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        let kind = try arguments.positional(0, as: FigureRequest.Kind.self, "kind")
        let runs = Array(arguments.positionals.dropFirst())
        var request = FigureRequest(kind: kind, runs: runs, out: arguments.value(out) ?? "exports/\(kind.rawValue).png")
        request.dataPath = arguments.value(data)
        request.settings = session.binSettings
        request.dpi = arguments[dpi]
        request.panelWidth = arguments[width]
        request.panelHeight = arguments[height]
        request.columns = arguments.int(columns)
        request.histogram = !arguments.flag(noHistogram)
        request.binIntervals = arguments.flag(binCI)
        request.title = arguments.value(title)
        request.groupBy = arguments.choice(by, as: GroupKey.self)
        request.order = arguments[order]
        request.top = arguments.int(top)
        request.labels = arguments.value(labels).map { $0.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) } }
        request.overlay = arguments.flag(overlay)
        request.metric = arguments[Options.metric]
        request.axis = arguments[x]
        request.family = try arguments[family].split(separator: ",").map { try TableCommand.field(String($0)) }
        request.bands = arguments.flag(ci) || kind == .smooth ? arguments[BootstrapOptions.resamples] : nil
        request.logged = arguments.value(logged)
        request.aStar = session.aStarRequest()
        request.lowerConstant = arguments[Options.cLower]
        request.provenance = session.commandLine
        let result = try session.reader(readOnly: false).figure(request)
        if let aStar = result.aStar { Console.err("A* = \(String(format: "%.4f", aStar.value)) (\(aStar.source))\n") }
        Console.out("wrote \(result.path) and \(result.dataPath)\n")
    }
}

/// `track calibrate`: post-hoc calibration of stored runs, as derived runs.
enum CalibrateCommand: Command {
    static let fit = Option.text("fit", "run", "The run to fit on.")
    static let apply = Option.text("apply", "run", "A run to apply the fit to (default: none, just report the fit).", repeatable: true)
    static let criterion = Defaulted.choice("criterion", "temperature: what T minimises.", default: TemperatureFit.Criterion.nll)
    static let holdout = Option.number("holdout", "fraction", 0.01...0.99, "Hold out this fraction of the questions: fit on the rest, report on them, derive runs of them only.")
    static let folds = Option.integer("folds", "k", 2...1000, "Cross-fit: K folds, each question calibrated by the fit on the other folds; derived runs hold every question.")
    static let inSample = Option.flag("in-sample", "Allow --apply of the --fit run without --holdout or --folds (its derived run is then scored on its own fit questions).")
    static let suffix = Option.text("suffix", "text", "Name suffix of derived runs (default: /TS, +VS, +MS or /DIR).")
    static let replace = Option.flag("replace", "Replace derived runs of the same name (e.g. a run left by an earlier fit).")
    static let format = Options.format([.table, .json])
    static let lambda = Defaulted.number("lambda", "x", 0...1e6, "vector/matrix/dirichlet: L2 on off-diagonal weights.", default: 0)
    static let mu = Defaulted.number("mu", "x", 0...1e6, "vector/matrix/dirichlet: L2 on the biases.", default: 0)
    static let equalMass = Option.flag("equal-mass", "histogram: equal-mass bins (quantiles of each class's probabilities) instead of equal-width.")
    static let methods = Method.allCases.map(\.rawValue).joined(separator: "|")
    static let spec = CommandSpec(
        name: "calibrate", abstract: "Fit a recalibration map on a run and apply it to runs, as new derived runs.",
        usage: "temperature|vector|matrix|dirichlet|isotonic|histogram --fit <run> [--apply <run>]... [--holdout <fraction> | --folds <k>] [--seed <n>] [method options]",
        discussion: """
        Fits T > 0 on the --fit run's questions: by NLL (solved to 1e-9 in log T) or by conf-ECE
        over a fine log-spaced grid (--criterion ece). Scores are the stored raw scores, else
        log p. The primary use fits on a validation run and applies to a test run
        (--fit VAL --apply TEST). On one run, no number is scored on the questions its map was
        fitted on: --holdout F holds out a seeded fraction F of the questions (chosen by hashing
        their ids with --seed): the fit uses the rest, the before/after figures and the derived
        runs hold only the held-out ones. --folds K cross-fits: every question is calibrated by
        the map fitted on the other K-1 folds, and derived runs hold every question. --apply of
        the --fit run without either is refused unless --in-sample. Each --apply run gets a
        derived run '<run>+TS' (method TS) with scores s/T and probabilities softmax(s/T); it
        records its parent run, the split (ts.split, ts.holdout / ts.folds, ts.seed) and the fit
        (ts.temperature, or ts.fold.<k>.temperature per fold) in params; each question's fold is
        in the table calibration_folds (holdout: 0 fitted on, 1 held out).
        vector / matrix: s' = W·s + b with W diagonal / full (Guo et al.); dirichlet: the same on
        s = log p (Kull et al.); fitted by L-BFGS on NLL + --lambda·Σ off-diagonal W² + --mu·Σ b²,
        with OpenBLAS. Derived runs '<run>+VS', '+MS', '+DIR' record W and b in params ms.*.
        isotonic / histogram: one map per class fitted one-vs-rest on (p_ik, [y_i = k]) and the
        results renormalised per question: isotonic regression as scikit-learn's (clipped to [0, 1],
        linear between fitted points), histogram binning as netcal's (--bins equal-width bins, or
        --equal-mass; an empty bin maps to its centre). Derived runs '+ISO', '+HB' store the
        calibrated probabilities and record the maps in params iso.* / hb.*.
        """,
        arguments: [("<method>", "temperature, vector, matrix, dirichlet, isotonic or histogram.")],
        options: Options.database + [fit, apply, criterion, holdout, folds, inSample, BootstrapOptions.seed, BinningOptions.bins, suffix, replace, format, lambda, mu, equalMass])

    /// The recalibration maps, by the name `track calibrate` takes.
    enum Method: String, CaseIterable {
        case temperature, vector, matrix, dirichlet, isotonic, histogram

        func calibrator(_ arguments: ParsedArguments, bins: Int) -> any Calibrator {
            switch self {
            case .temperature: TemperatureCalibrator(criterion: arguments[criterion], bins: bins)
            case .vector: MatrixCalibrator(.vector, lambda: arguments[lambda], mu: arguments[mu])
            case .matrix: MatrixCalibrator(.matrix, lambda: arguments[lambda], mu: arguments[mu])
            case .dirichlet: MatrixCalibrator(.dirichlet, lambda: arguments[lambda], mu: arguments[mu])
            case .isotonic: ClasswiseCalibrator(.isotonic)
            case .histogram: ClasswiseCalibrator(.histogram(bins: bins, equalMass: arguments.flag(equalMass)))
            }
        }
    }

    static func validate(_ arguments: ParsedArguments) throws {
        _ = try arguments.positionals(1, "track calibrate \(methods) --fit RUN …")
        _ = try arguments.positional(0, as: Method.self, "method")
        guard arguments.value(fit) != nil else { throw UsageError(message: "--fit <run> is required") }
        if arguments.given(holdout), arguments.given(folds) { throw UsageError(message: "--holdout and --folds are two ways to split; give one") }
    }

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        let method = try arguments.positional(0, as: Method.self, "method")
        var request = CalibrationRequest(calibrator: method.calibrator(arguments, bins: session.binSettings.bins),
                                         fitRun: arguments.value(fit) ?? "")
        request.applyTo = arguments.all(apply)
        if let fraction = arguments.double(holdout) {
            request.split = .holdout(fraction)
        } else if let k = arguments.int(folds) {
            request.split = .folds(k)
        }
        request.allowInSample = arguments.flag(inSample)
        request.seed = UInt64(bitPattern: arguments[BootstrapOptions.seed])
        request.bins = session.binSettings.bins
        request.suffix = arguments.value(suffix)
        request.replace = arguments.flag(replace)
        let result = try Calibration.run(request, store: try session.runs())
        Console.out(session.arguments[format] == .json ? result.json.jsonText + "\n" : result.text)
    }
}

/// `track demo`: the embedded default job on simulated data.
enum DemoCommand: Command {
    static let db = Defaulted.text("db", "path", "Where to write the demo database (replaced if it is a demo).", default: "demo.sqlite")
    static let out = Defaulted.text("out", "dir", "Where to write exports.", default: "exports")
    static let questions = Defaulted.integer("questions", "n", 1...10_000_000, "Questions per domain.", default: 1000)
    static let spec = CommandSpec(
        name: "demo", abstract: "Build a demo database of SIMULATED runs and its exports.",
        usage: "[--db <path>] [--out <dir>] [--seed <n>] [--questions <n>]",
        discussion: """
        Simulates the papers' setting — 3 models x SFT / DPO / TS / CFT / RCFT (3 epochs each)
        x in-domain and out-domain — with aligned (DPO) runs overconfident as the papers report,
        plus preference pairs. The data are simulated; no model is run. The same seed gives the
        same database on every machine.
        """,
        options: [db, out, BootstrapOptions.seed, questions, Options.quiet])

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        _ = try arguments.positionals(0, "no arguments")
        var request = DemoRequest()
        request.path = arguments[db]
        if StoreLocation.isPostgresURI(request.path) { throw UsageError(message: "track demo writes a SQLite file: give --db a path, not a PostgreSQL connection (push the demo runs there with track push)") }
        request.out = arguments[out]
        request.seed = UInt64(bitPattern: arguments[BootstrapOptions.seed])
        request.questionsPerDomain = arguments[questions]
        Console.out(try Demo.build(request).text)
        Console.out("next: track runs --db \(request.path) --method DPO   |   track sql --db \(request.path) \"SELECT * FROM run_summary\"\n")
    }
}

/// `track report`: one self-contained HTML file of a store's runs.
enum ReportCommand: Command {
    static let out = Defaulted.text("out", "file", "The HTML file.", default: "exports/report.html")
    static let details = Defaulted.integer("details", "n", 0...100_000, "Runs given a detail section (metrics with intervals, figures).", default: 50)
    static let pairs = Defaulted.integer("pairs", "n", 0...100_000, "At most this many pairs of runs in detail (one model, one dataset) get paired tests for the compare view.", default: 100)
    static let spec = CommandSpec(
        name: "report", abstract: "Write a self-contained HTML report of runs: a run browser that opens offline in any browser.",
        usage: "[--where <expr>] [--experiment <e>] [filters] [--out exports/report.html] [--details <n>] [--pairs <n>]",
        discussion: """
        One HTML file with everything inline (no network): the runs table (click a header to sort,
        type to filter; a column chooser for every metric, params.KEY, tags.KEY, logged.KEY, epoch,
        step, parent, status and source, kept in the URL's fragment); each row links to its run's
        section (#run-…). Tick 2–5 rows and Compare: metrics side by side with paired bootstrap
        differences and McNemar's test (as `track compare`, for runs in detail of one model on one
        dataset), their reliability diagrams overlaid, per-subject deltas. The first --details runs
        get metrics with bootstrap intervals, the test of calibration, where they came from (parent,
        method, fit), per-subject tables and diagrams; the others a brief section. Logged scalars
        (single values as markers) with smoothing and a log scale; Table 2; win rates. Figures are
        drawn in the browser from the numbers in the file as they scroll into view.
        """,
        options: Options.database + Options.filters + [Options.experiment, RunsCommand.whereOption, out, details, pairs, BootstrapOptions.resamples])

    static func validate(_ arguments: ParsedArguments) throws {
        try checkTextOutput(arguments[out], what: "the report", expected: ["html", "htm"])
    }

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        _ = try arguments.positionals(0, "no arguments")
        var request = ReportRequest(out: arguments[out])
        request.filter = try session.runFilter()
        request.filter.experiment = arguments.value(Options.experiment)
        if let text = arguments.value(RunsCommand.whereOption) {
            do { request.filter.query = try RunQuery(text) } catch { throw UsageError(message: "--where: \(error.description)") }
        }
        request.detailLimit = arguments[details]
        request.maxPairs = arguments[pairs]
        request.resamples = arguments[BootstrapOptions.resamples]
        request.provenance = session.commandLine
        let result = try Report.build(request, store: try session.runs(readOnly: true))
        Console.out("wrote \(result.path): \(result.runs) runs, \(result.detailed) in detail, \(result.pairs) compared pairs, \(result.bytes / 1024) KB\n")
    }
}
