import Foundation
import Testing
import TrackAnalysis
import TrackCalibration
import TrackStore

@Suite struct AnalyzeRunTests {
    /// The pipelined loader (scan on one thread, analysis on another, labels on a
    /// second connection) gives exactly what loading then analysing gives,
    /// over several chunks, with scores on some questions only.
    @Test func pipelinedAnalysisEqualsLoadThenAnalyze() throws {
        let directory = ServiceTests.Scratch()
        let store = try RunStore(path: directory.path("t.sqlite"))
        var random = SeededRandom(seed: 9)
        for (name, scoredEvery) in [("all-scored", 1), ("some-scored", 3)] {
            let logger = try store.startRun(RunMetadata(name: name, dataset: name))
            logger.maxBufferedQuestions = .max
            for i in 0..<20_000 {
                let logits = (0..<4).map { _ in random.nextGaussian() }
                let values: OptionValues = i % scoredEvery == 0 ? .scores(logits) : .probabilities(Probabilities.softmax(logits))
                try logger.append(Prediction(questionID: "q\(i)", label: random.nextInt(below: 4), values: values))
            }
            try logger.finish()
            for bins in [10, 15] {
                let pipelined = try RunReader(store).analyzer(named: name, BinSettings(bins: bins)).metrics()
                let direct = CalibrationAnalyzer(try store.loadRun(named: name).predictions, bins: bins).metrics()
                #expect(pipelined == direct, "\(name), \(bins) bins")
                #expect(pipelined.n == 20_000 && pipelined.nllFromScores == (scoredEvery == 1))
            }
        }
        #expect(throws: StoreError.self) { try RunReader(store).analyzer(named: "nope") }
    }
}

@Suite struct RunManagementTests {
    /// `track set`: metadata corrected in place, checked as ingest checks it; a derived run's
    /// fields are its parent's, so they are set there and carried over.
    @Test func setCorrectsMetadataAndKeepsDerivedRunsInStep() throws {
        let directory = ServiceTests.Scratch()
        let store = try ServiceTests.store(directory, runs: [("dpo", "DPO", ServiceTests.predictions(n: 60, seed: 7, sharpness: 2))])
        var request = CalibrationRequest(calibrator: TemperatureCalibrator(), fitRun: "dpo")
        request.applyTo = ["dpo"]
        request.split = .folds(3)
        _ = try Calibration.run(request, store: store)
        func fingerprint() throws -> String {
            try ["runs", "params", "tags"].map { "\(try store.query("SELECT * FROM \($0) ORDER BY 1, 2").rows)" }.joined(separator: "\n")
        }
        let before = try fingerprint()
        var onDerived = RunMetadataChanges()
        onDerived.split = "validation"
        #expect(throws: StoreError.self) { try store.setRunMetadata("dpo+TS", onDerived) }
        var empty = RunMetadataChanges()
        empty.model = " "
        #expect(throws: ValidationError.self) { try store.setRunMetadata("dpo", empty) }
        var negative = RunMetadataChanges()
        negative.epoch = -1
        #expect(throws: ValidationError.self) { try store.setRunMetadata("dpo", negative) }
        #expect(throws: StoreError.self) { try store.setRunMetadata("nope", onDerived) }
        #expect(try fingerprint() == before)   // refused: nothing changed
        var changes = RunMetadataChanges()
        changes.model = "Llama-3.1-8B"
        changes.method = "DPO-beta0.1"
        changes.split = "validation"
        changes.epoch = 2
        changes.step = 1200
        #expect(try store.setRunMetadata("dpo", changes) == ["dpo", "dpo+TS"])
        let parent = try #require(try store.runMetadata(named: "dpo")), child = try #require(try store.runMetadata(named: "dpo+TS"))
        #expect(parent.model == "Llama-3.1-8B" && parent.method == "DPO-beta0.1" && parent.split == "validation" && parent.epoch == 2 && parent.step == 1200)
        #expect(child.model == "Llama-3.1-8B" && child.method == "TS" && child.split == "validation" && child.epoch == 2 && child.step == 1200)
        #expect(child.params["ts.parent_method"] == "DPO-beta0.1")
        // The rows are untouched.
        #expect(try store.runSummaries().map(\.n) == [60, 60])
    }

    @Test func removeRenameAndTagRuns() throws {
        let directory = ServiceTests.Scratch()
        let store = try ServiceTests.store(directory, runs: [("dpo", "DPO", ServiceTests.predictions(n: 50, seed: 31, sharpness: 2)),
                                                             ("sft", "SFT", ServiceTests.predictions(n: 50, seed: 31))])
        var request = CalibrationRequest(calibrator: TemperatureCalibrator(), fitRun: "dpo")
        request.applyTo = ["dpo"]
        request.split = .folds(5)
        _ = try Calibration.run(request, store: store)
        // A run with a derived child is refused whole, nothing deleted; --recursive takes both.
        let before = try store.runSummaries().map(\.name)
        do {
            _ = try store.deleteRuns(named: ["sft", "dpo"], recursive: false)
            Issue.record("deleted a parent")
        } catch let error as StoreError {
            #expect(error.kind == .conflict && error.remedy == .recursive && error.message.contains("dpo+TS"))
        }
        #expect(try store.runSummaries().map(\.name) == before)
        #expect(try store.deleteRuns(named: ["dpo"], recursive: true).sorted() == ["dpo", "dpo+TS"])
        #expect(try store.runSummaries().map(\.name) == ["sft"])
        #expect(try store.query("SELECT count(*) FROM option_scores o JOIN runs r USING (run_id)").rows[0][0] == .integer(200))
        #expect(try store.query("SELECT count(*) FROM option_scores").rows[0][0] == .integer(200))   // nothing orphaned
        // Rename: the new name must be free; summaries and views follow the run.
        try store.renameRun("sft", to: "sft-final")
        #expect(throws: StoreError.self) { try store.renameRun("nope", to: "x") }
        // A name the store lacks suggests the closest: a typo, another case, the name without its prefix.
        do {
            try store.renameRun("sft-fnial", to: "x")
            Issue.record("renamed a run that does not exist")
        } catch let error as StoreError {
            #expect(error.kind == .notFound && error.message.hasSuffix("did you mean 'sft-final'?"))
        }
        #expect(try store.similarRunNames("SFT-FINAL") == ["sft-final"])
        #expect(try store.similarRunNames("final") == ["sft-final"])
        #expect(try store.similarRunNames("something else entirely").isEmpty)
        #expect(try store.query("SELECT run, n FROM run_calibration").rows.first == [.text("sft-final"), .integer(50)])
        // Tags: set, replace, remove.
        try store.tagRun("sft-final", set: ["seed": "1", "paper": "yes"], remove: [])
        try store.tagRun("sft-final", set: ["seed": "2"], remove: ["paper"])
        #expect(try store.keyValues("tags", runID: store.requireRun("sft-final")).map { "\($0)=\($1)" } == ["seed=2"])
    }
}

@Suite struct RunQueryTests {
    @Test func whereExpressionsSortAndLimit() throws {
        let directory = ServiceTests.Scratch()
        let store = try ServiceTests.store(directory, runs: [("dpo", "DPO", ServiceTests.predictions(n: 80, seed: 41, sharpness: 3)),
                                                             ("sft", "SFT", ServiceTests.predictions(n: 80, seed: 41)),
                                                             ("cft", "CFT", ServiceTests.predictions(n: 80, seed: 41, sharpness: 1.2))])
        try store.tagRun("sft", set: ["paper": "yes"], remove: [])
        func names(_ text: String, sort: String? = nil, descending: Bool = false, limit: Int? = nil) throws -> [String] {
            var filter = RunFilter()
            filter.query = try RunQuery(text)
            filter.sort = sort
            filter.descending = descending
            filter.limit = limit
            return try store.runSummaries(filter).map(\.name)
        }
        let ece = Dictionary(uniqueKeysWithValues: try ["dpo", "sft", "cft"].map {
            ($0, CalibrationAnalyzer(try store.loadRun(named: $0).predictions).metrics().confECE!)
        })
        #expect(try names("method = 'DPO'") == ["dpo"])
        #expect(try names("params.lr = 5e-7") == ["dpo"])                      // stored as text "5e-7", compared as a number
        #expect(try names("params.lr = 0.0000005 or tags.paper = 'yes'") == ["dpo", "sft"])
        #expect(try names("not (method in ('DPO', 'SFT'))") == ["cft"])
        #expect(try names("tags.paper is null") == ["dpo", "cft"])
        #expect(try names("conf_ece < \(ece["dpo"]!) and n >= 80") == ["sft", "cft"].filter { ece[$0]! < ece["dpo"]! })
        #expect(try names("run like '%ft'") == ["sft", "cft"])
        #expect(try names("n > 0", sort: "conf_ece", descending: true) == ece.keys.sorted { ece[$0]! > ece[$1]! })
        #expect(try names("n > 0", sort: "conf_ece", limit: 1) == [ece.keys.min { ece[$0]! < ece[$1]! }!])
        // Errors say what was expected and where.
        for (text, position) in [("method = ", 10), ("method == 'x'", 9), ("colour = 'red'", 1), ("method = 'x", 10), ("(n > 1", 7)] {
            do {
                _ = try RunQuery(text)
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.position == position, "\(text): \(error)")
            }
        }
    }
}

@Suite struct ShortLabelTests {
    @Test func wordsEveryNameSharesAreDropped() {
        #expect(shortLabels(["Llama/DPO/in", "Llama/SFT/in"]) == ["DPO", "SFT"])
        #expect(distinctLabels(["Llama/DPO/in", "Llama/SFT/in"]).shared == "Llama/…/in")
        #expect(shortLabels(["Llama/DPO", "Llamb/DPO"]) == ["Llama", "Llamb"])
        let demo = ["Llama-3.1-8B-Tulu-sim/DPO/in-domain", "Llama-3.1-8B-Tulu-sim/CFT/e3/in-domain"]
        #expect(distinctLabels(demo).labels == ["DPO", "CFT/e3"] && distinctLabels(demo).shared == "Llama-3.1-8B-Tulu-sim/…/in-domain")
        #expect(distinctLabels(["Llama-3.1-8B/DPO", "Llama-3.1-70B/DPO"]) == (["8B", "70B"], "Llama-3.1-…/DPO"))
        // Every label keeps a word: a name that is the others' start keeps its last one.
        #expect(shortLabels(["llama/DPO", "llama/DPO+TS"]) == ["DPO", "DPO+TS"])
        #expect(shortLabels(["same", "same"]) == ["same", "same"])
        #expect(shortLabels(["a-b", "a_b"]) == ["a-b", "a_b"])   // "b" and "b" would not tell them apart
        #expect(shortLabels(["a/b/c", "a/b/d", "a/x"]) == ["b/c", "b/d", "x"])
        #expect(shortLabels(["only"]) == ["only"])
        let long = String(repeating: "x", count: 200_000)
        #expect(shortLabels([long + "/a", long + "/b"]) == ["a", "b"])
        #expect(shortLabels(["y" + long, "z" + long]) == ["y" + long, "z" + long])
    }
}
