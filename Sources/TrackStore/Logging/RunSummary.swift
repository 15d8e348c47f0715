#if canImport(Glibc)
import Glibc
#endif
import TrackCalibration

/// The additive summary of some questions of one run: what `_track_run_stats` and
/// `_track_run_bins` hold (see sql/schema.sql). Totals add up, so a writer adds the
/// summary of the rows it writes to the stored one in the same transaction,
/// and appending rows never needs the rows already stored.
struct RunSummaryDelta {
    /// The bin count of the stored tables (the views' 10 bins).
    static let bins = 10

    var n = 0
    var correct = 0
    var sumConfidence = 0.0
    var sumBrier = 0.0
    var sumNLL = 0.0
    var sumNLLScores = 0.0
    var scored = 0
    var minOptions = Int.max
    var maxOptions = 0
    /// Per class (-1 = top label) x bin: count, hits, sum of values; slot `(class + 1) * bins + bin`.
    private(set) var binCount: [Int] = []
    private(set) var binHits: [Int] = []
    private(set) var binSum: [Double] = []

    var isEmpty: Bool { n == 0 }

    /// Adds one question; returns its top label for `_track_top_labels`.
    @discardableResult
    mutating func add(label: Int, probabilities p: UnsafeBufferPointer<Double>,
                      scores: UnsafeBufferPointer<Double>?) -> TopLabel {
        let k = p.count
        let top = TopLabel(p)
        let needed = (k + 1) * Self.bins
        if binCount.count < needed {
            binCount += repeatElement(0, count: needed - binCount.count)
            binHits += repeatElement(0, count: needed - binHits.count)
            binSum += repeatElement(0, count: needed - binSum.count)
        }
        n += 1
        let hit = top.prediction == label
        if hit { correct += 1 }
        sumConfidence += top.confidence
        addBin(slot: equalWidthBin(top.confidence, bins: Self.bins), value: top.confidence, hit: hit)
        var brier = 0.0
        for option in 0..<k {
            let isLabel = option == label
            let difference = p[option] - (isLabel ? 1 : 0)
            brier += difference * difference
            addBin(slot: (option + 1) * Self.bins + equalWidthBin(p[option], bins: Self.bins), value: p[option], hit: isLabel)
        }
        sumBrier += brier
        sumNLL += -log(max(p[label], 1e-15))
        if let scores {
            sumNLLScores += -Probabilities.logSoftmax(scores, at: label)
            scored += 1
        }
        minOptions = min(minOptions, k)
        maxOptions = max(maxOptions, k)
        return top
    }

    @inline(__always)
    private mutating func addBin(slot: Int, value: Double, hit: Bool) {
        binCount[slot] += 1
        binSum[slot] += value
        if hit { binHits[slot] += 1 }
    }

    /// Adds these totals to the run's stored ones (creating them on the run's first rows).
    func write(to database: Database, runID: Int64) throws {
        guard n > 0 else { return }
        try database.execute("""
            INSERT INTO _track_run_stats(run_id, n, n_correct, sum_conf, sum_brier, sum_nll, sum_nll_scores, n_scored,
                                  min_options, max_options)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(run_id) DO UPDATE SET
                n = n + excluded.n, n_correct = n_correct + excluded.n_correct,
                sum_conf = sum_conf + excluded.sum_conf, sum_brier = sum_brier + excluded.sum_brier,
                sum_nll = sum_nll + excluded.sum_nll, sum_nll_scores = sum_nll_scores + excluded.sum_nll_scores,
                n_scored = n_scored + excluded.n_scored,
                min_options = MIN(min_options, excluded.min_options), max_options = MAX(max_options, excluded.max_options)
            """, [.integer(runID), .integer(Int64(n)), .integer(Int64(correct)), .real(sumConfidence), .real(sumBrier),
                  .real(sumNLL), .real(sumNLLScores), .integer(Int64(scored)),
                  .integer(Int64(minOptions)), .integer(Int64(maxOptions))])
        for slot in binCount.indices where binCount[slot] > 0 {
            try database.execute("""
                INSERT INTO _track_run_bins(run_id, class, bin, n, hits, sum_p) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(run_id, class, bin) DO UPDATE SET
                    n = n + excluded.n, hits = hits + excluded.hits, sum_p = sum_p + excluded.sum_p
                """, [.integer(runID), .integer(Int64(slot / Self.bins - 1)), .integer(Int64(slot % Self.bins)),
                      .integer(Int64(binCount[slot])), .integer(Int64(binHits[slot])), .real(binSum[slot])])
        }
    }
}

extension RunStore {
    /// Runs whose stored summaries are stale (rows written with plain SQL, or a
    /// store migrated from version 4), in id order.
    public func staleRuns() throws -> [(id: Int64, name: String)] {
        var runs: [(Int64, String)] = []
        try database.forEachRow("""
            SELECT run_id, name FROM runs
            WHERE EXISTS (SELECT 1 FROM _track_stale_runs AS x WHERE x.run_id IN (runs.run_id, 0)) ORDER BY run_id
            """) { runs.append(($0.int64(0), $0.string(1) ?? "")) }
        return runs
    }

    /// Recomputes the summaries of every stale run from its rows, one short
    /// transaction per run (inside the caller's transaction when there is one).
    /// `progress(done, total, name)` is called before each run.
    public func refreshStaleSummaries(progress: ((Int, Int, String) -> Void)? = nil) throws {
        guard !database.isReadOnly,
              try database.scalarInt("SELECT EXISTS (SELECT 1 FROM _track_stale_runs)") == 1 else { return }
        // The every-run mark (a label changed) is cleared with all runs recomputed in one
        // transaction, so that a mark set meanwhile by another client cannot be lost;
        // otherwise each run is its own short transaction.
        let everyRun = try database.scalarInt("SELECT EXISTS (SELECT 1 FROM _track_stale_runs WHERE run_id = 0)") == 1
        func refresh() throws {
            let stale = try staleRuns()
            for (index, run) in stale.enumerated() {
                progress?(index, stale.count, run.name)
                do {
                    try database.transaction { try recomputeSummaries(runID: run.id, name: run.name) }
                } catch is StoredValueError {
                    // A run holding an invalid value stays stale (the views compute from its rows, and
                    // reading it says what is wrong); the other runs' summaries are brought up to date.
                    try database.execute("INSERT OR IGNORE INTO _track_stale_runs(run_id) VALUES (?)", [.integer(run.id)])
                    continue
                }
            }
            // Entries of runs that no longer exist (and the every-run mark, inside its transaction).
            try database.transaction {
                try database.execute("DELETE FROM _track_stale_runs WHERE run_id NOT IN (SELECT run_id FROM runs)\(everyRun ? "" : " AND run_id != 0")")
            }
            progress?(stale.count, stale.count, "")
        }
        if everyRun { try database.transaction(refresh) } else { try refresh() }
    }

    /// Rewrites one run's top labels and totals from its option rows (in the caller's transaction).
    func recomputeSummaries(runID: Int64, name: String) throws {
        for table in ["_track_top_labels", "_track_run_bins", "_track_run_stats"] {
            try database.execute("DELETE FROM \(table) WHERE run_id = ?", [.integer(runID)])
        }
        var summary = RunSummaryDelta()
        let topInsert = ChunkedInsert(database: database, prefix: "INSERT INTO _track_top_labels(run_id, question_id, pred)", columns: 3)
        try scanRun(id: runID, name: name, details: false) { chunk in
            var tops: [TopLabel] = []
            tops.reserveCapacity(chunk.count)
            chunk.forEach { _, label, p, s in tops.append(summary.add(label: label, probabilities: p, scores: s)) }
            try topInsert.insert(count: chunk.count) { row, statement, first in
                statement.bind(runID, at: first)
                statement.bind(chunk.ids[row], at: first + 1)
                statement.bind(Int64(tops[row].prediction), at: first + 2)
            }
            return true
        }
        try summary.write(to: database, runID: runID)
        try database.execute("DELETE FROM _track_stale_runs WHERE run_id = ?", [.integer(runID)])
    }
}

/// One run's stored per-bin totals, as the metric definitions read them.
private struct StoredBinTotals {
    var top: [BinTotal]
    var classwise: [Int: [BinTotal]] = [:]
    var pooled: [BinTotal]
}

extension RunReading {
    /// The metrics a run's stored summary answers, with the views' 10 bins and
    /// the analyzers' formulas: accuracy, mean confidence, overconfidence,
    /// conf-ECE, MCE, RMSCE, cw-ECE, Brier and NLL. The equal-mass metrics
    /// (eq_mass_ece, ACE, TACE) need the rows and stay nil. Read through the
    /// views' totals, so a stale run's numbers are computed from its rows.
    /// Runs with no questions are absent.
    public func storedMetrics(runIDs: [Int64]? = nil) throws -> [Int64: CalibrationMetrics] {
        try storedSummaries(runIDs: runIDs).metrics
    }

    /// `storedMetrics` and each run's top-label reliability bins (10, from the same stored totals).
    public func storedSummaries(runIDs: [Int64]? = nil) throws -> (metrics: [Int64: CalibrationMetrics], bins: [Int64: [BinRow]]) {
        do {
            return try metricsFromTotals(runIDs: runIDs)
        } catch let error as PostgresError where error.sqlState == "22003" {
            // PostgreSQL refuses to overflow where SQLite's sums become infinite (caught below):
            // the run holding a value no input could have is named instead.
            let runs = runIDs.map { " AND run_id IN (\($0.map(String.init).joined(separator: ",")))" } ?? ""
            guard let name = try sql.firstText("""
                SELECT name FROM runs WHERE run_id = (SELECT MIN(run_id) FROM option_scores
                                                      WHERE (NOT (prob >= 0 AND prob <= 1) OR NOT (abs(score) < 1e300))\(runs))
                """) else { throw error }
            throw StoredValueError(run: name, question: nil, detail: "its rows in option_scores hold values no input could (a probability outside [0, 1] or not finite)")
        }
    }

    private func metricsFromTotals(runIDs: [Int64]?) throws -> (metrics: [Int64: CalibrationMetrics], bins: [Int64: [BinRow]]) {
        let bins = RunSummaryDelta.bins
        let filter = runIDs.map { ids in "WHERE run_id IN (\(ids.map(String.init).joined(separator: ",")))" } ?? ""
        var result: [Int64: CalibrationMetrics] = [:]
        var optionCounts: [Int64: (min: Int, max: Int)] = [:]
        try sql.eachRow("""
            SELECT run_id, n, n_correct, sum_conf, sum_brier, sum_nll, sum_nll_scores, n_scored, min_options, max_options
            FROM _track_run_totals \(filter)
            """) { row in
            let n = row.int(1)
            guard n > 0 else { return }
            var m = CalibrationMetrics()
            m.n = n
            m.bins = bins
            m.nllFromScores = row.int(7) == n
            m.setMeans(total: Double(n), correct: Double(row.int(2)), confidence: row.double(3), brier: row.double(4),
                       nll: m.nllFromScores ? row.double(6) : row.double(5))
            result[row.int64(0)] = m
            optionCounts[row.int64(0)] = (row.int(8), row.int(9))
        }
        // The stored per-bin totals (class -1: top label; class c: option c), laid out as the
        // metric definitions (CalibrationMetrics.set…) read them; the store computes no metric.
        let empty = BinTotal(count: 0, hits: 0, sum: 0)
        var totals: [Int64: StoredBinTotals] = [:]
        var invalid: Set<Int64> = Set(result.filter { !($0.value.meanConfidence?.isFinite ?? true) || !($0.value.nll?.isFinite ?? true) || !($0.value.brier?.isFinite ?? true) }.keys)
        try sql.eachRow("SELECT run_id, class, n, hits, sum_p, bin FROM _track_run_bin_totals \(filter)") { row in
            let id = row.int64(0)
            guard result[id] != nil else { return }
            let bin = row.int(5), sum = row.double(4)
            // A stale run's bins come from its rows: a probability outside [0, 1] puts one outside.
            guard (0..<bins).contains(bin), sum.isFinite else { invalid.insert(id); return }
            let total = BinTotal(count: Double(row.int(2)), hits: Double(row.int(3)), sum: sum)
            var entry = totals[id] ?? StoredBinTotals(top: Array(repeating: empty, count: bins), pooled: Array(repeating: empty, count: bins))
            let option = row.int(1)
            if option < 0 {
                entry.top[bin] = total
            } else {
                entry.classwise[option, default: Array(repeating: empty, count: bins)][bin] = total
                // Pooled bins add every class's row of the bin.
                entry.pooled[bin].count += total.count
                entry.pooled[bin].hits += total.hits
                entry.pooled[bin].sum += total.sum
            }
            totals[id] = entry
        }
        if let id = invalid.min() {
            let name = try sql.firstText("SELECT name FROM runs WHERE run_id = ?", [.integer(id)]) ?? "#\(id)"
            throw StoredValueError(run: name, question: nil, detail: "its rows in option_scores hold values no input could (a probability outside [0, 1] or not finite)")
        }
        var reliability: [Int64: [BinRow]] = [:]
        for id in result.keys {
            let entry = totals[id] ?? StoredBinTotals(top: Array(repeating: empty, count: bins), pooled: Array(repeating: empty, count: bins))
            reliability[id] = entry.top.enumerated().map { bin, total in
                BinRow(bin: bin, lower: Double(bin) / Double(bins), upper: Double(bin + 1) / Double(bins), count: Int(total.count),
                       accuracy: total.count > 0 ? total.hits / total.count : nil, confidence: total.count > 0 ? total.sum / total.count : nil)
            }
            let total = Double(result[id]!.n)
            result[id]!.setTopLabelErrors(total: total, bins: bins) { entry.top[$0] }
            if !entry.classwise.isEmpty { result[id]!.setPooledError(bins: bins) { entry.pooled[$0] } }
            if let k = optionCounts[id], k.min == k.max, k.max > 0 {
                let classes = (0..<k.max).map { entry.classwise[$0] ?? Array(repeating: empty, count: bins) }
                result[id]!.setClasswiseError(total: total, classes: k.max, bins: bins) { classes[$0 / bins][$0 % bins] }
            }
        }
        return (result, reliability)
    }
}

extension RunStore {
    /// Metric keys `storedMetrics` answers (with 10 bins).
    public static let storedMetricKeys: Set<MetricKey> = MetricKey.fromTotals
}

extension RunStore {
    /// The bin count of the stored summaries (`_track_run_bins`).
    public static let storedBins = RunSummaryDelta.bins
}

extension RunReading {
    /// The run's question count and largest option count (from the stored totals): what a
    /// reader reserves before it loads the run.
    public func storedShape(runID: Int64) throws -> (questions: Int, maxOptions: Int)? {
        var shape: (Int, Int)?
        try sql.eachRow("SELECT n, max_options FROM _track_run_totals WHERE run_id = ?", [.integer(runID)]) { shape = ($0.int(0), $0.int(1)) }
        return shape
    }

    /// K when every question of the run has K options (from the stored totals).
    public func uniformOptionCount(runID: Int64) throws -> Int? {
        var k: Int?
        try sql.eachRow("SELECT min_options, max_options FROM _track_run_totals WHERE run_id = ?", [.integer(runID)]) {
            if $0.int(0) == $0.int(1) { k = $0.int(0) }
        }
        return k
    }
}
