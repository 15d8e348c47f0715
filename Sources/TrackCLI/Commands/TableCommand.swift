import Foundation
import TrackCalibration
import TrackStore

/// `track table`: paper-style tables from run metadata.
enum TableCommand: Command {
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
        Without --format, CSV, LaTeX (booktabs, best value per column in bold) and Markdown are
        all written to exports/<name>.{csv,tex,md}; the table is printed.
        """,
        options: SharedOptions.database + [
            .value("metrics", "keys", "Metric keys (default: conf_ece,cw_ece,accuracy)."),
            .value("rows", "fields", "Row fields (default: model,method)."),
            .value("columns", "field", "Column group field (default: split)."),
            .value("sweep", "param", "A run parameter swept across runs (e.g. lambda), added to the rows."),
            .value("bins-sweep", "n,n", "Bin counts to report side by side (e.g. 10,14)."),
            .value("bins", "n", "Number of bins (default: 10)."),
            .value("epsilon", "x", "TACE threshold (default: 0.01)."),
            .value("model", "name", "Only runs of this model."),
            .value("method", "name", "Only runs of this method."),
            .value("dataset", "name", "Only runs on this dataset."),
            .value("split", "name", "Only runs on this split."),
            .value("step", "n", "Only runs at this step."),
            .value("epoch", "x", "Only runs at this epoch."),
            .value("tag", "key=value", "Only runs with this tag.", repeatable: true),
            .flag("percent", "Show metrics × 100 with 2 decimals."),
            .value("digits", "n", "Decimals (default: 4, or 2 with --percent)."),
            .value("caption", "text", "Table caption."),
            .flag("winrate", "Table 3 shape: win rates instead of metrics (sequence likelihood %, and A vs B per judged opponent)."),
            .value("format", "format", "csv, latex, markdown, table or json (default: write csv, tex and md)."),
            .value("out", "file", "Output file (default: exports/<name>.<ext>)."),
            .value("name", "name", "Base name of the exported files (default: table)."),
            .value("out-dir", "dir", "Export folder (default: exports)."),
        ])

    /// A run with its metadata, as the table sees it.
    struct RunInfo {
        var summary: RunSummary
        var params: [String: String]
        var tags: [String: String]

        func field(_ name: String) -> String {
            if name.hasPrefix("param:") { return params[String(name.dropFirst(6))] ?? "" }
            if name.hasPrefix("tag:") { return tags[String(name.dropFirst(4))] ?? "" }
            return summary.field(name) ?? ""
        }

        /// Later training state wins a cell.
        var progress: (Double, Double, Int64) {
            (Double(summary.step ?? -1), summary.epoch ?? -1, summary.id)
        }
    }

    static let fields = ["model", "method", "dataset", "split", "step", "epoch", "extraction", "none"]

    /// A row field's column header: the key of `param:KEY` / `tag:KEY`, else the field's name.
    static func header(_ field: String) -> String {
        if field.hasPrefix("param:") { return String(field.dropFirst(6)) }
        if field.hasPrefix("tag:") { return String(field.dropFirst(4)) }
        return field.capitalized
    }

    /// Table 3 of the paper: per row, the sequence-likelihood win rate (%) and, per judged
    /// opponent, "A vs B" shares with ties split.
    static func winRateTable(store: RunStore, rowFields: [String], rowKeys: [[String]], cells: [String: RunInfo],
                             columnValues: [String]) throws -> TextTable {
        var rowsRuns: [[String]: [RunInfo]] = [:]
        for key in rowKeys {
            rowsRuns[key] = columnValues.compactMap { cells[key.joined(separator: "\u{1}") + "\u{2}" + $0] }
        }
        var opponents: [String] = []
        var pairsSeen = false
        for runs in rowsRuns.values {
            for run in runs {
                try store.database.forEachRow("SELECT DISTINCT opponent FROM judgments WHERE run_id = ? ORDER BY opponent",
                                              [.integer(run.summary.id)]) { row in
                    if let name = row.string(0), !opponents.contains(name) { opponents.append(name) }
                }
                if try store.database.scalarInt("SELECT count(*) FROM preference_pairs WHERE run_id = ?", [.integer(run.summary.id)]) ?? 0 > 0 {
                    pairsSeen = true
                }
            }
        }
        opponents.sort()
        var columns = rowFields.map(header)
        if pairsSeen { columns.append("SL win %") }
        columns += opponents.map { "vs \($0)" }
        var best: [TextTable.Best?] = Array(repeating: nil, count: rowFields.count)
        if pairsSeen { best.append(.highest) }
        best += Array(repeating: nil, count: opponents.count)
        var rows: [[TextTable.Cell]] = []
        for key in rowKeys {
            var row: [TextTable.Cell] = key.map { .text($0) }
            let runs = rowsRuns[key] ?? []
            if pairsSeen {
                var pairs: [PreferencePair] = []
                for run in runs {
                    try store.database.forEachRow("SELECT prompt_id, chosen_logprob, rejected_logprob FROM preference_pairs WHERE run_id = ?",
                                                  [.integer(run.summary.id)]) { pairs.append(PreferencePair(promptID: $0.string(0) ?? "", chosenLogProb: $0.double(1), rejectedLogProb: $0.double(2))) }
                }
                row.append(.number(pairs.isEmpty ? nil : 100 * WinRate.sequenceLikelihood(pairs).rate, digits: 2))
            }
            for opponent in opponents {
                var verdicts: [String] = []
                for run in runs {
                    try store.database.forEachRow("SELECT verdict FROM judgments WHERE run_id = ? AND opponent = ?",
                                                  [.integer(run.summary.id), .text(opponent)]) { verdicts.append($0.string(0) ?? "") }
                }
                if verdicts.isEmpty { row.append(.text(nil)); continue }
                let a = WinRate.judged(verdicts, ties: .half).rate * 100
                row.append(.text(String(format: "%.2f vs %.2f", a, 100 - a)))
            }
            // Rows with no win-rate data at all are left out.
            if row.dropFirst(rowFields.count).contains(where: { $0.display != "" }) { rows.append(row) }
        }
        var table = TextTable(columns: columns, rows: rows)
        table.best = best
        return table
    }

    static func checkField(_ name: String) throws {
        guard fields.contains(name) || name.hasPrefix("param:") || name.hasPrefix("tag:") else {
            throw UsageError(message: "unknown field '\(name)'; use \(fields.joined(separator: ", ")), param:KEY or tag:KEY")
        }
    }

    static func run(_ arguments: ParsedArguments) throws {
        guard arguments.positionals.isEmpty else { throw UsageError(message: "unexpected argument '\(arguments.positionals[0])'") }
        let keys = try MetricColumns.parse(arguments.value("metrics")) ?? ["conf_ece", "cw_ece", "accuracy"]
        var rowFields = (arguments.value("rows") ?? "model,method").split(separator: ",").map(String.init)
        if let sweep = arguments.value("sweep") { rowFields.append("param:\(sweep)") }
        let columnField = arguments.value("columns") ?? "split"
        for field in rowFields + [columnField] { try checkField(field) }
        let options = try AnalysisOptions(arguments)
        let binCounts = try arguments.value("bins-sweep").map { text in
            try text.split(separator: ",").map { part -> Int in
                // Each count obeys the rule of --bins.
                guard let n = try? NumericOptions.check("bins", String(part), command: "table").map(Int.init) else {
                    throw UsageError(message: "--bins-sweep expects bin counts like 10,14, each an integer in 1...10000")
                }
                return n
            }
        } ?? [options.bins]
        let percent = arguments.flag("percent")
        let digits = try arguments.int("digits") ?? (percent ? 2 : 4)
        let formatText = arguments.value("format")
        let format = try formatText.map { text -> OutputFormat in
            guard let f = OutputFormat(rawValue: text) else { throw UsageError(message: "--format must be csv, latex, markdown, table or json") }
            return f
        }

        let store = try SharedOptions.openStore(arguments, readOnly: true)
        let filter = try SharedOptions.runFilter(arguments)
        let step = try arguments.int("step"), epoch = try arguments.double("epoch")
        let winRates = arguments.flag("winrate")
        let params = try store.keyValuesByRun("params"), tags = try store.keyValuesByRun("tags")
        let runs = try store.runSummaries(filter).filter {
            (winRates || $0.n > 0) && (step == nil || $0.step == step) && (epoch == nil || $0.epoch == epoch)
        }.map { summary in
            RunInfo(summary: summary,
                    params: params[summary.id] ?? [:], tags: tags[summary.id] ?? [:])
        }
        guard !runs.isEmpty else { throw CommandFailure(message: "no runs match; see `track runs`") }

        // Cells: (row key, column group) -> the latest run.
        var rowKeys: [[String]] = [], columnValues: [String] = []
        var cells: [String: RunInfo] = [:]
        var crowded: [String: Int] = [:]
        for run in runs {
            let rowKey = rowFields.map(run.field)
            let column = run.field(columnField)
            if !rowKeys.contains(rowKey) { rowKeys.append(rowKey) }
            if !columnValues.contains(column) { columnValues.append(column) }
            let cell = rowKey.joined(separator: "\u{1}") + "\u{2}" + column
            crowded[cell, default: 0] += 1
            if let existing = cells[cell], existing.progress > run.progress { continue }
            cells[cell] = run
        }
        let shared = crowded.filter { $0.value > 1 }
        if let example = shared.keys.sorted().first {
            Console.err("note: \(shared.count) cells hold several runs (e.g. epochs); each shows its latest step/epoch, e.g. '\(cells[example]!.summary.name)'. Filter with --epoch/--step or add a field to --rows.\n")
        }
        if rowFields.contains(where: { $0.hasPrefix("param:") }) {
            // Sweeps read best in numeric order of the swept value.
            rowKeys.sort { a, b in
                for (x, y) in zip(a, b) where x != y {
                    if let dx = Double(x), let dy = Double(y) { return dx < dy }
                    return false
                }
                return false
            }
        }

        if winRates {
            var table = try winRateTable(store: store, rowFields: rowFields, rowKeys: rowKeys, cells: cells, columnValues: columnValues)
            table.caption = arguments.value("caption")
            try writeTable(table, arguments: arguments, format: format)
            return
        }

        // Metrics per (run, bins): from the stored summaries when they answer
        // (10 bins, no equal-mass metric), else computed once per run from its rows.
        var metrics: [Int64: [Int: CalibrationMetrics]] = [:]
        let cellRuns = Set(cells.values.map(\.summary.id))
        if binCounts == [10], Set(keys).isSubset(of: RunStore.storedMetricKeys) {
            for (id, stored) in try store.storedMetrics(runIDs: cellRuns.sorted()) { metrics[id] = [10: stored] }
        }
        for run in Set(cells.values.filter { metrics[$0.summary.id] == nil }.map(\.summary.name)).sorted() {
            let loaded = try store.loadRun(named: run)
            metrics[loaded.id] = Dictionary(uniqueKeysWithValues: binCounts.map { bins in
                (bins, CalibrationAnalyzer(loaded.predictions, bins: bins, epsilon: options.epsilon).metrics())
            })
        }

        var columns = rowFields.map(header)
        var groups: [String?] = Array(repeating: nil, count: columns.count)
        var best: [TextTable.Best?] = Array(repeating: nil, count: columns.count)
        for column in columnValues {
            for bins in binCounts {
                for key in keys {
                    columns.append(CalibrationMetrics.labels[key] ?? key)
                    var group = columnField == "none" ? nil : (column.isEmpty ? "(none)" : column)
                    if binCounts.count > 1 { group = [group, "B=\(bins)"].compactMap { $0 }.joined(separator: ", ") }
                    groups.append(group)
                    best.append(MetricColumns.best(key))
                }
            }
        }
        let rows: [[TextTable.Cell]] = rowKeys.map { rowKey in
            var row: [TextTable.Cell] = rowKey.map { .text($0) }
            for column in columnValues {
                let run = cells[rowKey.joined(separator: "\u{1}") + "\u{2}" + column]
                for bins in binCounts {
                    for key in keys {
                        let value = run.flatMap { metrics[$0.summary.id]?[bins]?[key] }
                        row.append(.number(value.map { percent ? $0 * 100 : $0 }, digits: digits))
                    }
                }
            }
            return row
        }
        var table = TextTable(columns: columns, rows: rows)
        table.groups = groups
        table.best = best
        table.caption = arguments.value("caption")

        try writeTable(table, arguments: arguments, format: format)
    }

    /// Writes the table where asked (or CSV, LaTeX and Markdown to exports/) and prints it.
    static func writeTable(_ table: TextTable, arguments: ParsedArguments, format: OutputFormat?) throws {
        let name = arguments.value("name") ?? "table"
        let directory = arguments.value("out-dir") ?? "exports"
        if let format {
            let text = table.render(format)
            let path = arguments.value("out") ?? (directory as NSString).appendingPathComponent("\(name).\(format.fileExtension)")
            try writeExport(text, to: path)
            Console.out(text)
            Console.err("wrote \(path)\n")
        } else {
            var written: [String] = []
            for f in [OutputFormat.csv, .latex, .markdown] {
                let path = (directory as NSString).appendingPathComponent("\(name).\(f.fileExtension)")
                try writeExport(table.render(f), to: path)
                written.append(path)
            }
            Console.out(table.render(.table))
            Console.err("wrote \(written.joined(separator: ", "))\n")
        }
    }
}
