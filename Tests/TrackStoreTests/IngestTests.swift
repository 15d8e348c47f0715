import Foundation
import Testing
import TrackCalibration
@testable import TrackStore

@Suite struct IngestTests {
    func ingest(_ store: RunStore, _ path: String, _ configure: (inout IngestOptions) -> Void = { _ in }) throws -> IngestReport {
        var options = IngestOptions()
        configure(&options)
        return try Ingestor(store: store).ingest(path, options: options)
    }

    // MARK: - Formats

    @Test func csvFixtureGivesTheCheckedAccuracyAndConfidence() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        let report = try ingest(store, Fixtures.path("synthetic-seed0-n1000.csv"))
        #expect(report.runs == [.init(name: "synthetic-seed0-n1000", questions: 1000)])
        let run = try #require(try store.summary("synthetic-seed0-n1000"))
        #expect(run.n == 1000)
        #expect(abs(run.accuracy! - 0.614) < 1e-9)
        #expect(abs(run.meanConfidence! - 0.780578) < 5e-7)
        #expect(try store.count("option_scores") == 4000)
        // Probabilities are stored bit for bit as given.
        let first = try store.database.scalarDouble("SELECT prob FROM option_scores o JOIN questions q USING (question_id) WHERE q.external_id = '0' AND option = 0")
        #expect(first == 0.14115395762532459)
    }

    @Test func binEdgeFixture() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        _ = try ingest(store, Fixtures.path("bin-edges-n160.csv"))
        let run = try #require(try store.summary("bin-edges-n160"))
        #expect(run.n == 160)
        #expect(abs(run.accuracy! - 0.625) < 1e-12)
        #expect(abs(run.meanConfidence! - 0.65) < 1e-12)
    }

    @Test func jsonlWithProbabilitiesLogitsBatchesAndMetrics() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        let path = directory.write("run.jsonl", """
            {"id": "q1", "label": 2, "probs": [0.1, 0.2, 0.6, 0.1], "subject": "anatomy"}
            {"id": 2, "label": "B", "logits": [0.0, 2.0, 0.0, 0.0]}
            {"batch": [{"id": "q3", "label": 0, "logprobs": [-0.1, -3, -4, -5]}, {"id": "q4", "label": 3, "scores": [1, 1, 1, 1]}]}
            {"ids": ["q5", "q6"], "labels": [1, 0], "probs": [[0.3, 0.7], [0.5, 0.5]]}
            {"metric": "loss", "value": 0.25, "step": 7}

            """)
        let report = try ingest(store, path) { $0.metadata.model = "m"; $0.metadata.method = "DPO" }
        #expect(report.runs.first?.questions == 6)
        let run = try #require(try store.summary("run"))
        #expect(run.model == "m" && run.method == "DPO")
        // q1 right (0.6), 2 right, q3 right, q4 tie -> option 0 (wrong, label 3), q5 right, q6 tie -> 0 (right).
        #expect(abs(run.accuracy! - 5.0 / 6.0) < 1e-12)
        let softmax = exp(2.0) / (exp(2.0) + 3)
        let stored = try store.database.scalarDouble("SELECT conf FROM predictions WHERE external_id = '2'")
        #expect(abs(stored! - softmax) < 1e-15)
        #expect(try store.database.scalarDouble("SELECT score FROM option_scores o JOIN questions q USING (question_id) WHERE external_id = 'q3' AND option = 1") == -3)
        #expect(try store.database.scalarText("SELECT subject FROM questions WHERE external_id = 'q1'") == "anatomy")
        #expect(try store.database.scalarDouble("SELECT value FROM metrics WHERE key = 'loss' AND step = 7") == 0.25)
        #expect(try store.database.scalarText("SELECT pred FROM predictions WHERE external_id = 'q4'") == "0")
    }

    @Test func npyWithLabels() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        try NPYArray.write(rows: 3, columns: 2, values: [0.9, 0.1, 0.2, 0.8, 0.6, 0.4], to: directory.path("epoch3.npy"))
        try NPYArray.write(labels: [0, 1, 1], to: directory.path("labels.npy"))
        let report = try ingest(store, directory.path("epoch3.npy")) {
            $0.labelsPath = directory.path("labels.npy"); $0.metadata.epoch = 3
        }
        #expect(report.runs.first?.questions == 3)
        let run = try #require(try store.summary("epoch3"))
        #expect(abs(run.accuracy! - 2.0 / 3.0) < 1e-12)
        #expect(run.epoch == 3 && run.extraction == "probability")
        // Labels as text work too; a count mismatch is refused.
        let text = directory.write("labels.txt", "0\n1\n")
        #expect(throws: InputError.self) {
            try ingest(store, directory.path("epoch3.npy")) { $0.labelsPath = text; $0.force = true }
        }
    }

    @Test func lmEvalHarness0413Samples() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        let path = Fixtures.path("lm-eval-0.4.13/Qwen__Qwen3-8B/samples_casino_belief_2025-06-01T12-00-00.123456.jsonl")
        #expect(try Ingestor.detectFormat(path) == .lmEval)
        let report = try ingest(store, path)
        #expect(report.runs == [.init(name: "Qwen/Qwen3-8B/casino_belief", questions: 2)])
        let run = try #require(try store.summary("Qwen/Qwen3-8B/casino_belief"))
        #expect(run.model == "Qwen/Qwen3-8B" && run.dataset == "casino_belief" && run.extraction == "continuation-sum")
        // Both docs answer A (score -10.0); gold 3 then 0: accuracy 0.5, as the harness's acc says.
        #expect(run.accuracy == 0.5)
        let params = Dictionary(uniqueKeysWithValues: try store.keyValues("params", runID: run.id))
        #expect(params["lm_eval.acc"] == "0.5" && params["lm_eval.version"] == "0.4.13" && params["lm_eval.n_shot"] == "0")
        let scores = try store.query("SELECT score FROM option_scores WHERE run_id = \(run.id) ORDER BY question_id, option")
        #expect(scores.rows.prefix(4).map { $0[0] } == [.real(-10.0), .real(-17.625), .real(-21.0), .real(-17.75)])
        let expected = Probabilities.softmaxForTest([-10.0, -17.625, -21.0, -17.75])
        #expect(abs(run.meanConfidence! - expected.max()!) < 1e-15)
    }

    @Test func lmEvalHarness042JSONArray() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        let path = Fixtures.path("lm-eval-0.4.2/pretrained__Qwen__Qwen3-8B_casino_belief.jsonl")
        #expect(try Ingestor.detectFormat(path) == .lmEval)
        let report = try ingest(store, path)
        #expect(report.runs == [.init(name: "Qwen/Qwen3-8B/casino_belief", questions: 2)])
        #expect(try store.summary("Qwen/Qwen3-8B/casino_belief")?.accuracy == 0.5)
    }

    @Test func lmEvalTargetsResolveAsTheHarnessDoes() throws {
        let choices = ["Paris", "Rome", "Madrid"]
        func resolve(_ target: JSONValue, _ choices: [String]?, doc: JSONValue? = nil, docToTarget: String? = nil) throws -> Int {
            try LMEvalReader.resolveTarget(target, doc: doc, docToTarget: docToTarget, choices: choices, optionCount: 3, docID: "0")
        }
        #expect(try resolve(.string("2"), choices) == 2)           // a template's digits: an index
        #expect(try resolve(.number(1), choices) == 1)
        #expect(try resolve(.string("Rome"), choices) == 1)        // text: the scored choice equal to it
        #expect(try resolve(.string("C"), ["A", "B", "C"]) == 2)   // a letter is text among letter choices
        #expect(throws: ValidationError.self) { try resolve(.string("C"), nil) }
        #expect(throws: ValidationError.self) { try resolve(.string("Berlin"), choices) }
        #expect(throws: ValidationError.self) { try resolve(.string("7"), choices) }
        #expect(throws: ValidationError.self) { try resolve(.string("[0, 2]"), choices) }   // several gold answers
        #expect(try resolve(.string("[1]"), choices) == 1)
        // doc_to_target naming a field: its value as the doc holds it ("2" stays text here).
        let doc = try JSONParser.parse(#"{"answer": "2", "index": 2}"#)
        #expect(try resolve(.string("2"), ["0", "1", "2"], doc: doc, docToTarget: "answer") == 2)
        #expect(try resolve(.string("2"), ["x", "2", "y"], doc: doc, docToTarget: "answer") == 1)
        #expect(try resolve(.string("2"), choices, doc: doc, docToTarget: "index") == 2)
        #expect(LMEvalReader.taskName(fileName: "samples_mmlu_anatomy_2024-05-10T12-34-56.789012.jsonl", knownTasks: []) == "mmlu_anatomy")
        #expect(LMEvalReader.taskName(fileName: "pretrained__x_arc_easy.jsonl", knownTasks: ["easy", "arc_easy"]) == "arc_easy")
    }

    // MARK: - Duplicates

    @Test func reingestingTheSameFileChangesNothingUnlessForced() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        let path = Fixtures.path("bin-edges-n160.csv")
        _ = try ingest(store, path)
        let before = try store.contentsFingerprint()
        let again = try ingest(store, path)
        #expect(again.alreadyIngestedAs == ["bin-edges-n160"])
        #expect(try store.contentsFingerprint() == before)
        // Under another run name: still recognised by SHA-256.
        let renamed = try ingest(store, path) { $0.metadata.name = "other" }
        #expect(renamed.alreadyIngestedAs == ["bin-edges-n160"])
        #expect(try store.contentsFingerprint() == before)
        let forced = try ingest(store, path) { $0.force = true }
        #expect(forced.runs.first?.questions == 160)
        #expect(try store.count("runs") == 1)
        #expect(try store.count("option_scores") == 640)
    }

    // MARK: - Bad input: a clear error naming file and line, and the database unchanged

    static let badJSONL: [(String, String, String)] = [
        ("malformed", #"{"id": "a", "label": 0, "probs": [0.5, 0.5]}"# + "\n" + #"{"id": "b", "label": 0 "probs": [0.5, 0.5]}"#, ":2: malformed JSON"),
        ("missing-label", #"{"id": "a", "probs": [0.5, 0.5]}"#, ":1: missing field 'label'"),
        ("missing-values", #"{"id": "a", "label": 1}"#, ":1: missing option values"),
        ("nan", #"{"id": "a", "label": 0, "probs": [NaN, 0.5]}"#, ":1: probability of option 0 is NaN"),
        ("infinite-logit", #"{"id": "a", "label": 0, "logits": [1, -Infinity]}"#, ":1: score of option 1 is infinite"),
        ("negative", #"{"id": "a", "label": 0, "probs": [1.2, -0.2]}"#, ":1: probability of option 0 is greater than 1"),
        ("negative2", #"{"id": "a", "label": 0, "probs": [0.2, -0.2, 1.0]}"#, ":1: probability of option 1 is negative"),
        ("sum", #"{"id": "a", "label": 0, "probs": [0.5, 0.6]}"#, ":1: probabilities sum to 1.1"),
        ("label-range", #"{"id": "a", "label": 4, "probs": [0.25, 0.25, 0.25, 0.25]}"#, ":1: label 4 is out of range"),
        ("one-option", #"{"id": "a", "label": 0, "probs": [1.0]}"#, ":1: a question needs at least 2 options, found 1"),
        ("truncated", #"{"id": "a", "label": 0, "probs": [0.5, 0.5]}"# + "\n" + #"{"id": "b", "label": 0, "probs": [0.5, 0"#, ":2: malformed JSON"),
        ("duplicate", #"{"id": "a", "label": 0, "probs": [0.5, 0.5]}"# + "\n" + #"{"id": "a", "label": 0, "probs": [0.5, 0.5]}"#, ":2: question 'a' appears twice"),
        ("empty", "", "no questions found"),
    ]

    @Test(arguments: IngestTests.badJSONL)
    func badJSONLIsRefusedAndNothingChanges(_ name: String, _ content: String, _ expected: String) throws {
        try expectRefusal(file: "\(name).jsonl", content, expected, prefixedByPath: true)
    }

    static let badCSV: [(String, String, String)] = [
        ("no-label-column", "p0,p1\n0.5,0.5\n", ":1: the header has no 'label' column"),
        ("not-a-number", "p0,p1,label\n0.5,0.5,0\n0.5,abc,1\n", ":3: column p1: 'abc' is not a number"),
        ("wrong-option-count", "id,p0,p1,p2,label\nq1,0.2,0.3,0.5,0\nq2,0.5,0.5,1\n", ":3: expected 5 fields, found 4"),
        ("truncated", "p0,p1,label\n0.5,0.5,0\n0.5,0.", ":3: expected 3 fields, found 2 (the file ends mid-line: truncated?)"),
        ("nan", "p0,p1,label\nnan,0.5,0\n", ":2: probability of option 0 is NaN"),
        ("label-range", "p0,p1,label\n0.5,0.5,2\n", ":2: label 2 is out of range"),
        ("empty", "", "empty file"),
        ("header-only", "p0,p1,label\n", "no questions found"),
    ]

    @Test(arguments: IngestTests.badCSV)
    func badCSVIsRefusedAndNothingChanges(_ name: String, _ content: String, _ expected: String) throws {
        try expectRefusal(file: "\(name).csv", content, expected, prefixedByPath: false)
    }

    /// Ingesting `content` is refused with `expected` in the message, and the store is unchanged.
    func expectRefusal(file: String, _ content: String, _ expected: String, prefixedByPath: Bool) throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        _ = try ingest(store, Fixtures.path("bin-edges-n160.csv"))
        let before = try store.contentsFingerprint()
        let path = directory.write(file, content)
        do {
            _ = try ingest(store, path)
            Issue.record("\(file): expected a refusal")
        } catch {
            let message = "\(error)"
            if prefixedByPath { #expect(message.hasPrefix(path), "\(message)") }
            #expect(message.contains(expected), "\(message)")
        }
        #expect(try store.contentsFingerprint() == before)
    }

    /// The same question id with another option count than the stored question is refused.
    @Test func optionCountDifferentFromTheStoredQuestion() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        _ = try ingest(store, directory.write("a.csv", "id,p0,p1,p2,p3,label\nq1,0.1,0.2,0.3,0.4,3\n")) { $0.metadata.dataset = "d" }
        let before = try store.contentsFingerprint()
        do {
            _ = try ingest(store, directory.write("b.csv", "id,p0,p1,p2,label\nq1,0.2,0.3,0.5,0\n")) { $0.metadata.dataset = "d" }
            Issue.record("expected a refusal")
        } catch {
            #expect("\(error)".contains("b.csv:2: question 'q1' of dataset 'd' has 4 options in the store but 3 here"), "\(error)")
        }
        #expect(try store.contentsFingerprint() == before)
    }

    @Test func skipInvalidSkipsReportsAndKeepsTheRest() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        let path = directory.write("mixed.csv", "p0,p1,label\n0.5,0.5,0\n0.5,0.6,1\n0.9,0.1,0\nx,0.1,0\n")
        let report = try ingest(store, path) { $0.skipInvalid = true }
        #expect(report.runs.first?.questions == 2)
        #expect(report.skipped.map(\.line) == [3, 5])
        #expect(try store.count("ingest_rejects") == 2)
        // --renormalize accepts the row that only failed its sum.
        let renormalized = try ingest(store, path) { $0.skipInvalid = true; $0.force = true; $0.validation.renormalize = true }
        #expect(renormalized.runs.first?.questions == 3)
    }

    @Test func aFailedFileLeavesNoStaleQuestionIDsForTheNextFile() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        let bad = directory.write("bad.csv", "id,p0,p1,label\nnew1,0.5,0.5,0\nnew2,0.5,0.7,0\n")
        #expect(throws: InputError.self) { try ingest(store, bad) { $0.metadata.dataset = "d" } }
        let good = directory.write("good.csv", "id,p0,p1,label\nnew1,0.5,0.5,0\n")
        let report = try ingest(store, good) { $0.metadata.dataset = "d" }
        #expect(report.runs.first?.questions == 1)
        #expect(try store.count("questions") == 1)
    }
}

extension Probabilities {
    static func softmaxForTest(_ s: [Double]) -> [Double] {
        let m = s.max()!
        let e = s.map { exp($0 - m) }
        let total = e.reduce(0, +)
        return e.map { $0 / total }
    }
}

@Suite struct LMEvalFilterTests {
    /// Several filters give several lines per doc_id and one run per (task, filter).
    @Test func oneRunPerFilter() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        let samples = (0..<3).flatMap { doc in
            ["none", "strict-match"].map { filter in
                #"{"doc_id": \#(doc), "doc": {"choices": ["red", "green"]}, "target": "green", "filter": "\#(filter)", "#
                + #""filtered_resps": [["\#(filter == "none" ? -1.0 : -2.0)", "False"], ["-1.5", "False"]], "resps": []}"#
            }
        }.joined(separator: "\n")
        let path = directory.write("samples_colors_2025-01-02T03-04-05.678901.jsonl", samples + "\n")
        var options = IngestOptions()
        options.metadata.model = "tiny"
        let report = try Ingestor(store: store).ingest(path, options: options)
        #expect(report.runs == [.init(name: "tiny/colors", questions: 3), .init(name: "tiny/colors/strict-match", questions: 3)])
        // Gold "green" resolves through doc.choices to 1: filter none predicts red (-1.0), strict-match green.
        #expect(try store.summary("tiny/colors")?.accuracy == 0)
        #expect(try store.summary("tiny/colors/strict-match")?.accuracy == 1)
        #expect(try store.count("questions") == 3)
    }
}

@Suite struct PredictionsViewTests {
    /// The view's pred and conf are exactly Swift's top-label rule on the stored probabilities.
    @Test func viewMatchesSwiftTopLabel() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        _ = try Ingestor(store: store).ingest(Fixtures.path("synthetic-seed0-n1000.csv"), options: IngestOptions())
        _ = try Ingestor(store: store).ingest(directory.write("ties.csv", "p0,p1,p2,label\n0.4,0.4,0.2,1\n0.2,0.4,0.4,2\n0.5,0.5,0,0\n"),
                                              options: IngestOptions())
        var probabilities: [Int64: [Double]] = [:]
        var order: [Int64] = []
        try store.database.forEachRow("SELECT run_id * 1000000 + question_id, prob FROM option_scores ORDER BY run_id, question_id, option") { row in
            let key = row.int64(0)
            if probabilities[key] == nil { order.append(key) }
            probabilities[key, default: []].append(row.double(1))
        }
        var checked = 0
        try store.database.forEachRow("SELECT run_id * 1000000 + question_id, pred, conf FROM predictions") { row in
            let top = TopLabel(probabilities[row.int64(0)]!)
            #expect(row.int(1) == top.prediction)
            #expect(row.double(2) == top.confidence)
            checked += 1
        }
        #expect(checked == 1003)
        #expect(try store.summary("ties")?.accuracy.map { abs($0 - 1.0 / 3.0) < 1e-12 } == true)
    }
}

@Suite struct ExtractionTests {
    @Test func tokenLogProbsGiveSumMinAndMeanRuns() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        let path = directory.write("tok.jsonl", """
            {"id": "q1", "label": 1, "token_logprobs": [[-0.5, -2.5], [-1.0], [-0.2, -0.2, -0.2]]}
            {"id": "q2", "label": 0, "token_logprobs": [[-0.1], [-3.0, -0.1], [-4.0]]}

            """)
        var options = IngestOptions()
        options.metadata.model = "m"
        let report = try Ingestor(store: store).ingest(path, options: options)
        #expect(report.runs.map(\.name) == ["tok/continuation-sum", "tok/continuation-min", "tok/continuation-mean"])
        func scores(_ run: String) throws -> [Double] {
            try store.query("SELECT score FROM option_scores o JOIN runs r USING (run_id) WHERE r.name = '\(run)' ORDER BY question_id, option")
                .rows.map { if case .real(let v) = $0[0] { return v } else { return .nan } }
        }
        #expect(try scores("tok/continuation-sum") == [-3.0, -1.0, -0.6000000000000001, -0.1, -3.1, -4.0])
        #expect(try scores("tok/continuation-min") == [-2.5, -1.0, -0.2, -0.1, -3.0, -4.0])
        #expect(try scores("tok/continuation-mean") == [-1.5, -1.0, -0.6000000000000001 / 3, -0.1, -1.55, -4.0])
        #expect(try store.runMetadata(named: "tok/continuation-min")?.extraction == "continuation-min")
        #expect(try store.runID(named: "tok") == nil)   // the empty base run is not kept
        // --extraction picks one method.
        let one = directory.write("one.jsonl", #"{"id": "q3", "label": 0, "token_logprobs": [[-0.1], [-2.0]]}"# + "\n")
        options.metadata.extraction = "continuation-mean"
        #expect(try Ingestor(store: store).ingest(one, options: options).runs.map(\.name) == ["one/continuation-mean"])
        // A positive log-prob is refused with file and line.
        let bad = directory.write("bad.jsonl", #"{"id": "q4", "label": 0, "token_logprobs": [[0.5], [-2.0]]}"# + "\n")
        #expect(throws: InputError.self) { try Ingestor(store: store).ingest(bad, options: IngestOptions()) }
    }
}

/// Issue 27: the question index keeps a bounded cache and a fixed-size Bloom filter, so that an
/// ingest's memory does not grow with its file; answers stay exact when the cache is full.
@Suite struct BoundedQuestionIndexTests {
    /// Question "q12" has label 12 % 3 unless `label` says otherwise.
    static func csv(_ ids: [String], label: (String) -> Int? = { _ in nil }) -> String {
        "id,p0,p1,p2,label\n" + ids.map { id in "\(id),0.2,0.3,0.5,\(label(id) ?? Int(id.dropFirst())! % 3)" }.joined(separator: "\n") + "\n"
    }

    @Test func questionsBeyondTheCacheResolveExactly() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        store.questions.cacheLimit = 5
        let ingestor = Ingestor(store: store)
        var options = IngestOptions()
        options.metadata.dataset = "d"
        let first = directory.path("first.csv")
        try Self.csv((0..<50).map { "q\($0)" }).write(toFile: first, atomically: true, encoding: .utf8)
        #expect(try ingestor.ingest(first, options: options).runs == [.init(name: "first", questions: 50)])
        // A second run: the same 50 questions and 10 new ones share the stored question rows.
        let second = directory.path("second.csv")
        try Self.csv((0..<60).map { "q\($0)" }).write(toFile: second, atomically: true, encoding: .utf8)
        #expect(try ingestor.ingest(second, options: options).runs == [.init(name: "second", questions: 60)])
        #expect(try store.count("questions") == 60)
        let shared = try store.database.scalarInt("""
            SELECT count(DISTINCT a.question_id) FROM _track_top_labels a JOIN _track_top_labels b USING (question_id)
            WHERE a.run_id = (SELECT run_id FROM runs WHERE name = 'first') AND b.run_id = (SELECT run_id FROM runs WHERE name = 'second')
            """)
        #expect(shared == 50)
        // A repeated question far past the cache is still refused, with its line; nothing is kept.
        let twice = directory.path("twice.csv")
        try Self.csv((0..<40).map { "n\($0)" } + ["n3"]).write(toFile: twice, atomically: true, encoding: .utf8)
        #expect(throws: InputError.self) { try ingestor.ingest(twice, options: options) }
        do { _ = try ingestor.ingest(twice, options: options) } catch let error as InputError {
            #expect(error.line == 42 && error.reason.contains("'n3' appears twice"), "\(error)")
        }
        #expect(try store.count("questions") == 60)
        // A stored question the cache no longer holds keeps its label: a conflict is refused.
        let conflict = directory.path("conflict.csv")
        try Self.csv((0..<30).map { "q\($0)" }, label: { $0 == "q25" ? 2 : nil }).write(toFile: conflict, atomically: true, encoding: .utf8)
        do {
            _ = try ingestor.ingest(conflict, options: options)
            Issue.record("a label conflict was accepted")
        } catch let error as InputError {
            #expect(error.line == 27 && error.reason.contains("question 'q25' of dataset 'd' has label 1 in the store but 2 here"), "\(error)")
        }
        // After those rollbacks the index answers as before: a third run of new and old questions.
        let third = directory.path("third.csv")
        try Self.csv((55..<70).map { "q\($0)" }).write(toFile: third, atomically: true, encoding: .utf8)
        #expect(try ingestor.ingest(third, options: options).runs == [.init(name: "third", questions: 15)])
        #expect(try store.count("questions") == 70)
        #expect(try store.database.scalarInt("SELECT count(*) FROM (SELECT dataset, external_id FROM questions GROUP BY 1, 2 HAVING count(*) > 1)") == 0)
    }
}
