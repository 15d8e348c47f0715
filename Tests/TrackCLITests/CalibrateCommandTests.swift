import Foundation
import Testing
import TrackStore

@Suite struct CalibrateCommandTests {
    @Test func temperatureFitAppliesAsADerivedRun() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        #expect(try TrackBinary.run(["ingest", StoreFixtures.path("synthetic-seed0-n1000.csv"), "--db", db, "--run", "syn",
                                     "--model", "m", "--method", "DPO", "--split", "test"]).status == 0)
        let result = try TrackBinary.run(["calibrate", "temperature", "--fit", "syn", "--apply", "syn", "--in-sample", "--db", db, "--format", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONParser.parse(result.stdout)
        #expect(abs(json["temperature"]!.doubleValue! - 2.030513) < 5e-7)
        #expect(abs(json["nll_before"]!.doubleValue! - 1.100437) < 5e-7 && abs(json["nll_after"]!.doubleValue! - 0.925981) < 5e-7)
        #expect(json["derived_runs"] == .array([.string("syn+TS")]))
        // The derived run: parent, method, fit params; its exact NLL equals the fitted one.
        let store = try RunStore(path: db, readOnly: true)
        let meta = try #require(try store.runMetadata(named: "syn+TS"))
        #expect(meta.method == "TS" && meta.model == "m" && meta.split == "test")
        #expect(meta.params["ts.fit_run"] == "syn" && meta.params["ts.parent_method"] == "DPO")
        #expect(try store.query("SELECT p.name FROM runs r JOIN runs p ON p.run_id = r.parent_run_id WHERE r.name = 'syn+TS'").rows.first?[0] == .text("syn"))
        let metrics = try JSONParser.parse(try TrackBinary.run(["metrics", "syn+TS", "--db", db, "--format", "json"]).stdout).arrayValue![0]
        #expect(abs(metrics["nll"]!.doubleValue! - 0.925981) < 5e-7 && metrics["nll_from_scores"] == .bool(true))
        #expect(metrics["accuracy"] == .number(0.614))   // temperature never changes the argmax
        // Applying twice under the same name is refused.
        #expect(try TrackBinary.run(["calibrate", "temperature", "--fit", "syn", "--apply", "syn", "--in-sample", "--db", db]).status == 1)
    }

    @Test func holdoutIsSeededAndDerivesOnlyTheHeldOutQuestions() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        #expect(try TrackBinary.run(["ingest", StoreFixtures.path("synthetic-seed0-n1000.csv"), "--db", db, "--run", "syn"]).status == 0)
        func fit(_ seed: Int) throws -> JSONValue {
            try JSONParser.parse(try TrackBinary.run(["calibrate", "temperature", "--fit", "syn", "--holdout", "0.3", "--seed", String(seed),
                                                      "--db", db, "--format", "json"]).stdout)
        }
        let a = try fit(1), b = try fit(1), c = try fit(2)
        #expect(a == b && a != c)
        #expect(a["fit_questions"] == .number(700) && a["report_questions"] == .number(300))   // --holdout 0.3: 30% held out
        #expect(a["split"] == .string("holdout") && a["seed"] == .number(1))
        #expect(abs(a["temperature"]!.doubleValue! - 2.03) < 0.3)
        #expect(a["conf_ece_after"]!.doubleValue! < a["conf_ece_before"]!.doubleValue!)
        #expect(try TrackBinary.run(["calibrate", "temperature", "--fit", "syn", "--holdout", "1.5", "--db", db]).status == 64)

        // Applied to the fit run: the derived run holds the 300 held-out questions only, and its
        // metrics are the reported "after" figures.
        let applied = try TrackBinary.run(["calibrate", "temperature", "--fit", "syn", "--apply", "syn", "--holdout", "0.3", "--seed", "1",
                                           "--db", db, "--format", "json"])
        #expect(applied.status == 0, "\(applied.stderr)")
        let derived = try JSONParser.parse(try TrackBinary.run(["metrics", "syn+TS", "--db", db, "--format", "json"]).stdout).arrayValue![0]
        #expect(derived["n"] == .number(300))
        #expect(abs(derived["nll"]!.doubleValue! - a["nll_after"]!.doubleValue!) < 1e-12)
        let store = try RunStore(path: db, readOnly: true)
        let meta = try #require(try store.runMetadata(named: "syn+TS"))
        #expect(meta.params["ts.split"] == "holdout" && meta.params["ts.holdout"] == "0.3" && meta.params["ts.seed"] == "1")
        #expect(meta.params["ts.temperature"] == JSONValue.format(a["temperature"]!.doubleValue!))
        // Membership as data: 700 fitted on (fold 0), 300 held out (fold 1) = the derived run's questions.
        #expect(try store.query("SELECT fold, count(*) FROM calibration_folds f JOIN runs r USING (run_id) WHERE r.name = 'syn+TS' GROUP BY fold ORDER BY fold").rows
                == [[.integer(0), .integer(700)], [.integer(1), .integer(300)]])
        #expect(try store.database.scalarInt("""
            SELECT count(*) FROM _track_top_labels t JOIN runs r USING (run_id)
            WHERE r.name = 'syn+TS' AND t.question_id IN (SELECT question_id FROM calibration_folds WHERE run_id = r.run_id AND fold = 1)
            """) == 300)
        // compare pairs exactly the derived run's questions.
        let compare = try JSONParser.parse(try TrackBinary.run(["compare", "syn", "syn+TS", "--db", db, "--format", "json"]).stdout)
        #expect(compare.jsonText.contains("\"n\":300"), "\(compare.jsonText.prefix(400))")
    }

    @Test func applyingToTheFitRunNeedsASplit() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        #expect(try TrackBinary.run(["ingest", StoreFixtures.path("synthetic-seed0-n1000.csv"), "--db", db, "--run", "syn"]).status == 0)
        let refused = try TrackBinary.run(["calibrate", "temperature", "--fit", "syn", "--apply", "syn", "--db", db])
        #expect(refused.status == 64 && refused.stderr.contains("--folds K") && refused.stderr.contains("--in-sample"))
        let both = try TrackBinary.run(["calibrate", "temperature", "--fit", "syn", "--apply", "syn", "--holdout", "0.2", "--folds", "5", "--db", db])
        #expect(both.status == 64)
        #expect(try RunStore(path: db, readOnly: true).runID(named: "syn+TS") == nil)
        let inSample = try TrackBinary.run(["calibrate", "temperature", "--fit", "syn", "--apply", "syn", "--in-sample", "--db", db])
        #expect(inSample.status == 0 && inSample.stdout.contains("in-sample"))
        #expect(try RunStore(path: db, readOnly: true).runMetadata(named: "syn+TS")?.params["ts.split"] == "in-sample")
    }

    /// Cross-fitting: each fold's T equals scipy's fit on the other folds (Tests/reference/crossfit_references.py),
    /// the folds are the reference's, and the derived run is every question with the T of the fit that did not see it.
    @Test func crossFitMatchesScipyFoldByFold() throws {
        let reference = try JSONParser.parse(try String(contentsOfFile: StoreFixtures.path("crossfit-references.json"), encoding: .utf8))
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        #expect(try TrackBinary.run(["ingest", StoreFixtures.path("synthetic-seed0-n1000.csv"), "--db", db, "--run", "syn"]).status == 0)
        for (index, case_) in try #require(reference["cases"]?.arrayValue).enumerated() {
            let k = case_["folds"]!.integerValue!, seed = case_["seed"]!.integerValue!
            let name = "syn+TS\(index)"
            let result = try TrackBinary.run(["calibrate", "temperature", "--fit", "syn", "--apply", "syn", "--folds", String(k), "--seed", String(seed),
                                              "--suffix", "+TS\(index)", "--db", db, "--format", "json"])
            #expect(result.status == 0, "\(result.stderr)")
            let json = try JSONParser.parse(result.stdout)
            let expected = case_["temperatures"]!.arrayValue!.map { $0.doubleValue! }
            let fits = try #require(json["fold_fits"]?.arrayValue)
            #expect(fits.count == k && json["split"] == .string("cross-fit") && json["report_questions"] == .number(1000))
            for fold in 0..<k {
                let t = fits[fold]["temperature"]!.doubleValue!
                #expect(abs(t - expected[fold]) < 1e-7 * expected[fold], "fold \(fold): \(t) vs scipy \(expected[fold])")
            }
            #expect(abs(json["nll_after"]!.doubleValue! - case_["nll_after"]!.doubleValue!) < 1e-9)
            // The derived run: all 1,000 questions, its NLL the cross-fitted one; T per fold in params.
            let metrics = try JSONParser.parse(try TrackBinary.run(["metrics", name, "--db", db, "--format", "json"]).stdout).arrayValue![0]
            #expect(metrics["n"] == .number(1000) && abs(metrics["nll"]!.doubleValue! - case_["nll_after"]!.doubleValue!) < 1e-9)
            let store = try RunStore(path: db, readOnly: true)
            let meta = try #require(try store.runMetadata(named: name))
            #expect(meta.params["ts.split"] == "cross-fit" && meta.params["ts.folds"] == String(k) && meta.params["ts.seed"] == String(seed))
            for fold in 0..<k { #expect(Double(meta.params["ts.fold.\(fold).temperature"] ?? "") == fits[fold]["temperature"]!.doubleValue!) }
            // The folds in SQL are the reference's.
            let sizes = try store.query("SELECT count(*) FROM calibration_folds f JOIN runs r USING (run_id) WHERE r.name = '\(name)' GROUP BY fold ORDER BY fold").rows
            #expect(sizes.map { $0[0] } == case_["fold_sizes"]!.arrayValue!.map { .integer(Int64($0.integerValue!)) })
            for fold in 0..<k {
                let ids = try store.query("""
                    SELECT CAST(q.external_id AS INTEGER) AS id FROM calibration_folds f JOIN runs r USING (run_id) JOIN questions q USING (question_id)
                    WHERE r.name = '\(name)' AND f.fold = \(fold) ORDER BY id LIMIT 5
                    """).rows.map { $0[0] }
                #expect(ids == case_["first_ids_by_fold"]!.arrayValue![fold].arrayValue!.map { .integer(Int64($0.integerValue!)) })
            }
        }
    }
}

@Suite struct TCECommandTests {
    @Test func tceAgainstATargetWithBoundsAndRegimes() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        let target = [#"{"id": "a", "label": 0, "probs": [0.6, 0.4]}"#, #"{"id": "b", "label": 1, "probs": [0.5, 0.5]}"#].joined(separator: "\n")
        let sharp = [#"{"id": "a", "label": 0, "probs": [0.9, 0.1]}"#, #"{"id": "b", "label": 1, "probs": [0.2, 0.8]}"#].joined(separator: "\n")
        #expect(try TrackBinary.run(["log", "--run", "target", "--db", db, "--dataset", "d"], input: target).status == 0)
        #expect(try TrackBinary.run(["log", "--run", "sharp", "--db", db, "--dataset", "d"], input: sharp).status == 0)
        let result = try TrackBinary.run(["tce", "sharp", "--target", "target", "--db", db, "--format", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONParser.parse(result.stdout)
        // Target accuracy: a right (0.6), b tie → option 0, wrong: A* = 0.5. Sharp: both right, accuracy 1.
        #expect(json["a_star"] == .number(0.5))
        #expect(json["a_star_source"]?.stringValue?.contains("target run") == true)
        let row = try #require(json["runs"]?.arrayValue?.first)
        // TCE: a: (0.3 + 0.3)/2 = 0.3; b: (0.3 + 0.3)/2 = 0.3 → 0.3.
        #expect(abs(row["tce"]!.doubleValue! - 0.3) < 1e-12)
        #expect(abs(row["tce_upper"]!.doubleValue! - 0.5) < 1e-12)   // (2/K)·|1 − 0.5|
        #expect(row["regime"] == .string("non-calibratable"))
        #expect(row["cw_ece<=tce"] == .string("yes"))
        // A given A* wins over the target's accuracy.
        let given = try JSONParser.parse(try TrackBinary.run(["tce", "sharp", "--a-star", "1", "--db", db, "--format", "json"]).stdout)
        #expect(given["runs"]?.arrayValue?.first?["regime"] == .string("calibratable"))
    }
}

@Suite struct EMCommandTests {
    @Test func writesStoresAndComparesTargets() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        #expect(try TrackBinary.run(["ingest", StoreFixtures.path("synthetic-seed0-n1000.csv"), "--db", db, "--run", "e1", "--dataset", "train"]).status == 0)
        let result = try TrackBinary.run(["em", "e1", "--db", db, "--out", scratch.path("targets.npy")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("L_cal = ") && result.stdout.contains("rank order"))
        let targets = try NPYArray.read(path: scratch.path("targets.npy"))
        #expect(targets.shape == [1000, 4])
        for i in 0..<1000 { #expect(abs(targets.values[(4 * i)..<(4 * i + 4)].reduce(0, +) - 1) < 1e-12) }
        let store = try RunStore(path: db, readOnly: true)
        #expect(try store.database.scalarInt("SELECT count(*) FROM em_targets") == 4000)
        // A run equal to its own targets has L_cal 0 against them.
        let lines = (0..<1000).map { i in
            #"{"id": "\#(i)", "label": 0, "probs": [\#(targets.values[(4 * i)..<(4 * i + 4)].map { JSONValue.format($0) }.joined(separator: ", "))]}"#
        }
        // Labels must match the stored questions: take them from the fixture.
        let csv = try String(contentsOfFile: StoreFixtures.path("synthetic-seed0-n1000.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
        let labelled = zip(lines, csv).map { line, row in line.replacingOccurrences(of: #""label": 0"#, with: #""label": \#(row.split(separator: ",").last!)"#) }
        #expect(try TrackBinary.run(["log", "--run", "e2", "--db", db, "--dataset", "train", "--renormalize"], input: labelled.joined(separator: "\n")).status == 0)
        let compare = try TrackBinary.run(["em", "e2", "--against", "e1", "--db", db])
        #expect(compare.status == 0, "\(compare.stderr)")
        #expect(compare.stdout.contains("1000 paired questions"))
        let loss = Double(compare.stdout.split(separator: ":").last!.split(separator: " ").first!)!
        #expect(loss < 1e-20)
        #expect(try TrackBinary.run(["em", "e1", "--against", "e2", "--db", db]).status == 1)   // e2 has no stored targets
    }
}

@Suite struct WinRateCommandTests {
    @Test func pairsAndJudgmentsThroughLogAndWinrate() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        var lines = (0..<8).map { i in
            #"{"pair": "p\#(i)", "chosen_logprob": \#(i < 6 ? -10 : -30), "rejected_logprob": -20, "chosen_tokens": 10, "rejected_tokens": 10}"#
        }
        lines += ["A", "A", "B", "tie"].enumerated().map { #"{"judgment": "q\#($0.offset)", "verdict": "\#($0.element)", "vs": "gpt-4"}"# }
        let log = try TrackBinary.run(["log", "--run", "dpo", "--db", db], input: lines.joined(separator: "\n"))
        #expect(log.status == 0, "\(log.stderr)")
        let pairs = try JSONParser.parse(try TrackBinary.run(["winrate", "dpo", "--db", db, "--format", "json"]).stdout).arrayValue![0]
        #expect(pairs["pairs"] == .number(8) && pairs["wins"] == .number(6) && pairs["win rate %"] == .number(75))
        let judged = try JSONParser.parse(try TrackBinary.run(["winrate", "dpo", "--vs", "gpt-4", "--db", db, "--format", "json"]).stdout).arrayValue![0]
        #expect(judged["A %"] == .number(62.5) && judged["B %"] == .number(37.5))
        let view = try TrackBinary.run(["sql", "--db", db, "--format", "csv", "SELECT n, wins, win_rate FROM preference_winrate"])
        #expect(view.stdout.split(separator: "\n")[1] == "8,6,0.75")
        let judgedView = try TrackBinary.run(["sql", "--db", db, "--format", "csv", "SELECT opponent, a_share, b_share FROM judged_winrate"])
        #expect(judgedView.stdout.split(separator: "\n")[1] == "gpt-4,62.5,37.5")
        // A file of pairs only ingests; a bad verdict is refused with file and line.
        let file = scratch.write("pairs.jsonl", #"{"pair": "x", "chosen_logprob": -1, "rejected_logprob": -2}"# + "\n")
        #expect(try TrackBinary.run(["ingest", file, "--db", db]).status == 0)
        let bad = scratch.write("bad.jsonl", #"{"judgment": "x", "verdict": "C", "vs": "y"}"# + "\n")
        let refused = try TrackBinary.run(["ingest", bad, "--db", db])
        #expect(refused.status == 1 && refused.stderr.contains("bad.jsonl:1: judgment 'x': 'verdict' must be A, B or tie"))
    }
}

@Suite struct MatrixCalibrateCommandTests {
    @Test func matrixAndDirichletWriteDerivedRuns() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        #expect(try TrackBinary.run(["ingest", StoreFixtures.path("synthetic-seed0-n1000.csv"), "--db", db, "--run", "syn", "--method", "DPO"]).status == 0)
        for (method, suffix) in [("vector", "VS"), ("matrix", "MS"), ("dirichlet", "DIR")] {
            let result = try TrackBinary.run(["calibrate", method, "--fit", "syn", "--apply", "syn", "--in-sample", "--db", db, "--lambda", "0.01"])
            #expect(result.status == 0, "\(result.stderr)")
            // "  NLL       before -> after" on the fit questions, as every calibrator reports.
            let line = try #require(result.stdout.split(separator: "\n").first { $0.contains("NLL") })
            let nll = line.split(separator: " ")
            #expect(nll.count == 4 && Double(nll[3])! < Double(nll[1])! - 0.1, "\(method): \(result.stdout)")
            #expect(result.stdout.contains("conf-ECE"))
            let store = try RunStore(path: db, readOnly: true)
            let meta = try #require(try store.runMetadata(named: "syn+\(suffix)"))
            #expect(meta.method == suffix && meta.params["ms.kind"] == method && meta.params["ms.parent_method"] == "DPO")
            let weights = try JSONParser.parse(meta.params["ms.weights"]!).arrayValue!
            #expect(weights.count == 16)
        }
        #expect(try TrackBinary.run(["calibrate", "platt", "--fit", "syn", "--db", db]).status == 64)
    }
}

@Suite struct WinRateTableTests {
    @Test func table3Shape() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        let judged = ["A", "A", "B", "tie"].enumerated().map { #"{"judgment": "q\#($0.offset)", "verdict": "\#($0.element)", "vs": "gpt-4"}"# }
        let pairs = (0..<4).map { #"{"pair": "p\#($0)", "chosen_logprob": \#($0 < 3 ? -1 : -9), "rejected_logprob": -5}"# }
        #expect(try TrackBinary.run(["log", "--run", "dpo", "--db", db, "--model", "m", "--method", "DPO"], input: (judged + pairs).joined(separator: "\n")).status == 0)
        #expect(try TrackBinary.run(["log", "--run", "cft", "--db", db, "--model", "m", "--method", "CFT"], input: pairs.prefix(2).joined(separator: "\n")).status == 0)
        let result = try TrackBinary.run(["table", "--db", db, "--winrate", "--columns", "none", "--format", "csv", "--out", scratch.path("t3.csv")])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines[0] == "Model,Method,SL win %,vs gpt-4")
        #expect(lines[1] == "m,DPO,75,62.50 vs 37.50")
        #expect(lines[2] == "m,CFT,100,")
    }
}
