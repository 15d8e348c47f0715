import Foundation
import TrackCalibration
import TrackStore

/// A paper-style table: rows (e.g. model × method) by column groups (e.g. split),
/// each cell a stored run's metrics (Table 2), or its win rates (Table 3).
public struct PaperTableRequest: Sendable {
    public var keys: [MetricKey] = [.confECE, .cwECE, .accuracy]
    public var rows: [RunField] = [.model, .method]
    public var column: RunField = .split
    /// Bin counts side by side (Table 5); one by default.
    public var binCounts: [Int] = [10]
    public var epsilon = 0.01
    public var filter = RunFilter()
    public var step: Int?
    public var epoch: Double?
    /// Values × 100.
    public var percent = false
    public var digits = 4
    public var caption: String?
    /// Table 3: win rates instead of metrics.
    public var winRates = false
    /// Mark cells that differ significantly from the row of this method (same other row
    /// fields, same column): a paired bootstrap on the shared questions (METHODS §8).
    public var significance: (method: String, alpha: Double, bootstrap: BootstrapSettings)?
    /// Each cell's interval (as `track metrics --ci` computes it) written in the cell.
    public var intervals: (style: TextTable.IntervalStyle, bootstrap: BootstrapSettings)?
    /// The order of the first row field's values (e.g. models); values not listed follow in the
    /// order they are first seen.
    public var order: [String]?
    /// Only these methods, in this order (rows with the method field).
    public var methods: [String]?

    public init() {}
}

/// The table and, when several runs fell into one cell, which one each shows.
public struct PaperTable: Sendable {
    public var table: TextTable
    /// Cells that held several runs (e.g. epochs), and the run shown in one of them.
    public var crowdedCells = 0
    public var crowdedExample: String?

    /// Says so: "12 cells hold several runs (e.g. epochs); each shows its latest step/epoch, e.g. 'x'".
    public var crowdedNote: String? {
        crowdedExample.map { "\(crowdedCells) cells hold several runs (e.g. epochs); each shows its latest step/epoch, e.g. '\($0)'" }
    }
}

extension RunReader {
    public func paperTable(_ request: PaperTableRequest) throws -> PaperTable {
        let params = try store.keyValuesByRun("params"), tags = try store.keyValuesByRun("tags")
        let matching = try store.runSummaries(request.filter).filter {
            (request.winRates || $0.n > 0) && (request.step == nil || $0.step == request.step)
                && (request.epoch == nil || $0.epoch == request.epoch)
        }
        guard !matching.isEmpty else { throw StoreError("no runs match", kind: .notFound) }
        let methodOrder = request.methods.map { Dictionary($0.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first }) }
        if let methods = request.methods {
            let present = Set(matching.compactMap(\.method))
            let missing = methods.filter { !present.contains($0) }
            if !missing.isEmpty {
                let hints = missing.compactMap { name in present.first { $0.lowercased() == name.lowercased() }.map { "'\(name)' (did you mean '\($0)'?)" } }
                throw StoreError("--methods: no run has method \(missing.map { "'\($0)'" }.joined(separator: ", "))"
                                 + (hints.isEmpty ? "" : "; " + hints.joined(separator: ", ")), kind: .usage)
            }
        }
        let runs = matching.filter { run in methodOrder.map { $0[run.method ?? ""] != nil } ?? true }
        func value(_ field: RunField, _ run: RunSummary) -> String {
            field.value(run, params: params[run.id] ?? [:], tags: tags[run.id] ?? [:])
        }

        // Cells: (row key, column group) -> the run with the latest step/epoch (then the latest).
        struct Cell: Hashable { var row: [String]; var column: String }
        var rowKeys: [[String]] = [], columnValues: [String] = []
        var cells: [Cell: RunSummary] = [:], crowded: [Cell: Int] = [:]
        func progress(_ run: RunSummary) -> (Double, Double, Int64) { (Double(run.step ?? -1), run.epoch ?? -1, run.id) }
        for run in runs {
            let cell = Cell(row: request.rows.map { value($0, run) }, column: value(request.column, run))
            if !rowKeys.contains(cell.row) { rowKeys.append(cell.row) }
            if !columnValues.contains(cell.column) { columnValues.append(cell.column) }
            crowded[cell, default: 0] += 1
            if let existing = cells[cell], progress(existing) > progress(run) { continue }
            cells[cell] = run
        }
        // Rows in blocks, as a paper prints them: by their first field in the order its values are
        // first seen (every row of one model together, e.g. a later 8B +TS run under the 8B
        // rows, not after the 70B ones), then each further field by first appearance.
        // --order ranks the first field's values and --methods the methods; the rest follow as first seen.
        let firstSeen: [[String: Int]] = request.rows.indices.map { position in
            var order: [String: Int] = [:]
            if position == 0, let given = request.order { for value in given where order[value] == nil { order[value] = order.count } }
            if request.rows[position] == .method, let methodOrder { order = methodOrder }
            let start = order.count
            for key in rowKeys where order[key[position]] == nil { order[key[position]] = start + order.count }
            return order
        }
        rowKeys.sort { a, b in
            for position in a.indices where a[position] != b[position] {
                return firstSeen[position][a[position]] ?? 0 < firstSeen[position][b[position]] ?? 0
            }
            return false
        }
        if request.rows.contains(where: \.isParameter) {
            // Sweeps read best in numeric order of the swept value.
            rowKeys.sort { a, b in
                for (x, y) in zip(a, b) where x != y {
                    if let dx = Double(x), let dy = Double(y) { return dx < dy }
                    return false
                }
                return false
            }
        }
        var result = PaperTable(table: TextTable(columns: [], rows: []))
        let shared = crowded.filter { $0.value > 1 }.keys
        result.crowdedCells = shared.count
        result.crowdedExample = shared.map { cells[$0]!.name }.sorted().first
        let runsByRow = Dictionary(uniqueKeysWithValues: rowKeys.map { key in
            (key, columnValues.compactMap { cells[Cell(row: key, column: $0)] })
        })
        if request.winRates {
            result.table = try winRateTable(request, rowKeys: rowKeys, runsByRow: runsByRow)
            return result
        }

        // Metrics per (run, bins): from the stored summaries when they answer
        // (the stored bin count, no equal-mass metric), else computed once per run from its rows.
        var metrics: [Int64: [Int: CalibrationMetrics]] = [:]
        let cellRuns = Set(cells.values.map(\.id))
        if request.binCounts == [RunStore.storedBins], Set(request.keys).isSubset(of: RunStore.storedMetricKeys) {
            for (id, stored) in try store.storedMetrics(runIDs: cellRuns.sorted()) { metrics[id] = [RunStore.storedBins: stored] }
        }
        for run in Set(cells.values.filter { metrics[$0.id] == nil }.map(\.name)).sorted() {
            let loaded = try store.loadRun(named: run)
            metrics[loaded.id] = Dictionary(uniqueKeysWithValues: request.binCounts.map { bins in
                (bins, CalibrationAnalyzer(loaded.predictions, bins: bins, epsilon: request.epsilon)
                    .metrics(smooth: !Set(request.keys).isSubset(of: Set(MetricKey.resampled))))
            })
        }

        var columns = request.rows.map(\.header)
        var keys = request.rows.map(\.key)
        var groups: [String?] = Array(repeating: nil, count: columns.count)
        var best: [TextTable.Best?] = Array(repeating: nil, count: columns.count)
        for column in columnValues {
            for bins in request.binCounts {
                for key in request.keys {
                    columns.append(key.label)
                    var group = request.column == .none ? nil : (column.isEmpty ? "(none)" : column)
                    if request.binCounts.count > 1 { group = [group, "B=\(bins)"].compactMap { $0 }.joined(separator: ", ") }
                    groups.append(group)
                    // Percentages are named as such: a key names one quantity in one unit.
                    let name = key.rawValue + (request.percent ? "_percent" : "")
                    keys.append(([group?.replacingOccurrences(of: ", ", with: ".")].compactMap { $0 } + [name]).joined(separator: "."))
                    best.append(MetricColumns.best(key))
                }
            }
        }
        // Significance against the base method's row: the base row has the same fields but the method.
        let methodField = request.rows.firstIndex(of: .method)
        if request.significance != nil, methodField == nil {
            throw StoreError("marking significance needs the method among the row fields", kind: .usage)
        }
        var loadedRuns: [Int64: LoadedRun] = [:]
        func loaded(_ run: RunSummary) throws -> LoadedRun {
            if let run = loadedRuns[run.id] { return run }
            let value = try store.loadRun(id: run.id, name: run.name)
            loadedRuns[run.id] = value
            return value
        }
        let rows: [[TextTable.Cell]] = try rowKeys.map { rowKey in
            var row: [TextTable.Cell] = rowKey.map { .text($0) }
            var baseKey = rowKey
            if let significance = request.significance, let field = methodField { baseKey[field] = significance.method }
            for column in columnValues {
                let run = cells[Cell(row: rowKey, column: column)]
                let base = baseKey == rowKey ? nil : cells[Cell(row: baseKey, column: column)]
                for bins in request.binCounts {
                    // One paired bootstrap of the cell's run against its base for every key of the cell.
                    var significantKeys: Set<MetricKey> = []
                    if let significance = request.significance, let run, let base {
                        var comparison = ComparisonRequest(base: base.name, others: [run.name])
                        comparison.keys = request.keys
                        comparison.settings = BinSettings(bins: bins, epsilon: request.epsilon)
                        comparison.alpha = significance.alpha
                        let (differences, _) = Self.pairedTests(try loaded(base), try loaded(run), comparison, significance.bootstrap)
                        significantKeys = Set(differences.filter { $0.p.map { $0 < significance.alpha } ?? false }.map(\.key))
                    }
                    // The cell's intervals, as `track metrics --ci` computes them for the run.
                    var intervals: [MetricKey: Interval] = [:]
                    if let (_, bootstrap) = request.intervals, let run {
                        let analyzer = CalibrationAnalyzer(try loaded(run).predictions, bins: bins, epsilon: request.epsilon)
                        intervals = analyzer.intervals(resamples: bootstrap.resamples, seed: UInt64(bitPattern: bootstrap.seed), level: bootstrap.level,
                                                       smooth: request.keys.contains(.smECE)).intervals
                    }
                    for key in request.keys {
                        let scale = request.percent ? 100.0 : 1
                        let value = run.flatMap { metrics[$0.id]?[bins]?[key] }.map { $0 * scale }
                        if let (style, _) = request.intervals {
                            row.append(.estimate(TextTable.Estimate(value, lower: intervals[key].map { $0.lower * scale },
                                                                    upper: intervals[key].map { $0.upper * scale }, digits: request.digits,
                                                                    style: style, marked: significantKeys.contains(key))))
                        } else {
                            row.append(significantKeys.contains(key) ? .marked(value, digits: request.digits) : .number(value, digits: request.digits))
                        }
                    }
                }
            }
            return row
        }
        var caption = request.caption
        if let (style, bootstrap) = request.intervals {
            let level = Int((bootstrap.level * 100).rounded())
            let form = style == .brackets ? "[lower, upper]" : "± half its width"
            let note = "each value with its \(level)% bootstrap interval over questions, \(form) (\(bootstrap.resamples) resamples, seed \(bootstrap.seed); METHODS §3)"
            caption = caption.map { "\($0). \(note)" } ?? note
        }
        if let significance = request.significance {
            let note = "† differs from \(significance.method) on the shared questions (paired bootstrap, \(significance.bootstrap.resamples) resamples, p < \(JSONValue.format(significance.alpha)))"
            caption = caption.map { "\($0). \(note)" } ?? note
        }
        result.table = TextTable(columns: columns, rows: rows, caption: caption)
        result.table.keys = keys
        result.table.groups = groups
        result.table.best = best
        // Several rows per model: the best value of each model's block, as the papers bold it.
        if request.rows.count > 1 { result.table.bestWithin = 0 }
        return result
    }

    /// Table 3 of the paper: per row, the sequence-likelihood win rate (%) and, per judged
    /// opponent, "A vs B" shares with ties split.
    func winRateTable(_ request: PaperTableRequest, rowKeys: [[String]], runsByRow: [[String]: [RunSummary]]) throws -> TextTable {
        var opponents: [String] = []
        var pairsSeen = false
        for runs in runsByRow.values {
            for run in runs {
                for name in try store.opponents(runID: run.id) where !opponents.contains(name) { opponents.append(name) }
                if try store.hasPreferencePairs(runID: run.id) { pairsSeen = true }
            }
        }
        opponents.sort()
        var columns = request.rows.map(\.header)
        var best: [TextTable.Best?] = Array(repeating: nil, count: request.rows.count)
        if pairsSeen {
            columns.append("SL win %")
            best.append(.highest)
        }
        columns += opponents.map { "vs \($0)" }
        best += Array(repeating: nil, count: opponents.count)
        var rows: [[TextTable.Cell]] = []
        for key in rowKeys {
            var row: [TextTable.Cell] = key.map { .text($0) }
            let runs = runsByRow[key] ?? []
            if pairsSeen {
                let pairs = try runs.flatMap { try store.preferencePairs(runID: $0.id) }
                row.append(.number(pairs.isEmpty ? nil : 100 * WinRate.sequenceLikelihood(pairs).rate, digits: 2))
            }
            for opponent in opponents {
                let verdicts = try runs.flatMap { try store.verdicts(runID: $0.id, opponent: opponent) }
                if verdicts.isEmpty { row.append(.text(nil)); continue }
                let a = WinRate.judged(verdicts, ties: .half).rate * 100
                row.append(.text(String(format: "%.2f vs %.2f", a, 100 - a)))
            }
            // Rows with no win-rate data at all are left out.
            if row.dropFirst(request.rows.count).contains(where: { $0.display != "" }) { rows.append(row) }
        }
        var table = TextTable(columns: columns, rows: rows, caption: request.caption)
        table.best = best
        return table
    }
}
