import Foundation
import TrackAnalysis
import TrackCalibration
import TrackStore

/// `track metrics`: every calibration metric of stored runs.
enum MetricsCommand: Command {
    static let format = Options.format(OutputFormat.allCases)
    static let adaptive = Option.flag("adaptive", "Also show the equal-mass, smooth and l2 metrics (eq_mass_ece, ace, tace, smece, cw_smece, l2_ece, debiased_l2_ece).")
    static let ci = Option.flag("ci", "Add bootstrap confidence intervals (columns _lo/_hi; in LaTeX and Markdown, in the cells: --ci-style).")
    static let reliability = Option.flag("reliability", "Print the per-bin reliability tables (top label and classwise).")
    static let sort = Option.text("sort", "key", "--by: order each run's groups by a metric key (or n, or the group), ascending unless --desc.")
    static let spec = CommandSpec(
        name: "metrics", abstract: "Compute calibration metrics of runs (conf-ECE, cw-ECE, Brier, NLL, …).",
        usage: "<run>... [--bins <n>] [--adaptive] [--ci] [--by subject|category|dataset] [--reliability] [--format table|csv|json|latex|markdown]",
        discussion: """
        Metrics (JSON keys): accuracy, mean_confidence, overconfidence, conf_ece, mce, rmsce,
        cw_ece (= SCE), pooled_ece, eq_mass_ece, ace, tace, brier, nll, smece, cw_smece, l2_ece,
        debiased_l2_ece; plus n, bins, nll_from_scores and smece_sigma (METHODS §3).
        Classwise metrics are null when a run's questions differ in option count.
        --adaptive adds the equal-mass, smooth and l2 metrics to the table; JSON
        always has every key. --ci adds percentile bootstrap intervals over questions
        (xoshiro256** seeded with --seed: the same seed gives the same interval everywhere).
        """,
        arguments: [("<run>...", "Run names (see `track runs`).")],
        options: Options.database + Options.analysis + [adaptive, Options.metrics, ci, BootstrapOptions.resamples, BootstrapOptions.seed,
                                                        BootstrapOptions.level, Options.ciStyle, Options.by, sort, RunsCommand.descending, RunsCommand.limit,
                                                        reliability, format, Options.out])

    static func validate(_ arguments: ParsedArguments) throws {
        try checkTextOutput(arguments.value(Options.out), what: "a metrics table")
        guard arguments.given(sort) || arguments.given(RunsCommand.limit) || arguments.given(RunsCommand.descending) else { return }
        guard arguments.given(Options.by) else { throw UsageError(message: "--sort, --desc and --limit order the groups of --by subject|category|dataset") }
        if let key = arguments.value(sort), MetricKey(rawValue: key) == nil, !["n", "subject", "category", "dataset", "group"].contains(key) {
            throw UsageError(message: "--sort: unknown key '\(key)'" + suggestion(key, among: MetricKey.allCases.map(\.rawValue) + ["n", "group"]))
        }
    }

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        var request = MetricsRequest(runs: try arguments.positionals(nil, "at least one run name"))
        request.settings = session.binSettings
        request.groupBy = arguments.choice(Options.by, as: GroupKey.self)
        request.reliability = arguments.flag(reliability)
        if arguments.flag(ci) {
            request.bootstrap = BootstrapOptions(arguments).settings
        }
        var keys = try session.metricKeys() ?? (MetricColumns.main + (arguments.flag(adaptive) ? MetricColumns.adaptive : []))
        if keys.isEmpty { keys = MetricColumns.main }
        let progress = session.progress("bootstrap")
        var report = try session.reader().metrics(request) { progress.update(done: $0, total: $1, item: $2) }
        if request.groupBy != nil, arguments.given(sort) || arguments.given(RunsCommand.limit) || arguments.given(RunsCommand.descending) {
            report.rows = Self.ordered(report.rows, by: arguments.value(sort), descending: arguments.flag(RunsCommand.descending), limit: arguments.int(RunsCommand.limit))
        }
        let format = session.arguments[Self.format]
        // A paper's table prints each interval in its value's cell; machine formats keep columns.
        let inCells = format == .latex || format == .markdown ? arguments[Options.ciStyle] : nil
        let text = format == .json ? report.json.jsonText + "\n" : report.table(keys: keys, intervalsInCells: inCells).render(format)
        Console.out(text + (format == .table ? report.reliabilityText : ""))
        if let out = arguments.value(Options.out) { try writeExport(text, to: out) }
    }
}

extension MetricsCommand {
    /// Each run's groups ordered by `key` (a metric, n, or the group's name; missing values last)
    /// and cut to `limit`, the runs in their order.
    static func ordered(_ rows: [MetricsRow], by key: String?, descending: Bool, limit: Int?) -> [MetricsRow] {
        var runs: [String] = [], byRun: [String: [MetricsRow]] = [:]
        for row in rows {
            if byRun[row.run] == nil { runs.append(row.run) }
            byRun[row.run, default: []].append(row)
        }
        return runs.flatMap { run -> [MetricsRow] in
            var group = byRun[run] ?? []
            if let key, let metric = MetricKey(rawValue: key) {
                group.sort { a, b in
                    switch (a.metrics[metric], b.metrics[metric]) {
                    case let (x?, y?): return descending ? x > y : x < y
                    case (.some, nil): return true
                    default: return false
                    }
                }
            } else if key == "n" {
                group.sort { descending ? $0.metrics.n > $1.metrics.n : $0.metrics.n < $1.metrics.n }
            } else if descending {
                group.reverse()   // by name (their order), descending
            }
            return Array(group.prefix(limit ?? group.count))
        }
    }
}

/// `track compare`: one run against others, metric by metric and question by question.
enum CompareCommand: Command {
    static let by = Defaulted.choice("by", "Paired breakdown by subject, category or dataset.", default: GroupKey.subject)
    static let alpha = Defaulted.number("alpha", "x", 0.000_001...0.5, "Significance level of the paired tests (intervals at 1 − alpha).", default: 0.05)
    static let noTests = Option.flag("no-tests", "Leave out the paired bootstrap and McNemar's test.")
    static let table = Option.text("table", "name", "Only this part: metrics, tests, paired, groups or group_metrics (CSV holds one table; default metrics).")
    static let spec = CommandSpec(
        name: "compare", abstract: "Compare runs with a base run: metric deltas, change rates, paired per-question analyses.",
        usage: "<base> <other>... [--bins <n>] [--metrics <keys>] [--by subject|category|dataset] [--format table|csv|json|latex|markdown]",
        discussion: """
        For every metric: base, other, delta = other − base, and the change rate of Oh & Hwang,
        CR = (other − base) / base × 100%. When the runs share questions (same dataset and id),
        also the paired analysis on the shared questions: answers flipped right→wrong and
        wrong→right, mean Δconf and mean |Δconf|, broken down by subject (or --by dataset).
        Is the difference real? On the shared questions, each metric's difference gets a paired
        bootstrap (the same Poisson-resampled questions for both runs, seeded) with its interval
        at 1 − alpha and a two-sided p-value; accuracy also McNemar's exact test on the
        discordant pairs. "significant" is p < --alpha (METHODS §8).
        """,
        arguments: [("<base>", "The reference run (e.g. the pre-alignment model)."), ("<other>...", "Runs to compare with it.")],
        options: Options.database + Options.analysis + [Options.metrics, by, alpha, BootstrapOptions.resamples, BootstrapOptions.seed, noTests,
                                                        table, MetricsCommand.format, Options.out])

    static func validate(_ arguments: ParsedArguments) throws {
        try checkTextOutput(arguments.value(Options.out), what: "a comparison")
        if let name = arguments.value(table), !ComparisonReport.tableNames.contains(name) {
            throw UsageError(message: "--table: '\(name)' is not a part of a comparison (use \(ComparisonReport.tableNames.joined(separator: ", ")))"
                             + suggestion(name, among: ComparisonReport.tableNames))
        }
    }

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        let runs = try arguments.positionals(nil, "a base run and at least one other run")
        guard runs.count >= 2 else { throw UsageError(message: "expected a base run and at least one other run") }
        var request = ComparisonRequest(base: runs[0], others: Array(runs.dropFirst()))
        request.keys = try session.metricKeys() ?? MetricKey.allCases
        request.settings = session.binSettings
        request.groupBy = arguments[by]
        request.alpha = arguments[alpha]
        request.bootstrap = arguments.flag(noTests) ? nil
            : BootstrapOptions(arguments).settings
        let format = session.arguments[MetricsCommand.format]
        if format == .csv, arguments.value(table) == nil {
            Console.err("note: CSV holds one table, the metrics; --table tests, paired, groups or group_metrics for the others\n")
        }
        try session.emit(try session.reader().compare(request).text(format, table: arguments.value(table)))
    }
}

/// `track table`: paper-style tables from run metadata.
enum TableCommand: Command {
    static let metrics = Defaulted.text("metrics", "keys", "Metric keys.", default: "conf_ece,cw_ece,accuracy")
    static let rows = Defaulted.text("rows", "fields", "Row fields.", default: "model,method")
    static let columns = Defaulted.text("columns", "field", "Column group field.", default: "split")
    static let sweep = Option.text("sweep", "param", "A run parameter swept across runs (e.g. lambda), added to the rows.")
    static let binsSweep = Option.text("bins-sweep", "n,n", "Bin counts to report side by side (e.g. 10,14), each as --bins.")
    static let percent = Option.flag("percent", "Show metrics × 100 with 2 decimals.")
    static let caption = Option.text("caption", "text", "Table caption.")
    static let winrate = Option.flag("winrate", "Table 3 shape: win rates instead of metrics (sequence likelihood %, and A vs B per judged opponent).")
    static let format = Option.choice("format", OutputFormat.self, "Output format (default: CSV, LaTeX and Markdown files written, the table printed).")
    static let significance = Option.text("significance", "method", "Mark (†) cells that differ significantly from this method's row (paired bootstrap).")
    static let ci = Option.flag("ci", "Write each value's bootstrap interval in its cell (--ci-style, --level, --resamples, --seed), in every format.")
    static let order = Option.text("order", "a,b,c", "Order of the first row field's values (e.g. models); the rest follow as first seen.")
    static let methods = Option.text("methods", "a,b,c", "Only these methods, in this order.")
    static let out = Option.text("out", "file", "Output file (default: exports/<name>.<ext>).")
    static let name = Defaulted.text("name", "name", "Base name of the exported files.", default: "table")
    static let outDir = Defaulted.text("out-dir", "dir", "Export folder.", default: "exports")
    static let spec = CommandSpec(
        name: "table", abstract: "Paper-style tables of metrics: rows model × method, columns metric × split.",
        usage: "[--metrics <keys>] [--rows <fields>] [--columns <field>] [--sweep <param>] [--bins-sweep <n,n>] [filters] [--format csv|latex|markdown|table|json] [--out <file>]",
        discussion: """
        Table 2 of the paper (the default): rows model × method, columns conf-ECE / cw-ECE /
        accuracy × split. --sweep lambda adds the run parameter lambda to the rows (Table 4);
        --bins-sweep 10,14 repeats the metrics for each bin count (Table 5). Fields for --rows
        and --columns: model, method, dataset, split, step, epoch, extraction, param:KEY, tag:KEY
        (--columns none for a single group). When several runs fall into one cell, the one with
        the highest step/epoch (then the latest) is used, and stderr says so.
        Rows come in blocks of the first field (a model's rows together), in --order or as first
        seen, and within a block by --methods (which also selects the methods) or as first seen.
        --ci writes each value's interval in its cell: 0.118 [0.111, 0.126] or, with --ci-style pm,
        0.118 ± 0.007 (as `track metrics --ci` computes it: METHODS §3).
        Without --format, CSV, LaTeX (booktabs, best value per column and model block in bold) and Markdown are
        all written to exports/<name>.{csv,tex,md}; the table is printed. --significance DPO marks
        with † (LaTeX $^\\dagger$) each cell whose run differs from the DPO run of its row fields and
        column on their shared questions: paired bootstrap p < --alpha (METHODS §8).
        """,
        options: Options.database + [metrics, rows, columns, sweep, binsSweep] + Options.analysis + Options.filters
            + [Options.step, Options.epoch, percent, Options.digits, caption, winrate, significance, CompareCommand.alpha, order, methods,
               ci, Options.ciStyle, BootstrapOptions.resamples, BootstrapOptions.seed, BootstrapOptions.level, format, out, name, outDir])

    static func validate(_ arguments: ParsedArguments) throws {
        try checkTextOutput(arguments.value(out), what: "a table")
    }

    static func field(_ text: String) throws -> RunField {
        guard let field = RunField(text) else {
            throw UsageError(message: "unknown field '\(text)'; use \(RunField.plain.map(\.description).joined(separator: ", ")), param:KEY or tag:KEY")
        }
        return field
    }

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        _ = try arguments.positionals(0, "no arguments")
        var request = PaperTableRequest()
        switch MetricKey.list(arguments[metrics]) {
        case .success(let keys): request.keys = keys
        case .failure(let error): throw UsageError(message: error.description)
        }
        request.rows = try arguments[rows].split(separator: ",").map { try field(String($0)) }
        if let sweep = arguments.value(sweep) { request.rows.append(.param(sweep)) }
        request.column = try field(arguments[columns])
        request.epsilon = session.binSettings.epsilon
        request.binCounts = [session.binSettings.bins]
        if let text = arguments.value(binsSweep) {
            request.binCounts = try text.split(separator: ",").map { part in
                // Each count obeys the declaration of --bins.
                guard (try? BinningOptions.bins.option.check(String(part))) != nil, let n = Int(part) else {
                    throw UsageError(message: "--bins-sweep expects bin counts like 10,14, each an integer in 1…10000")
                }
                return n
            }
        }
        request.percent = arguments.flag(percent)
        request.digits = arguments.int(Options.digits) ?? (request.percent ? 2 : 4)
        request.filter = try session.runFilter()
        request.step = arguments.int(Options.step)
        request.epoch = arguments.double(Options.epoch)
        request.caption = arguments.value(caption)
        request.winRates = arguments.flag(winrate)
        if let method = arguments.value(significance) {
            request.significance = (method, arguments[CompareCommand.alpha],
                                    BootstrapOptions(arguments).settings)
        }
        if arguments.flag(ci) { request.intervals = (arguments[Options.ciStyle], BootstrapOptions(arguments).settings) }
        request.order = arguments.given(order) ? commaList(arguments.value(order)) : nil
        request.methods = arguments.given(methods) ? commaList(arguments.value(methods)) : nil
        let result: PaperTable
        let reader = try session.reader()   // a missing store is said as such, not as "no runs match"
        do {
            result = try reader.paperTable(request)
        } catch let error as StoreError where error.kind == .notFound {
            throw CommandFailure(message: "no runs match; see `track runs`")
        }
        if let note = result.crowdedNote {
            Console.err("note: \(note). Filter with --epoch/--step or add a field to --rows.\n")
        }
        let table = result.table
        if let format = arguments.choice(format, as: OutputFormat.self) {
            let text = table.render(format)
            let path = arguments.value(out) ?? (arguments[outDir] as NSString).appendingPathComponent("\(arguments[name]).\(format.fileExtension)")
            try writeExport(text, to: path)
            Console.out(text)
            Console.err("wrote \(path)\n")
        } else {
            let written = try table.writeExports(to: arguments[outDir], name: arguments[name])
            Console.out(table.render(.table))
            Console.err("wrote \(written.joined(separator: ", "))\n")
        }
    }
}

/// `track tce`: target calibration error, its bounds, and each run's regime (METHODS §5).
enum TCECommand: Command {
    static let format = Options.format([.table, .csv, .json])
    static let spec = CommandSpec(
        name: "tce", abstract: "TCE against a target run, the regime bounds and each run's regime.",
        usage: "<run>... [--target <run>] [--a-star <x>] [--c-lower <c>] [--ece-tolerance <x>] [--format table|csv|json]",
        discussion: """
        TCE(p) = (1/N) Σ_i (1/K) Σ_k |p_ik − p*_ik| over the questions a run shares with --target.
        Theorem 4.6 says cw-ECE ≤ TCE; the output checks it on the shared questions.
        A* (the critical accuracy) is --a-star if given, else the --target run's accuracy, else
        estimated as the highest accuracy among all stored runs whose conf-ECE is at most
        --ece-tolerance (default 0.02); the output says which. As the paper's Theorems 4.4/4.5
        say, the bounds c·|acc − A*| and (2/K)·|acc − A*| (c = --c-lower, default 0) bound the
        lowest TCE reachable at a run's accuracy, not the run's TCE: band says whether the run's
        TCE is inside them or above (not yet well trained: fine-tuning can bring it toward the
        band); tce_excess = TCE − upper bound. Regime: acc ≤ A* calibratable, else non-calibratable.
        """,
        arguments: [("<run>...", "Runs to place.")],
        options: Options.database + Options.regime + [BinningOptions.bins, format])

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        var request = TCERequest(runs: try arguments.positionals(nil, "at least one run"))
        request.bins = session.binSettings.bins
        request.lowerConstant = arguments[Options.cLower]
        request.aStar = session.aStarRequest()
        let report = try session.reader().tce(request)
        let format = session.arguments[format]
        Console.out(format == .json ? report.json : report.table.render(format))
    }
}

/// `track em`: EM targets of the ECE regulariser (Algorithm 1).
enum EMCommand: Command {
    static let gamma = Defaulted.choice("gamma", "The γ of the paper or of the authors' code.", default: EMTargets.Gamma.paper)
    static let out = Option.text("out", "file", "Where to write the targets: .jsonl, .csv or .npy.")
    static let against = Option.text("against", "run", "Compare this run with the stored targets of another run.")
    static let spec = CommandSpec(
        name: "em", abstract: "Compute EM targets (Algorithm 1) of a run, write and store them; compare a later run with them.",
        usage: "<run> [--bins <n>] [--gamma paper|code] --out <file.jsonl|.csv|.npy> | <run> --against <run>",
        discussion: """
        Targets per question in the original option order: the bin accuracy for the top option,
        α·tanh(γ·p)+β for the others (γ = ln 3 / p_(2), or the authors' code variant
        ln 3 / (p_(2)·(1 − acc_m)) with --gamma code). Prints per-bin accuracies, L_cal (the
        per-bin weighted MSE of the run's probabilities to its targets) and how many questions
        may break the rank order. The targets are stored with the run; `track em NEXT --against
        RUN` computes L_cal of NEXT's probabilities against RUN's stored targets and bins.
        """,
        arguments: [("<run>", "The run (training questions of one epoch).")],
        options: Options.database + [BinningOptions.bins, gamma, out, against])

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        let name = try arguments.positionals(1, "one run")[0]
        let reader = try session.reader(readOnly: false)
        if let against = arguments.value(against) {
            let result = try reader.emLoss(run: name, against: against)
            Console.out(String(format: "L_cal of '%@' against the EM targets of '%@': %.6f (%d paired questions)\n",
                               name, against, result.loss, result.paired))
            return
        }
        var request = EMRequest(run: name)
        request.bins = session.binSettings.bins
        request.gamma = arguments[gamma]
        request.out = arguments.value(out)
        Console.out(try reader.emTargets(request).text)
    }
}

/// `track winrate`: win rates from preference pairs or judged comparisons (METHODS §7).
enum WinRateCommand: Command {
    static let vs = Option.text("vs", "name", "Judged comparisons against this run or reference.")
    static let ties = Option.choice("ties", WinRate.Ties.self, "How a tie counts (default: loss for pairs, half for judgments).")
    static let normalize = Option.flag("normalize", "Compare per-token mean log-likelihoods (pairs with token counts).")
    static let spec = CommandSpec(
        name: "winrate", abstract: "Win rates from preference pairs (sequence likelihood) or judged comparisons, with Wilson 95% intervals.",
        usage: "<run>... [--vs <run-or-reference>] [--ties loss|half] [--normalize] [--format table|csv|json|markdown|latex]",
        discussion: """
        Without --vs: the run's preference pairs; a win when the chosen response's sequence
        log-likelihood exceeds the rejected one's (paper Eq. 21). Ties count as losses (the
        paper's convention, default) or as half (--ties half); --normalize compares per-token
        means. With --vs: judged comparisons of the run (A) against that run or reference (B),
        reported as "A vs B" shares as in the paper's Table 3 (ties split unless --ties loss).
        Log pairs and judgments as JSON lines through `track log` or `track ingest`:
          {"pair": "p1", "chosen_logprob": -41.2, "rejected_logprob": -48.9, "chosen_tokens": 37, "rejected_tokens": 44}
          {"judgment": "p1", "verdict": "A", "vs": "gpt-4-turbo"}
        """,
        arguments: [("<run>...", "Runs.")],
        options: Options.database + [vs, ties, normalize, MetricsCommand.format])

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        var request = WinRateRequest(runs: try arguments.positionals(nil, "at least one run"))
        request.opponent = arguments.value(vs)
        request.ties = arguments.choice(ties, as: WinRate.Ties.self)
        request.normalize = arguments.flag(normalize)
        Console.out(try session.reader().winRates(request).render(session.arguments[MetricsCommand.format]))
    }
}
