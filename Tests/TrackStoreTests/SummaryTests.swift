import Foundation
import Testing
import TrackCalibration
@testable import TrackStore

/// Schema v5 keeps each run's top labels and totals as data. Every writer must
/// leave them equal to a fresh analyzer pass over the rows (1e-12), and rows
/// written with plain SQL must never make a view show a stale number.
@Suite struct SummaryTests {
    /// Stored summaries, the views and the top labels of every run against the analyzers.
    static func expectExact(_ store: RunStore, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let stored = try store.storedMetrics()
        for run in try store.runSummaries() {
            let loaded = try store.loadRun(named: run.name)
            let analyzer = CalibrationAnalyzer(loaded.predictions, bins: 10)
            let m = analyzer.metrics()
            #expect(run.n == m.n, "\(context): \(run.name) n", sourceLocation: sourceLocation)
            guard m.n > 0 else {
                #expect(stored[run.id] == nil, "\(context): \(run.name)", sourceLocation: sourceLocation)
                continue
            }
            let s = try #require(stored[run.id], "\(context): \(run.name) has no stored summary")
            #expect(s.n == m.n && s.nllFromScores == m.nllFromScores, "\(context): \(run.name)", sourceLocation: sourceLocation)
            for key in RunStore.storedMetricKeys {
                switch (s[key], m[key]) {
                case (nil, nil): break
                case (let a?, let b?): #expect(abs(a - b) <= 1e-12, "\(context): \(run.name) \(key) \(a) vs \(b)", sourceLocation: sourceLocation)
                default: Issue.record("\(context): \(run.name) \(key): stored \(String(describing: s[key])), analyzer \(String(describing: m[key]))", sourceLocation: sourceLocation)
                }
            }
            // The view reads the same totals.
            let row = try store.query("SELECT n, accuracy, conf_ece, mce, cw_ece, brier, nll FROM run_calibration WHERE run_id = \(run.id)").rows
            #expect(row.count == 1, "\(context): \(run.name) in run_calibration", sourceLocation: sourceLocation)
            if let row = row.first {
                #expect(row[0] == .integer(Int64(m.n)))
                for (value, key) in zip(row.dropFirst(), ["accuracy", "conf_ece", "mce", "cw_ece", "brier", "nll"]) {
                    if let want = m[MetricKey(rawValue: key)!] {
                        #expect(abs(value.doubleValue - want) <= 1e-12, "\(context): \(run.name) view \(key)", sourceLocation: sourceLocation)
                    } else {
                        #expect(value == .null, "\(context): \(run.name) view \(key)", sourceLocation: sourceLocation)
                    }
                }
            }
            // Top labels: one per question, the argmax with ties to the lowest option.
            let tops = try store.query("SELECT question_id, pred, conf FROM predictions WHERE run_id = \(run.id) ORDER BY question_id").rows
            #expect(tops.count == m.n, "\(context): \(run.name) top labels", sourceLocation: sourceLocation)
            let set = loaded.predictions
            for (i, row) in zip(0..<set.count, tops) {
                let top = set.probabilities[set.offsets[i]..<set.offsets[i + 1]].withContiguousStorageIfAvailable { TopLabel($0) }!
                #expect(row[0] == .integer(set.questionIDs[i]) && row[1] == .integer(Int64(top.prediction))
                        && row[2].doubleValue == top.confidence, "\(context): \(run.name) question \(i)", sourceLocation: sourceLocation)
            }
        }
    }

    static func staleCount(_ store: RunStore) throws -> Int64 {
        try store.database.scalarInt("SELECT count(*) FROM _track_stale_runs") ?? -1
    }

    static func predictions(_ count: Int, seed: UInt64, options: Int = 4, prefix: String = "q",
                            scored: (Int) -> Bool = { $0 % 2 == 0 }) -> [Prediction] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { i in
            let logits = (0..<options).map { _ in (random.nextGaussian() * 2 * 8).rounded() / 8 }
            let values: OptionValues = scored(i) ? .scores(logits) : .probabilities(Probabilities.softmax(logits))
            return Prediction(questionID: "\(prefix)\(i)", label: random.nextInt(below: options), values: values,
                              subject: "s\(i % 3)")
        }
    }

    @Test func everyWriterKeepsTheSummariesExact() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))

        // track log / the Swift API: many short commits.
        let logger = try store.startRun(RunMetadata(name: "logged", dataset: "d"))
        logger.commitInterval = 0
        for batch in Self.predictions(300, seed: 1).chunked(17) { try logger.append(batch) }
        try logger.finish()
        try Self.expectExact(store, "log")

        // --append: the same run continued (all scored, then some not: NLL from p).
        let more = try store.startRun(RunMetadata(name: "logged", dataset: "d"), append: true)
        try more.append(Self.predictions(100, seed: 2, prefix: "r"))
        try more.finish()
        try Self.expectExact(store, "append")

        // A run all of whose questions have scores: NLL exact from them.
        let scored = try store.startRun(RunMetadata(name: "scored", dataset: "d"))
        try scored.append(Self.predictions(250, seed: 3, prefix: "s", scored: { _ in true }))
        try scored.finish()
        // Mixed option counts: cw-ECE undefined.
        let mixed = try store.startRun(RunMetadata(name: "mixed", dataset: "m"))
        try mixed.append(Self.predictions(20, seed: 4, options: 2, prefix: "a") + Self.predictions(20, seed: 5, options: 3, prefix: "b"))
        try mixed.finish()
        // An empty run.
        try store.startRun(RunMetadata(name: "empty", dataset: "d")).finish()
        try Self.expectExact(store, "scored, mixed, empty")

        // track ingest, then --force replacing its run.
        let ingestor = Ingestor(store: store)
        _ = try ingestor.ingest(Fixtures.path("synthetic-seed0-n1000.csv"), options: IngestOptions())
        var force = IngestOptions()
        force.force = true
        _ = try ingestor.ingest(Fixtures.path("synthetic-seed0-n1000.csv"), options: force)
        try Self.expectExact(store, "ingest --force")

        // Deleting a run takes its summaries.
        let id = try #require(try store.runID(named: "scored"))
        try store.database.transaction { try store.deleteRun(id) }
        for table in ["_track_top_labels", "_track_run_stats", "_track_run_bins"] {
            #expect(try store.database.scalarInt("SELECT count(*) FROM \(table) WHERE run_id = \(id)") == 0, "\(table)")
        }
        try Self.expectExact(store, "delete")

        // track merge: a shard's runs arrive with their summaries.
        let shard = try RunStore(path: directory.path("shard.sqlite"))
        let shardRun = try shard.startRun(RunMetadata(name: "from-shard", dataset: "d"))
        try shardRun.append(Self.predictions(120, seed: 6, prefix: "h"))
        try shardRun.finish()
        _ = try store.merge(shard: directory.path("shard.sqlite"))
        try Self.expectExact(store, "merge")
        #expect(try Self.staleCount(store) == 0)
    }

    /// Rows written with plain SQL (another client: triggers on) are never
    /// shown stale: the views compute a stale run from its rows, and the next
    /// writing open recomputes its stored summaries.
    @Test func plainSQLWritesAreNeverStale() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("t.sqlite")
        do {
            let store = try RunStore(path: path)
            let logger = try store.startRun(RunMetadata(name: "api", dataset: "d"))
            try logger.append(Self.predictions(200, seed: 7))
            try logger.finish()
        }
        let client = try Database(path: path)    // as sqlite3 or Python would: triggers fire
        #expect(client.triggersEnabled)
        let reader = try RunStore(path: path, readOnly: true)
        func check(_ context: String) throws {
            #expect(try Self.staleCount(reader) > 0, "\(context): the write was noticed")
            try Self.expectExact(reader, context)
        }
        // A new run written row by row, as notebook 01 does.
        try client.executeScript("""
            INSERT INTO runs(uuid, name, dataset, status) VALUES ('u-plain', 'plain', 'd', 'finished');
            INSERT INTO option_scores(run_id, question_id, option, prob, score)
                SELECT (SELECT run_id FROM runs WHERE name = 'plain'), question_id, option, 1.0 - prob, NULL
                FROM option_scores WHERE run_id = (SELECT run_id FROM runs WHERE name = 'api') AND question_id <= 150;
            """)
        // 1 - p does not sum to 1 over 4 options, which SQL allows; the point is the numbers follow the rows.
        try check("insert")
        try client.execute("UPDATE option_scores SET prob = 0.99 WHERE option = 2 AND question_id % 7 = 0")
        try check("update")
        try client.execute("DELETE FROM option_scores WHERE question_id % 5 = 0 AND run_id = (SELECT run_id FROM runs WHERE name = 'api')")
        try check("delete")
        try client.execute("UPDATE questions SET label = (label + 1) % n_options WHERE question_id % 3 = 0")
        #expect(try client.scalarInt("SELECT count(*) FROM _track_stale_runs WHERE run_id = 0") == 1)
        try check("label change")
        try client.execute("DELETE FROM runs WHERE name = 'plain'")
        #expect(try client.scalarInt("SELECT count(*) FROM _track_top_labels WHERE run_id NOT IN (SELECT run_id FROM runs)") == 0)
        try check("run deleted")

        // A writing open recomputes: nothing stale, everything exact.
        let writer = try RunStore(path: path)
        #expect(try Self.staleCount(writer) == 0)
        try Self.expectExact(writer, "after refresh")
    }

    /// A version-4 store migrates to v5 with the same views as a fresh v5 store holding the same runs.
    @Test func migrationFromVersion4EqualsAFreshStore() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("v4.sqlite")
        do {
            let database = try Database(path: path)
            try database.executeScript(try String(contentsOfFile: Fixtures.path("schema-v4.sql"), encoding: .utf8))
            #expect(try database.schemaVersion == 4)
        }
        var reported: [(Int, Int)] = []
        let migrated = try RunStore(path: path) { done, total, _ in reported.append((done, total)) }
        #expect(try migrated.database.schemaVersion == Schema.currentVersion)
        // Version 6 rebuilt runs with AUTOINCREMENT, every reference kept and nothing cascaded.
        #expect(try migrated.database.scalarText("SELECT sql FROM sqlite_master WHERE name = 'runs'")?.contains("AUTOINCREMENT") == true)
        #expect(try migrated.query("PRAGMA foreign_key_check").rows.isEmpty)
        #expect(try migrated.database.scalarText("PRAGMA integrity_check") == "ok")
        #expect(try Self.staleCount(migrated) == 0)
        #expect(reported.first! == (0, 3) && reported.last! == (3, 3), "progress for each run")
        try Self.expectExact(migrated, "migrated")
        // Version 7: track's own tables and views carry the `_track_` prefix; sqlite_master lists
        // no other object than the public tables and views, track_meta and SQLite's own.
        let objects = try migrated.query("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')").rows.compactMap { row -> String? in
            if case .text(let name) = row[0] { return name } else { return nil }
        }
        let publicObjects = Set(try SchemaCatalog.current().listed(all: false).map(\.name))
        for name in objects where !publicObjects.contains(name) {
            #expect(name.hasPrefix("_track_") || name == "track_meta" || name.hasPrefix("sqlite_"), "\(name) is neither public nor prefixed")
        }
        for old in ["top_labels", "run_stats", "run_bins", "stale_runs", "run_totals", "run_bin_totals"] { #expect(!objects.contains(old), "\(old) left") }

        // The same runs logged into a fresh store.
        let fresh = try RunStore(path: directory.path("fresh.sqlite"))
        for run in try migrated.runSummaries() {
            let loaded = try migrated.loadRun(named: run.name, details: true)
            let logger = try fresh.startRun(RunMetadata(name: run.name, model: run.model, method: run.method, dataset: run.dataset))
            let set = loaded.predictions
            for i in 0..<set.count {
                let range = set.offsets[i]..<set.offsets[i + 1]
                let values: OptionValues = set.scores.map { .scores(Array($0[range])) } ?? .probabilities(Array(set.probabilities[range]))
                try logger.append(Prediction(questionID: loaded.externalIDs[i], label: Int(set.labels[i]), values: values,
                                             subject: loaded.subjects[i], dataset: loaded.datasets[i]))
            }
            try logger.finish()
        }
        let views = [
            "SELECT run, external_id, dataset, subject, n_options, label, pred, conf, correct FROM predictions ORDER BY run, dataset, external_id",
            "SELECT run, n, accuracy, mean_confidence, overconfidence FROM run_summary ORDER BY run",
            "SELECT run, n, accuracy, mean_confidence, overconfidence, conf_ece, mce, cw_ece, brier, nll FROM run_calibration ORDER BY run",
            "SELECT run, bin, n, accuracy, confidence, gap FROM reliability_bins ORDER BY run, bin",
            "SELECT run, class, bin, n, frequency, mean_prob, gap FROM classwise_bins ORDER BY run, class, bin",
            "SELECT run, subject, n, accuracy, mean_confidence, conf_ece FROM subject_calibration ORDER BY run, subject",
        ]
        for sql in views {
            let a = try migrated.query(sql).rows, b = try fresh.query(sql).rows
            #expect(a.count == b.count && !a.isEmpty, "\(sql)")
            for (x, y) in zip(a, b) {
                for (u, v) in zip(x, y) {
                    if case .real = u { #expect(abs(u.doubleValue - v.doubleValue) <= 1e-12, "\(sql): \(x) vs \(y)") }
                    else { #expect(u == v, "\(sql): \(x) vs \(y)") }
                }
            }
        }
    }

    /// A filter on a run reaches the stored rows first: the plans of the views
    /// filtered by run name look the run up by name and read no other run.
    @Test func viewsFilterByRunFirst() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        for name in ["a", "b"] {
            let logger = try store.startRun(RunMetadata(name: name, dataset: "d"))
            try logger.append(Self.predictions(50, seed: 8, prefix: name))
            try logger.finish()
        }
        for view in ["predictions", "subject_calibration", "category_calibration"] {
            let plan = try store.query("EXPLAIN QUERY PLAN SELECT * FROM \(view) WHERE run = 'a'").rows
                .map { "\($0.last!)" }.joined(separator: "\n")
            #expect(plan.contains("USING INDEX sqlite_autoindex_runs_2 (name=?)") || plan.contains("(name=?)"), "\(view):\n\(plan)")
            #expect(!plan.contains("SCAN t") && !plan.contains("SCAN _track_top_labels"), "\(view):\n\(plan)")
        }
        // Per-subject numbers equal the analyzers on each subject's questions.
        let loaded = try store.loadRun(named: "a", details: true)
        let rows = try store.query("SELECT subject, n, accuracy, mean_confidence, conf_ece FROM subject_calibration WHERE run = 'a' ORDER BY subject").rows
        #expect(rows.count == 3)
        for row in rows {
            let subject = row[0] == .text("s0") ? "s0" : row[0] == .text("s1") ? "s1" : "s2"
            let m = CalibrationAnalyzer(loaded.predictions.subset(loaded.subjects.indices.filter { loaded.subjects[$0] == subject })).metrics()
            #expect(row[1] == .integer(Int64(m.n)))
            for (value, key) in zip(row.dropFirst(2), ["accuracy", "mean_confidence", "conf_ece"]) {
                #expect(abs(value.doubleValue - m[MetricKey(rawValue: key)!]!) <= 1e-12, "\(subject) \(key)")
            }
        }
    }
}

extension SQLValue {
    var doubleValue: Double {
        switch self {
        case .real(let d): d
        case .integer(let i): Double(i)
        default: .nan
        }
    }
}

extension Array {
    func chunked(_ size: Int) -> [[Element]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}
