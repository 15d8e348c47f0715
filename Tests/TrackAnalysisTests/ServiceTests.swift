import Foundation
import Testing
import TrackAnalysis
import TrackCalibration
import TrackFigures
import TrackStore

/// The services, called in-process as the CLI calls them: each checked against
/// the analyzers it wraps, a hand computation, or what it wrote to the store.
@Suite struct ServiceTests {
    /// A fresh folder, removed when released.
    final class Scratch {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("track-analysis-\(UUID().uuidString)")
        init() { try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(at: url) }
        func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    }

    /// A seeded run of `n` K-option questions; `sharpness` > 1 makes it overconfident.
    static func predictions(n: Int, k: Int = 4, seed: UInt64, sharpness: Double = 1, idOffset: Int = 0) -> [Prediction] {
        var random = SeededRandom(seed: seed)
        return (0..<n).map { i in
            let truth = (0..<k).map { _ in 1.6 * random.nextGaussian() }
            // The label drawn from softmax(truth).
            var u = random.nextDouble(), label = k - 1
            for (c, p) in Probabilities.softmax(truth).enumerated() {
                if u < p { label = c; break }
                u -= p
            }
            let scores = truth.map { sharpness * ($0 + 0.8 * random.nextGaussian()) }
            return Prediction(questionID: "q\(i + idOffset)", label: label, values: .scores(scores),
                              subject: ["anatomy", "astronomy", "physics"][i % 3], dataset: "d")
        }
    }

    static func store(_ scratch: Scratch, runs: [(String, String, [Prediction])]) throws -> RunStore {
        let store = try RunStore(path: scratch.path("t.sqlite"))
        for (name, method, predictions) in runs {
            var meta = RunMetadata(name: name, model: "m", method: method, dataset: "d", split: "test")
            meta.params["lr"] = method == "DPO" ? "5e-7" : "0"
            _ = try store.writeRun(meta, predictions: predictions)
        }
        return store
    }

    static func close(_ a: Double?, _ b: Double?, _ tolerance: Double = 1e-12) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        return abs(a - b) <= tolerance * max(1, abs(a), abs(b))
    }

    @Test func parallelReadEqualsOneScanAndStoredSummaries() throws {
        let scratch = Scratch()
        // 6,000 ids: above the threshold where the second half is read on its own connection.
        let store = try Self.store(scratch, runs: [("big", "DPO", Self.predictions(n: 6000, seed: 1, sharpness: 2))])
        let reader = RunReader(store)
        let parallel = try reader.analyzer(named: "big", BinSettings(bins: 15, epsilon: 0.01)).metrics()
        let single = CalibrationAnalyzer(try store.loadRun(named: "big").predictions, bins: 15, epsilon: 0.01).metrics()
        for key in MetricKey.allCases { #expect(Self.close(parallel[key], single[key]), "\(key)") }
        // Stored summaries (10 bins) answer the same as a pass over the rows.
        let stored = try reader.metrics(named: "big", keys: RunStore.storedMetricKeys)
        let computed = CalibrationAnalyzer(try store.loadRun(named: "big").predictions, bins: 10).metrics()
        for key in RunStore.storedMetricKeys { #expect(Self.close(stored.metrics[key], computed[key]), "\(key)") }
        #expect(stored.optionCount == 4)
        // A metric no summary holds is computed from the rows.
        let adaptive = try reader.metrics(named: "big", keys: [.ace])
        #expect(Self.close(adaptive.metrics.ace, computed.ace))
    }

    @Test func metricsRequestWithGroupsIntervalsAndBins() throws {
        let scratch = Scratch()
        let store = try Self.store(scratch, runs: [("a", "SFT", Self.predictions(n: 300, seed: 2))])
        var request = MetricsRequest(runs: ["a"])
        request.groupBy = .subject
        request.bootstrap = BootstrapSettings(resamples: 64, seed: 7, level: 0.9)
        request.reliability = true
        let report = try RunReader(store).metrics(request)
        #expect(report.rows.map(\.group) == ["anatomy", "astronomy", "physics"])
        #expect(report.rows.map(\.metrics.n) == [100, 100, 100])
        let loaded = try store.loadRun(named: "a", details: true)
        let physics = loaded.grouped(by: .subject)[2].1
        let analyzer = CalibrationAnalyzer(physics)
        #expect(report.rows[2].metrics == analyzer.metrics(smooth: true))
        #expect(report.rows[2].intervals == analyzer.bootstrap(resamples: 64, seed: 7, level: 0.9, smooth: true))
        #expect(report.rows[2].bins?.topLabel == analyzer.reliabilityBins())
        let table = report.table(keys: [.confECE, .accuracy])
        // One name per quantity: the JSON keys are the headers of the text table and the CSV.
        #expect(table.columns == ["run", "subject", "n", "conf_ece", "conf_ece_lo", "conf_ece_hi", "accuracy", "accuracy_lo", "accuracy_hi",
                                   "calibration_p"])
        // The caption names each interval's method and what a lower end of 0 means.
        #expect(table.caption?.hasPrefix("_lo/_hi: 90% intervals: percentile bootstrap (accuracy); bin-bounded bootstrap (conf_ece)") == true)
        #expect(table.caption?.contains("_lo is 0") == true)
        #expect(table.render(.csv).hasPrefix("run,subject,n,conf_ece,conf_ece_lo,conf_ece_hi,accuracy,accuracy_lo,accuracy_hi,calibration_p\n"))
        #expect(report.rows[2].intervals[.confECE]?.method == .binBounds && report.rows[2].intervals[.accuracy]?.method == .percentile)
        guard case .array(let objects) = report.json, case .object(let first) = objects[0] else { Issue.record("no JSON rows"); return }
        for key in ["conf_ece", "accuracy", "mean_confidence", "ci", "ci_method", "calibration_test"] {
            #expect(first[key] != nil, "\(key) is not a JSON key")
        }
        guard case .object(let test)? = first["calibration_test"], case .number(let p)? = test["p"] else {
            Issue.record("calibration_test has no p"); return
        }
        #expect(p >= 1.0 / 65 && p <= 1)
        #expect(test["statistic"] != nil && test["method"] != nil)
    }

    @Test func temperatureCalibratorDerivesARunWithTheFitRecorded() throws {
        let scratch = Scratch()
        let store = try Self.store(scratch, runs: [("dpo", "DPO", Self.predictions(n: 800, seed: 3, sharpness: 2.5))])
        var request = CalibrationRequest(calibrator: TemperatureCalibrator(), fitRun: "dpo")
        request.applyTo = ["dpo"]
        #expect(throws: StoreError.self) { try Calibration.run(request, store: store) }   // in-sample: asked for, or refused
        request.allowInSample = true
        let result = try Calibration.run(request, store: store)
        let fitted = try #require(result.fitted as? TemperatureCalibrator.Fitted)
        // The same T as fitting the scaling directly.
        let direct = TemperatureScaling(try store.loadRun(named: "dpo").predictions).fitTemperature()
        #expect(fitted.temperature == direct.temperature && fitted.temperature > 1.5)
        #expect(result.after.nll! < result.before.nll! && result.after.confECE! < result.before.confECE!)
        #expect(result.derivedRuns == ["dpo+TS"])
        // The derived run: its metrics are the reported "after", its accuracy the parent's, its fit recorded.
        let derived = try RunReader(store).analyzer(named: "dpo+TS").metrics()
        #expect(Self.close(derived.nll, result.after.nll, 1e-10))
        #expect(derived.accuracy == result.before.accuracy)
        let meta = try #require(try store.runMetadata(named: "dpo+TS"))
        #expect(meta.method == "TS" && meta.params["ts.fit_run"] == "dpo" && meta.params["ts.parent_method"] == "DPO")
        #expect(meta.params["ts.temperature"] == JSONValue.format(fitted.temperature))
        // Writing it again is a conflict whose remedy is to replace it; replacing works.
        #expect(throws: ValidationError.self) { try Calibration.run(request, store: store) }
        do {
            _ = try Calibration.run(request, store: store)
        } catch let error as ValidationError {
            #expect(error.kind == .conflict && error.remedy == .replace)
        }
        request.replace = true
        #expect(try Calibration.run(request, store: store).derivedRuns == ["dpo+TS"])
    }

    @Test func matrixCalibratorWithHoldoutReportsOnTheRest() throws {
        let scratch = Scratch()
        let store = try Self.store(scratch, runs: [("dpo", "DPO", Self.predictions(n: 1000, seed: 4, sharpness: 2))])
        var request = CalibrationRequest(calibrator: MatrixCalibrator(.vector), fitRun: "dpo")
        request.holdout = 0.4
        request.seed = 9
        request.applyTo = ["dpo"]
        let result = try Calibration.run(request, store: store)
        #expect(result.fitQuestions == 600 && result.reportQuestions == 400 && result.heldOut)   // 40% held out
        // The held-out questions are those the seeded hash puts past the cut.
        let run = try store.loadRun(named: "dpo", details: true)
        let keys = (0..<run.predictions.count).map { Calibration.holdoutKey(9, run.datasets[$0], run.externalIDs[$0]) }
        let heldOut = (0..<run.predictions.count).sorted { keys[$0] < keys[$1] }[600...].sorted()
        let before = CalibrationAnalyzer(run.predictions.subset(heldOut)).metrics()
        #expect(result.before == before)
        let meta = try #require(try store.runMetadata(named: "dpo+VS"))
        #expect(meta.method == "VS" && meta.params["ms.kind"] == "vector" && meta.params["ms.holdout"] == "0.4")
        #expect((try? JSONParser.parse(meta.params["ms.weights"] ?? ""))?.arrayValue?.count == 16)
    }

    /// Every calibrator cross-fits: each question of the derived run holds its fold's map applied
    /// to it (the map fitted without that fold), and the folds are stored with the run.
    @Test func everyCalibratorCrossFits() throws {
        let scratch = Scratch()
        let store = try Self.store(scratch, runs: [("dpo", "DPO", Self.predictions(n: 300, seed: 5, sharpness: 2))])
        let calibrators: [any Calibrator] = [TemperatureCalibrator(), MatrixCalibrator(.vector), MatrixCalibrator(.matrix, lambda: 0.01),
                                             MatrixCalibrator(.dirichlet, lambda: 0.01), ClasswiseCalibrator(.isotonic),
                                             ClasswiseCalibrator(.histogram(bins: 10, equalMass: false))]
        let source = try store.loadRun(named: "dpo", details: true)
        for calibrator in calibrators {
            var request = CalibrationRequest(calibrator: calibrator, fitRun: "dpo")
            request.applyTo = ["dpo"]
            request.split = .folds(3)
            request.seed = 4
            request.suffix = "+\(calibrator.method)-cf"
            let result = try Calibration.run(request, store: store)
            #expect(result.fits.count == 3 && result.reportQuestions == 300, "\(calibrator.name)")
            let name = "dpo+\(calibrator.method)-cf"
            let derived = try store.loadRun(named: name).predictions
            #expect(derived.count == 300)
            var folds: [Int64: Int] = [:]
            try store.database.forEachRow("SELECT question_id, fold FROM calibration_folds f JOIN runs r USING (run_id) WHERE r.name = ?", [.text(name)]) {
                folds[$0.int64(0)] = $0.int(1)
            }
            #expect(folds.count == 300 && Set(folds.values) == [0, 1, 2])
            // Question by question: the probabilities of its own fold's map; another fold's map differs somewhere.
            var differs = false
            for i in 0..<source.predictions.count {
                let fold = try #require(folds[source.predictions.questionIDs[i]])
                let one = source.predictions.subset([i])
                let own = try Calibration.rescored(one, try result.fits[fold].apply(one)).probabilities
                let other = try Calibration.rescored(one, try result.fits[(fold + 1) % 3].apply(one)).probabilities
                let stored = Array(derived.probabilities[derived.offsets[i]..<derived.offsets[i + 1]])
                #expect(zip(own, stored).allSatisfy { abs($0 - $1) < 1e-12 }, "\(calibrator.name), question \(i)")
                if zip(other, stored).contains(where: { abs($0 - $1) > 1e-9 }) { differs = true }
            }
            #expect(differs, "\(calibrator.name): the folds' maps should differ")
            // The derived run's metrics are the reported cross-fitted "after".
            #expect(Self.close(CalibrationAnalyzer(derived).metrics().nll, result.after.nll, 1e-10))
        }
    }

    /// A new calibrator is one type: here the identity map.
    struct IdentityCalibrator: Calibrator {
        var name: String { "identity" }
        var method: String { "ID" }
        var parameterPrefix: String { "id" }
        struct Fitted: FittedCalibrator {
            var summary: String { "nothing fitted" }
            var parameters: [(key: String, value: JSONValue)] { [("note", .string("identity"))] }
            func apply(_ set: PredictionSet) -> Calibrated { .scores(set.probabilities.map { log($0) }) }
        }
        func fit(_ set: PredictionSet, rows: [Int]?) -> any FittedCalibrator { Fitted() }
    }

    @Test func aNewCalibratorIsOneType() throws {
        let scratch = Scratch()
        let store = try Self.store(scratch, runs: [("sft", "SFT", Self.predictions(n: 200, seed: 5))])
        var request = CalibrationRequest(calibrator: IdentityCalibrator(), fitRun: "sft")
        request.applyTo = ["sft"]
        request.split = .folds(4)
        let result = try Calibration.run(request, store: store)
        for key in MetricKey.allCases { #expect(Self.close(result.before[key], result.after[key], 1e-9), "\(key)") }
        #expect(try store.runMetadata(named: "sft+ID")?.params["id.fold.0.note"] == "identity")
        let a = try store.loadRun(named: "sft").predictions, b = try store.loadRun(named: "sft+ID").predictions
        #expect(zip(a.probabilities, b.probabilities).allSatisfy { abs($0 - $1) < 1e-12 })
    }

    @Test func paperTableFromStoredSummariesEqualsAnalyzers() throws {
        let scratch = Scratch()
        let store = try Self.store(scratch, runs: [("sft", "SFT", Self.predictions(n: 400, seed: 6)),
                                                   ("dpo", "DPO", Self.predictions(n: 400, seed: 6, sharpness: 2.4))])
        let reader = RunReader(store)
        var request = PaperTableRequest()
        request.keys = [.confECE, .cwECE, .accuracy, .ace]   // ace: not stored, so every cell is computed
        let computed = try reader.paperTable(request).table
        request.keys = [.confECE, .cwECE, .accuracy]
        let stored = try reader.paperTable(request).table
        #expect(stored.columns == ["Model", "Method", "conf-ECE", "cw-ECE", "Acc"])
        #expect(stored.groups == [nil, nil, "test", "test", "test"])
        // The paper's labels in LaTeX; the metric keys in CSV and JSON.
        #expect(stored.render(.latex).contains("conf-ECE & cw-ECE & Acc"))
        #expect(stored.render(.csv).hasPrefix("model,method,test.conf_ece,test.cw_ece,test.accuracy\n"))
        for (r, row) in stored.rows.enumerated() {
            let name = row[1].display == "SFT" ? "sft" : "dpo"
            let m = CalibrationAnalyzer(try store.loadRun(named: name).predictions).metrics()
            #expect(Self.close(row[2].number, m.confECE) && Self.close(row[3].number, m.cwECE) && row[4].number == m.accuracy)
            #expect(Self.close(computed.rows[r][2].number, row[2].number))
            #expect(Self.close(computed.rows[r][5].number, m.ace))
        }
        // A sweep over a parameter puts it in the rows, in numeric order.
        request.rows = [.model, .param("lr")]
        #expect(try reader.paperTable(request).table.rows.map { $0[1].display } == ["0", "5e-7"])
        request.filter.method = "nothing"
        #expect(throws: StoreError.self) { try reader.paperTable(request) }
    }

    /// Issue 25 (in part): a paper table's rows come in model blocks — a run added later to the
    /// first model sits with that model's rows, not after the other model's.
    @Test func paperTableRowsComeInModelBlocks() throws {
        let scratch = Scratch()
        let store = try RunStore(path: scratch.path("blocks.sqlite"))
        for (name, model, method) in [("8b", "8B", "base"), ("70b", "70B", "base"), ("70b-ts", "70B", "TS"), ("8b-ts", "8B", "TS")] {
            _ = try store.writeRun(RunMetadata(name: name, model: model, method: method, dataset: "d", split: "test"),
                                   predictions: Self.predictions(n: 50, seed: 3))
        }
        let table = try RunReader(store).paperTable(PaperTableRequest()).table
        #expect(table.rows.map { "\($0[0].display)/\($0[1].display)" } == ["8B/base", "8B/TS", "70B/base", "70B/TS"])
        // The best value is bold within each model's block: one bold accuracy per model (every
        // run here has the same accuracy, so both rows of each block are bold), never across.
        let lines = table.render(.markdown).split(separator: "\n").filter { $0.hasPrefix("| 8B") || $0.hasPrefix("| 70B") }
        #expect(lines.count == 4 && lines.allSatisfy { $0.contains("**") }, "\(lines)")
        var across = table
        across.bestWithin = nil
        across.rows[2][4] = .number(0.99, digits: 4)   // 70B/base: the best accuracy of the table
        let acrossLines = across.render(.markdown).split(separator: "\n").filter { $0.hasPrefix("| 8B") || $0.hasPrefix("| 70B") }
        #expect(acrossLines.filter { $0.contains("**0.9900**") }.count == 1 && !acrossLines[0].split(separator: "|")[4].contains("**"))
        var within = across
        within.bestWithin = 0
        let withinLines = within.render(.markdown).split(separator: "\n").filter { $0.hasPrefix("| 8B") || $0.hasPrefix("| 70B") }
        #expect(withinLines[0].split(separator: "|")[4].contains("**"), "the 8B block keeps its own best: \(withinLines[0])")
    }

    /// Issue 25: --order, --methods, and each value's interval in its cell (CSV, LaTeX, Markdown).
    @Test func paperTableOrderMethodsAndIntervalsInCells() throws {
        let scratch = Scratch()
        let store = try RunStore(path: scratch.path("cells.sqlite"))
        for (name, model, method, sharpness) in [("8b", "8B", "base", 2.4), ("70b", "70B", "base", 2.2), ("70b-ts", "70B", "TS", 1.0),
                                                 ("8b-ts", "8B", "TS", 1.0), ("8b-cft", "8B", "CFT", 1.2)] {
            _ = try store.writeRun(RunMetadata(name: name, model: model, method: method, dataset: "d", split: "test"),
                                   predictions: Self.predictions(n: 300, seed: 11, sharpness: sharpness))
        }
        let reader = RunReader(store)
        var request = PaperTableRequest()
        request.order = ["70B"]
        request.methods = ["TS", "base"]
        var table = try reader.paperTable(request).table
        #expect(table.rows.map { "\($0[0].display)/\($0[1].display)" } == ["70B/TS", "70B/base", "8B/TS", "8B/base"])
        // A method no run has is an error with a hint for a case slip.
        request.methods = ["ts"]
        #expect(throws: StoreError.self) { try reader.paperTable(request) }
        do { _ = try reader.paperTable(request) } catch let error as StoreError { #expect(error.description.contains("did you mean 'TS'")) }
        request.methods = nil
        request.order = nil
        request.intervals = (.brackets, BootstrapSettings(resamples: 200, seed: 3, level: 0.9))
        table = try reader.paperTable(request).table
        // Each cell's interval is the run's own `metrics --ci` interval (same resamples, seed, level).
        let run = try store.loadRun(named: "8b-cft")
        let expected = CalibrationAnalyzer(run.predictions).intervals(resamples: 200, seed: 3, level: 0.9).intervals
        let row = try #require(table.rows.first { $0[1].display == "CFT" })
        guard case .estimate(let ece) = row[2] else { Issue.record("no interval in the cell"); return }
        let interval = try #require(expected[.confECE])
        #expect(ece.lower == interval.lower && ece.upper == interval.upper)
        let cell = String(format: "%.4f [%.4f, %.4f]", ece.value!, interval.lower, interval.upper)
        #expect(row[2].display == cell)
        #expect(table.render(.csv).contains("\"\(cell)\""), "CSV cells carry the interval (quoted: it has a comma)")
        #expect(table.render(.markdown).contains(cell) || table.render(.markdown).contains("**\(String(format: "%.4f", ece.value!))** ["))
        #expect(table.caption?.contains("90% bootstrap interval") == true)
        request.intervals = (.pm, BootstrapSettings(resamples: 200, seed: 3, level: 0.9))
        let pm = try reader.paperTable(request).table
        let pmRow = try #require(pm.rows.first { $0[1].display == "CFT" })
        #expect(pmRow[2].display == String(format: "%.4f ± %.4f", ece.value!, (interval.upper - interval.lower) / 2))
        #expect(pm.render(.latex).contains("$\\pm$"))
        // Bold marks the best value of its model block and leaves the interval plain.
        let latex = table.render(.latex)
        #expect(latex.contains(/\\textbf\{[0-9.]+\} \[[0-9.]+, [0-9.]+\]/))
        #expect(!latex.contains(/\\textbf\{[^}]*\[/), "the interval is never inside the bold")
    }

    @Test func comparisonPairsSharedQuestions() throws {
        let scratch = Scratch()
        let base = Self.predictions(n: 90, seed: 8)
        var other = Self.predictions(n: 90, seed: 8, sharpness: 3)
        other.removeLast(30)   // 60 shared questions
        let store = try Self.store(scratch, runs: [("base", "SFT", base), ("other", "DPO", other)])
        var request = ComparisonRequest(base: "base", others: ["other"])
        request.keys = [.accuracy, .confECE]
        let report = try RunReader(store).compare(request)
        let paired = report.comparisons[0].paired
        #expect(paired.total.n == 60 && paired.groups.map(\.1.n) == [20, 20, 20])
        // By hand: flips between the two runs' top labels on the shared questions.
        let a = try store.loadRun(named: "base").predictions, b = try store.loadRun(named: "other").predictions
        var rightToWrong = 0, wrongToRight = 0
        for i in 0..<60 {
            let ra = TopLabel(Array(a.probabilities[(4 * i)..<(4 * i + 4)])).prediction == Int(a.labels[i])
            let rb = TopLabel(Array(b.probabilities[(4 * i)..<(4 * i + 4)])).prediction == Int(b.labels[i])
            if ra && !rb { rightToWrong += 1 }
            if !ra && rb { wrongToRight += 1 }
        }
        #expect(paired.total.rightToWrong == rightToWrong && paired.total.wrongToRight == wrongToRight)
        let delta = report.comparisons[0].deltas[1]
        #expect(delta.key == .confECE && Self.close(delta.delta, delta.other! - delta.base!))
    }

    @Test func reportDataCarriesEveryRunWithItsStoredMetrics() throws {
        let scratch = Scratch()
        let store = try Self.store(scratch, runs: [("sft", "SFT", Self.predictions(n: 150, seed: 10)),
                                                   ("dpo", "DPO", Self.predictions(n: 150, seed: 10, sharpness: 2))])
        let data = try RunReader(store).reportData()
        #expect(data.runs.map(\.summary.name).sorted() == ["dpo", "sft"])
        for run in data.runs {
            let m = CalibrationAnalyzer(try store.loadRun(named: run.summary.name).predictions).metrics()
            for key in RunStore.storedMetricKeys { #expect(Self.close(run.metrics?[key], m[key]), "\(key)") }
            #expect(run.params["lr"] != nil)
        }
        #expect(data.paperTable?.rows.count == 2)
        // Each run's reliability bins from the stored totals are the analyzer's.
        for run in data.runs {
            let bins = CalibrationAnalyzer(try store.loadRun(named: run.summary.name).predictions).reliabilityBins()
            #expect(run.bins.map(\.count) == bins.map(\.count))
            #expect(zip(run.bins, bins).allSatisfy { Self.close($0.accuracy, $1.accuracy) && Self.close($0.confidence, $1.confidence) })
        }
        let json = data.json.arrayValue ?? []
        #expect(json.count == 2 && json.allSatisfy { $0["conf_ece"]?.doubleValue != nil })
    }

    /// A run named to break out of the report's JSON block (`<!--<script>`) stays inside it: the
    /// block holds no `<`, and its text parses back to the name.
    @Test func reportJSONCannotBeBrokenByARunName() throws {
        let scratch = Scratch()
        let name = "<!--<script></script>&x"
        let store = try Self.store(scratch, runs: [(name, "SFT", Self.predictions(n: 120, seed: 12))])
        var request = ReportRequest(out: scratch.path("r.html"))
        request.resamples = 20
        _ = try Report.build(request, store: store)
        let html = try String(contentsOfFile: scratch.path("r.html"), encoding: .utf8)
        let open = try #require(html.range(of: "<script type=\"application/json\" id=\"report-data\">"))
        let close = try #require(html.range(of: "</script>", range: open.upperBound..<html.endIndex))
        let block = String(html[open.upperBound..<close.lowerBound])
        #expect(!block.contains("<") && !block.contains(">") && !block.contains("&"))
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(block.utf8)) as? [String: Any])
        let runs = try #require(parsed["runs"] as? [[String: Any]])
        #expect(runs.first?["name"] as? String == name)
        // Its section and its row's link share one anchor, made of safe characters only.
        let anchor = try #require(runs.first?["anchor"] as? String)
        #expect(anchor.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") } && html.contains("id=\"\(anchor)\""))
    }

    @Test func demoBuildsInProcessWithItsGallery() throws {
        let scratch = Scratch()
        var request = DemoRequest()
        request.path = scratch.path("demo.sqlite")
        request.out = scratch.path("exports")
        request.questionsPerDomain = 120
        let report = try Demo.build(request)
        #expect(report.runs == 54 && report.predictions == 54 * 120)
        #expect(report.text.contains("SIMULATED DATA"))
        // The printed Table 2 is the one a paper-table request over the store gives.
        let store = try RunStore(path: request.path, readOnly: true)
        var table = PaperTableRequest()
        table.percent = true
        table.digits = 2
        table.caption = report.paperTable.caption
        #expect(try RunReader(store).paperTable(table).table.render(.csv) == report.paperTable.render(.csv))
        // Every figure was drawn: not blank, and recorded with its runs.
        for figure in report.figures {
            let image = try PNGImage(path: figure)
            #expect(image.width > 300 && image.height > 200)
            let dark = stride(from: 0, to: image.width, by: 7).flatMap { x in
                stride(from: 0, to: image.height, by: 7).map { image.color(x: x, y: $0).luminance }
            }.filter { $0 < 0.5 }.count
            #expect(dark > 50, "\(figure)")
        }
        #expect(try store.database.scalarInt("SELECT count(*) FROM exports") == 7 && report.figures.count == 7)
        // A store that is not a demo is never replaced.
        let other = scratch.path("mine.sqlite")
        _ = try RunStore(path: other)
        request.path = other
        #expect(throws: StoreError.self) { try Demo.build(request) }
    }

    @Test func errorsCarryKindsAndRemediesWithoutFlags() throws {
        let scratch = Scratch()
        let store = try Self.store(scratch, runs: [("a", "SFT", Self.predictions(n: 10, seed: 12))])
        do {
            _ = try RunReader(store).analyzer(named: "nope")
            Issue.record("no error")
        } catch let error as StoreError {
            #expect(error.kind == .notFound && !error.message.contains("--"))
        }
        let bad = scratch.path("bad.jsonl")
        try #"{"id": "x", "label": 0, "probs": [0.5, 0.6]}"#.write(toFile: bad, atomically: true, encoding: .utf8)
        do {
            _ = try Ingestor(store: store).ingest(bad, options: IngestOptions())
            Issue.record("no error")
        } catch let error as InputError {
            #expect(error.kind == .invalidInput && error.line == 1 && error.remedy == .renormalize)
            #expect(!error.description.contains("--"), "\(error)")
        }
        do {
            _ = try RunStore(path: scratch.path("missing.sqlite"), readOnly: true)
            Issue.record("no error")
        } catch let error as StoreError {
            #expect(error.kind == .notFound && error.remedy == .create(path: scratch.path("missing.sqlite")))
        }
    }

    @Test func comparePairsABootstrapAndMcNemarOnSharedQuestions() throws {
        let scratch = Scratch()
        let base = Self.predictions(n: 400, seed: 21)
        let store = try Self.store(scratch, runs: [("base", "SFT", base), ("same", "SFT2", base),
                                                   ("sharp", "DPO", Self.predictions(n: 400, seed: 21, sharpness: 3))])
        var request = ComparisonRequest(base: "base", others: ["same", "sharp"])
        request.keys = [.accuracy, .confECE, .smECE]
        request.bootstrap = BootstrapSettings(resamples: 300, seed: 5)
        let report = try RunReader(store).compare(request)
        // The same predictions: every difference 0, p = 1, McNemar b = c = 0.
        let same = report.comparisons[0]
        #expect(same.differences.allSatisfy { $0.delta == 0 && $0.p == 1 } && same.mcnemar?.p == 1)
        // Sharpened: its conf-ECE is far worse, and significantly so; McNemar's b, c by hand.
        let sharp = report.comparisons[1]
        let ece = try #require(sharp.differences.first { $0.key == .confECE })
        #expect(ece.delta! > 0.1 && ece.p! < 0.01 && ece.interval!.lower > 0)
        let a = CalibrationAnalyzer(try store.loadRun(named: "base").predictions)
        let b = CalibrationAnalyzer(try store.loadRun(named: "sharp").predictions)
        let onlyBase = zip(a.correctness, b.correctness).filter { $0 && !$1 }.count
        let onlyOther = zip(a.correctness, b.correctness).filter { !$0 && $1 }.count
        #expect(sharp.mcnemar?.b == onlyBase && sharp.mcnemar?.c == onlyOther)
        #expect(sharp.mcnemar?.p == PairedTests.mcnemarExact(b: onlyBase, c: onlyOther))
        // The interval is the paired one: narrower than the two runs' own intervals combined.
        let own = a.bootstrap(resamples: 300, seed: 5)[.confECE]!, other = b.bootstrap(resamples: 300, seed: 5)[.confECE]!
        #expect(ece.interval!.upper - ece.interval!.lower < (own.upper - own.lower) + (other.upper - other.lower))
        let json = report.json.arrayValue![1]
        #expect(json["paired_tests"]?["conf_ece"]?["significant"] == .bool(true) && json["mcnemar"]?["b"] == .number(Double(onlyBase)))
    }

    @Test func isotonicAndHistogramCalibratorsDeriveProbabilityRuns() throws {
        let scratch = Scratch()
        let store = try Self.store(scratch, runs: [("dpo", "DPO", Self.predictions(n: 600, seed: 22, sharpness: 2.5))])
        for (calibrator, suffix) in [(ClasswiseCalibrator(.isotonic), "ISO"),
                                     (ClasswiseCalibrator(.histogram(bins: 10, equalMass: true)), "HB")] {
            var request = CalibrationRequest(calibrator: calibrator, fitRun: "dpo")
            request.applyTo = ["dpo"]
            request.allowInSample = true
            let result = try Calibration.run(request, store: store)
            #expect(result.derivedRuns == ["dpo+\(suffix)"])
            #expect(result.after.brier! < result.before.brier! && result.after.confECE! < result.before.confECE!, "\(suffix)")
            // The derived run holds the per-class maps applied and renormalised.
            let source = try store.loadRun(named: "dpo").predictions
            let derived = try store.loadRun(named: "dpo+\(suffix)").predictions
            #expect(derived.scores == nil && derived.count == 600)
            let fitted = try #require(result.fitted as? ClasswiseCalibrator.Fitted)
            let expected = OneVsRest.apply(source, optionCount: 4) { c, p in
                suffix == "ISO" ? fitted.isotonic[c].predict(p) : fitted.histogram[c].predict(p)
            }
            #expect(zip(derived.probabilities, expected).allSatisfy { abs($0 - $1) < 1e-15 })
            let meta = try #require(try store.runMetadata(named: "dpo+\(suffix)"))
            #expect(meta.method == suffix && meta.params["\(suffix.lowercased()).fit_run"] == "dpo")
        }
    }

    @Test func smoothReliabilityFigureDrawsTheCurveBandAndDensity() throws {
        let scratch = Scratch()
        let store = try Self.store(scratch, runs: [("dpo", "DPO", Self.predictions(n: 500, seed: 23, sharpness: 2.5))])
        var request = FigureRequest(kind: .smooth, runs: ["dpo"], out: scratch.path("smooth.png"))
        request.bands = 50
        let result = try RunReader(store).figure(request)
        let csv = try String(contentsOfFile: result.dataPath, encoding: .utf8).split(separator: "\n")
        #expect(csv.count == 201 && csv[0] == "run,t,curve,low,high,density,shown,smece,smece_low,smece_high,sigma")
        let analyzer = CalibrationAnalyzer(try store.loadRun(named: "dpo").predictions)
        let smece = analyzer.metrics(smooth: true).smECE!
        let first = csv[1].split(separator: ",")
        #expect(abs(Double(first[7])! - smece) < 1e-12)
        // smECE's interval is the one `track metrics --ci` reports (the same resamples and seed).
        let interval = try #require(analyzer.intervals(resamples: 50, seed: 0, smooth: true).intervals[.smECE])
        #expect(abs(Double(first[8])! - interval.lower) < 1e-12 && abs(Double(first[9])! - interval.upper) < 1e-12)
        #expect(interval.lower < smece && smece < interval.upper)
        // The curve is the kernel regression at σ; the band contains it.
        for line in csv.dropFirst() {
            let f = line.split(separator: ",").map { Double($0) ?? .nan }
            #expect(f[3] <= f[2] + 1e-9 && f[2] <= f[4] + 1e-9)
        }
        // Pixels: the red curve and the grey density strip are drawn.
        let image = try PNGImage(path: result.path)
        var red = 0, grey = 0
        for y in stride(from: 0, to: image.height, by: 2) {
            for x in stride(from: 0, to: image.width, by: 2) {
                let c = image.color(x: x, y: y)
                if c.red > 0.7 && c.green < 0.3 && c.blue < 0.3 { red += 1 }
                if abs(c.red - 0.55) < 0.03 && abs(c.green - 0.55) < 0.03 && abs(c.blue - 0.55) < 0.03 { grey += 1 }
            }
        }
        #expect(red > 100 && grey > 500, "red \(red) grey \(grey)")
    }

    @Test func tableMarksWhatDiffersFromTheBaseMethod() throws {
        let scratch = Scratch()
        let base = Self.predictions(n: 400, seed: 24)
        let store = try Self.store(scratch, runs: [("dpo", "DPO", Self.predictions(n: 400, seed: 24, sharpness: 3)),
                                                   ("sft", "SFT", base), ("sft-copy", "COPY", base)])
        var request = PaperTableRequest()
        request.keys = [.confECE]
        request.significance = ("DPO", 0.05, BootstrapSettings(resamples: 200, seed: 0))
        let table = try RunReader(store).paperTable(request).table
        let cells = Dictionary(uniqueKeysWithValues: table.rows.map { ($0[1].display, $0[2]) })
        if case .marked = cells["SFT"]! {} else { Issue.record("SFT not marked: \(cells["SFT"]!.display)") }
        if case .number = cells["DPO"]! {} else { Issue.record("the base row is marked") }
        #expect(table.caption?.contains("† differs from DPO") == true)
        #expect(table.render(.latex).contains("$^\\dagger$") && table.render(.csv).contains("†") == false)
    }

    @Test func loggedScalarsOverSteps() throws {
        let scratch = Scratch()
        let store = try RunStore(path: scratch.path("t.sqlite"))
        let logger = try store.startRun(RunMetadata(name: "train"))
        for step in [300, 100, 200] { try logger.logMetric("train/loss", 1 / Double(step), step: step) }
        try logger.logMetric("train/loss", 0.5, step: 200)   // a repeated step: the later value counts
        try logger.finish()
        var request = FigureRequest(kind: .curve, runs: ["train"], out: scratch.path("loss.png"))
        request.logged = "train/loss"
        let result = try RunReader(store).figure(request)
        let rows = try String(contentsOfFile: result.dataPath, encoding: .utf8).split(separator: "\n").dropFirst()
            .map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        #expect(rows.map { $0[2] } == ["100", "200", "300"] && rows.map { Double($0[3])! } == [0.01, 0.5, 1.0 / 300])
        request.logged = "nope"
        #expect(throws: StoreError.self) { try RunReader(store).figure(request) }
    }
}
