import Foundation
import Testing
import TrackCalibration
@testable import TrackStore

/// Output of the real lm-evaluation-harness (0.4.13 and 0.4.2, written by
/// Tests/lm-eval/make.sh with a tiny random GPT-2), read back as the harness scored it.
@Suite struct LMEvalHarnessTests {
    static let root = Fixtures.path("lm-eval-harness")
    static let versions = ["lm-eval-0.4.13", "lm-eval-0.4.2"]

    func ingest(_ store: RunStore, _ path: String, _ configure: (inout IngestOptions) -> Void = { _ in }) throws -> IngestReport {
        var options = IngestOptions()
        configure(&options)
        return try Ingestor(store: store).ingest(path, options: options)
    }

    /// The samples files of one version's folder (as `track ingest DIR --split-groups` finds
    /// them), but those of the task-group evaluations (`groups*`, by a checkpoint path).
    static func samplesFiles(_ version: String) -> [String] {
        Ingestor.inputs(["\(root)/\(version)"], splitGroups: true).compactMap { if case .file(let path) = $0 { path } else { nil } }
            .filter { !$0.contains("/groups") }
    }

    /// The samples of a file: JSON lines (0.4.3+) or one JSON array (0.4.2).
    static func samples(_ path: String) throws -> [JSONValue] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        if text.drop(while: \.isWhitespace).first == "[" { return try JSONParser.parse(text).arrayValue ?? [] }
        return try text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
    }

    /// Gold as the fixture's data define it, independently of how track resolves targets.
    static func truth(task: String, doc: JSONValue) -> Int? {
        switch task {
        case "synth_int", "synth_filters", "synth_mi", "synth_sub_a": return doc["answer"]?.integerValue
        case "synth_text", "synth_sub_b": return doc["answer"]?.integerValue
        case "synth_letter": return doc["answer"]?.stringValue.flatMap(RecordDecoder.letterIndex)
        case "synth_template": return doc["label"]?.integerValue
        case "synth_dict":
            let labels = doc["choices"]?["label"]?.arrayValue?.compactMap(\.stringValue) ?? []
            return doc["answerKey"]?.stringValue.flatMap { labels.firstIndex(of: $0) }
        default: return nil
        }
    }

    @Test(arguments: LMEvalHarnessTests.versions)
    func everyFixtureGivesTheHarnessGoldAccuracyAndMetadata(_ version: String) throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        let files = Self.samplesFiles(version)
        #expect(files.count >= 11, "\(files)")
        var checkedRuns = 0
        for path in files {
            let task = LMEvalReader.taskName(fileName: (path as NSString).lastPathComponent,
                                             knownTasks: ["synth_int", "synth_letter", "synth_text", "synth_template", "synth_dict",
                                                          "synth_filters", "synth_mi", "synth_multi", "synth_sub_a", "synth_sub_b"])
            if task == "synth_multi" {
                // Several gold answers: refused with a clear statement, nothing written.
                let before = try store.contentsFingerprint()
                do {
                    _ = try ingest(store, path)
                    Issue.record("multi-gold was accepted")
                } catch let error as InputError {
                    #expect(error.reason.contains("several gold answers") && error.reason.contains("not supported"), "\(error)")
                }
                #expect(try store.contentsFingerprint() == before)
                continue
            }
            let report = try ingest(store, path)
            let samples = try Self.samples(path)
            let evaluation = try LMEvalReader.evaluation(of: path)
            let results = try #require(evaluation.json, "\(path): no results file found")
            for run in report.runs {
                let filter = run.name.hasSuffix("/first") ? "first" : run.name.hasSuffix("/again") ? "again" : "none"
                // 0.4.2 names no filter: each filter's samples follow the previous filter's.
                let rows = samples.enumerated().filter { index, sample in
                    let name = sample["filter"]?.stringValue ?? (task == "synth_filters" ? (index < samples.count / 2 ? "first" : "again") : "none")
                    return name == filter
                }.map(\.element)
                let summary = try #require(try store.summary(run.name))
                #expect(summary.n == rows.count, "\(run.name)")
                // Accuracy equals the harness's acc for this task and filter.
                let harnessAccuracy = try #require(results["results"]?[task]?["acc,\(filter)"]?.doubleValue)
                #expect(abs(summary.accuracy! - harnessAccuracy) < 1e-12, "\(run.name): \(summary.accuracy!) vs \(harnessAccuracy)")
                // Gold per row: the fixture data's answer; options: K, also for mutual information.
                let loaded = try store.loadRun(named: run.name, details: true)
                let byID = Dictionary(uniqueKeysWithValues: loaded.externalIDs.enumerated().map { ($1, $0) })
                for sample in rows {
                    let id = try #require(sample["doc_id"]?.identifierValue)
                    let i = try #require(byID[id])
                    if let gold = Self.truth(task: task, doc: sample["doc"]!) {
                        #expect(Int(loaded.predictions.labels[i]) == gold, "\(run.name) doc \(id)")
                    }
                    let arguments = try #require(LMEvalReader.arguments(sample["arguments"]))
                    let k = task == "synth_mi" ? arguments.count / 2 : arguments.count
                    #expect(loaded.predictions.optionCount(i) == k, "\(run.name) doc \(id)")
                }
                // Metadata, with consistent types across versions.
                let meta = try #require(try store.runMetadata(named: run.name))
                #expect(meta.model == "tiny-gpt2" && meta.split == "test" && meta.dataset == task)
                #expect(meta.params["lm_eval.model_args.pretrained"] == "tiny-gpt2" && meta.params["lm_eval.model_args.dtype"] == "float32")
                #expect(meta.params["lm_eval.model_args"] == "pretrained=tiny-gpt2,dtype=float32")
                #expect(meta.params["lm_eval.task_version"] == LMEvalReader.version(results["versions"]![task]!))
                #expect(meta.params["lm_eval.n_shot"] != nil && meta.params["lm_eval.results_file"]?.hasPrefix("/") == true)
                #expect(meta.params["lm_eval.acc"] == JSONValue.format(harnessAccuracy))
                let detail = try store.runDetail(runID: summary.id)
                #expect(detail.sourceFile?.hasPrefix("/") == true)
                if let date = evaluation.date { #expect(detail.startedAt == date, "\(run.name)") }
                // A subtask read on its own names its group as such, never as its own.
                if task.hasPrefix("synth_sub") {
                    #expect(meta.tags["lm_eval.subtask_of"] == "synth_group" && meta.tags["lm_eval.group"] == nil)
                    #expect(meta.params["lm_eval.subtask_of.acc"] == JSONValue.format(results["groups"]!["synth_group"]!["acc,none"]!.doubleValue!))
                }
                if task == "synth_mi" { #expect(meta.params["lm_eval.acc_mutual_info"] != nil) }
                checkedRuns += 1
            }
        }
        #expect(checkedRuns >= 12)
        // The letter task's trap: doc.choices holds letters in another order; gold follows the harness.
        #expect(try store.summary(Self.name(store, "synth_letter"))?.accuracy != nil)
    }

    static func name(_ store: RunStore, _ task: String) throws -> String {
        try store.runSummaries().first { $0.dataset == task }!.name
    }

    @Test func rerunsAreRunsAndForceReplacesOnlyItsOwn() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        let folder = "\(Self.root)/lm-eval-0.4.13/folder/tiny-gpt2"
        let int = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix("samples_synth_int_") }.sorted()
        #expect(int.count == 2)   // 0-shot and 2-shot, two evaluations in one folder
        let first = try ingest(store, "\(folder)/\(int[0])"), second = try ingest(store, "\(folder)/\(int[1])")
        #expect(first.runs.first?.name == "tiny-gpt2/synth_int")
        #expect(second.runs.first?.name == "tiny-gpt2/synth_int [2-shot]")
        // The file layout (--output_path eval.json) with --limit: found, and named by what differs from the
        // run holding the name (its limit; both are 0-shot, so never "[0-shot]").
        let limited = Self.samplesFiles("lm-eval-0.4.13").first { $0.contains("file-layout") }!
        let third = try ingest(store, limited)
        #expect(third.runs == [.init(name: "tiny-gpt2/synth_int [limit 10]", questions: 10)])
        #expect(try store.runMetadata(named: "tiny-gpt2/synth_int [limit 10]")?.params["lm_eval.limit"] == "10")
        // Again: nothing changes.
        let before = try store.contentsFingerprint()
        #expect(try ingest(store, "\(folder)/\(int[1])").alreadyIngestedAs == ["tiny-gpt2/synth_int [2-shot]"])
        #expect(try store.contentsFingerprint() == before)
        // --force replaces that output's run and no other.
        let forced = try ingest(store, "\(folder)/\(int[1])") { $0.force = true }
        #expect(forced.replaced == ["tiny-gpt2/synth_int [2-shot]"] && forced.runs.first?.name == "tiny-gpt2/synth_int [2-shot]")
        #expect(try store.runSummaries().map(\.name).sorted() == ["tiny-gpt2/synth_int", "tiny-gpt2/synth_int [2-shot]", "tiny-gpt2/synth_int [limit 10]"])
        // A byte-identical samples file of another evaluation (its own results file) is a new run.
        let copy = directory.path("other")
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        let stamp = LMEvalReader.timestamp(of: String(int[0].dropLast(6)))!
        try FileManager.default.copyItem(atPath: "\(folder)/\(int[0])", toPath: "\(copy)/\(int[0])")
        // Another evaluation's results file: other bytes (here one more line), same numbers.
        let results = try String(contentsOfFile: "\(folder)/results_\(stamp).json", encoding: .utf8)
        try (results + "\n").write(toFile: "\(copy)/results_\(stamp).json", atomically: true, encoding: .utf8)
        let other = try ingest(store, "\(copy)/\(int[0])")
        // Nothing the two evaluations record differs (n-shot, limit, version, date): a plain number.
        #expect(other.alreadyIngestedAs.isEmpty && other.runs.count == 1 && other.runs[0].name == "tiny-gpt2/synth_int #2", "\(other.runs)")
        // --force with a new --run name stores an output again as a second run, keeping the first.
        let twice = try ingest(store, "\(folder)/\(int[1])") { $0.force = true; $0.metadata.name = "second copy" }
        #expect(twice.replaced.isEmpty && twice.runs.map(\.name) == ["second copy"])
        #expect(try store.runID(named: "tiny-gpt2/synth_int [2-shot]") != nil)
    }

    @Test func foldersResultsFilesAndEmptyFolders() throws {
        let directory = TemporaryDirectory()
        let inputs = Ingestor.inputs(["\(Self.root)/lm-eval-0.4.13/folder", "\(Self.root)/lm-eval-0.4.13/file-layout", directory.url.path])
        let files = inputs.compactMap { if case .file(let path) = $0 { path } else { nil } }
        // synth_sub_a and synth_sub_b are the group synth_group: one input.
        #expect(files.count == 9 + 1 && files.allSatisfy { ($0 as NSString).lastPathComponent.hasPrefix("samples_") })
        let groups = inputs.compactMap { if case .taskGroup(let group) = $0 { group } else { nil } }
        #expect(groups.map(\.group) == ["synth_group"] && groups[0].files.map(\.task) == ["synth_sub_a", "synth_sub_b"])
        #expect(inputs.last == .emptyFolder(directory.url.path))
        let resultsFile = try FileManager.default.contentsOfDirectory(atPath: "\(Self.root)/lm-eval-0.4.13/file-layout")
            .first { $0.hasPrefix("eval_") }!
        let direct = Ingestor.inputs(["\(Self.root)/lm-eval-0.4.13/file-layout/\(resultsFile)"])
        #expect(direct == [.resultsFile("\(Self.root)/lm-eval-0.4.13/file-layout/\(resultsFile)")])
        // 0.4.2: the array files are found too, paired with the results file that lists their task.
        let old = Self.samplesFiles("lm-eval-0.4.2")
        #expect(old.count >= 11)
        for path in old {
            let evaluation = try LMEvalReader.evaluation(of: path)
            #expect(evaluation.json?["configs"]?[evaluation.task] != nil, "\(path)")
        }
    }

    @Test func aSampleTheHarnessScoredOtherwiseIsRefusedNamingItsDocID() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        let folder = "\(Self.root)/lm-eval-0.4.13/folder/tiny-gpt2"
        let name = try FileManager.default.contentsOfDirectory(atPath: folder).first { $0.hasPrefix("samples_synth_letter_") }!
        let stamp = LMEvalReader.timestamp(of: String(name.dropLast(6)))!
        let copy = directory.path("copy")
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(folder)/results_\(stamp).json", toPath: "\(copy)/results_\(stamp).json")
        // Flip the harness's acc of doc 3: the row no longer agrees with its scores.
        var lines = try String(contentsOfFile: "\(folder)/\(name)", encoding: .utf8).split(separator: "\n").map(String.init)
        let index = lines.firstIndex { $0.hasPrefix("{\"doc_id\": 3,") }!
        let flipped = lines[index].contains("\"acc\": 1.0") ? lines[index].replacingOccurrences(of: "\"acc\": 1.0", with: "\"acc\": 0.0")
            : lines[index].replacingOccurrences(of: "\"acc\": 0.0", with: "\"acc\": 1.0")
        #expect(flipped != lines[index])
        lines[index] = flipped
        try (lines.joined(separator: "\n") + "\n").write(toFile: "\(copy)/\(name)", atomically: true, encoding: .utf8)
        let before = try store.contentsFingerprint()
        do {
            _ = try ingest(store, "\(copy)/\(name)")
            Issue.record("accepted")
        } catch let error as InputError {
            #expect(error.line == index + 1 && error.reason.contains("doc_id 3") && error.reason.contains("acc"), "\(error)")
        }
        #expect(try store.contentsFingerprint() == before)
        // Skipping the row instead: the run is written without it, and the accuracy is not compared.
        let report = try ingest(store, "\(copy)/\(name)") { $0.skipInvalid = true }
        #expect(report.skipped.count == 1 && report.runs.first?.questions == lines.count - 1)
        // Samples beside another evaluation's results file: the run's accuracy gives it away.
        let mixed = directory.path("mixed")
        try FileManager.default.createDirectory(atPath: mixed, withIntermediateDirectories: true)
        let text = try FileManager.default.contentsOfDirectory(atPath: folder).first { $0.hasPrefix("samples_synth_text_") }!
        try FileManager.default.copyItem(atPath: "\(folder)/\(text)", toPath: "\(mixed)/samples_synth_letter_\(stamp).jsonl")
        try FileManager.default.copyItem(atPath: "\(folder)/results_\(stamp).json", toPath: "\(mixed)/results_\(stamp).json")
        #expect(throws: InputError.self) { try ingest(store, "\(mixed)/samples_synth_letter_\(stamp).jsonl") }
    }

    // MARK: - Task groups

    /// The task-group evaluations of one version: (results file, its folder) — 0-shot first.
    static func groupEvaluations(_ version: String) throws -> [(results: String, json: JSONValue)] {
        let folders = version == "lm-eval-0.4.2" ? ["groups", "groups-1shot"] : ["groups"]
        var found: [(String, JSONValue)] = []
        for folder in folders {
            let base = "\(root)/\(version)/\(folder)"
            for file in (FileManager.default.subpaths(atPath: base) ?? []).sorted() where LMEvalReader.isResultsFile("\(base)/\(file)") {
                found.append(("\(base)/\(file)", try JSONParser.parse(try String(contentsOfFile: "\(base)/\(file)", encoding: .utf8))))
            }
        }
        return found
    }

    /// `lm_eval --tasks synth_mmlu,synth_group,synth_int` (MMLU's layout: a group of two subgroups of two
    /// subjects each): one run per top-level group, n the sum of its subtasks, accuracy the harness's
    /// group acc, each subject's accuracy its subtask's acc, subjects and categories per question.
    @Test(arguments: LMEvalHarnessTests.versions)
    func aTaskGroupIsOneRun(_ version: String) throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        let evaluations = try Self.groupEvaluations(version)
        #expect(evaluations.count == 2)
        let folders = version == "lm-eval-0.4.2" ? ["\(Self.root)/\(version)/groups", "\(Self.root)/\(version)/groups-1shot"] : ["\(Self.root)/\(version)/groups"]
        let inputs = Ingestor.inputs(folders)
        var names: [String] = []
        for input in inputs {
            switch input {
            case .taskGroup(let group): names += try Ingestor(store: store).ingestGroup(group, options: IngestOptions()).runs.map(\.name)
            case .file(let path): names += try ingest(store, path).runs.map(\.name)
            default: Issue.record("unexpected input \(input)")
            }
        }
        // The 0-shot evaluation: synth_mmlu, synth_group (groups) and synth_int (a plain task); the 1-shot one: synth_mmlu.
        #expect(Set(names.filter { !$0.contains("[") }) == ["tiny-gpt2/synth_mmlu", "tiny-gpt2/synth_group", "tiny-gpt2/synth_int"], "\(names)")
        #expect(names.contains("tiny-gpt2/synth_mmlu [1-shot]"), "\(names)")
        let subjects = ["synth_mmlu_physics": ("physics", "stem"), "synth_mmlu_chemistry": ("chemistry", "stem"),
                        "synth_mmlu_law": ("law", "humanities"), "synth_mmlu_history": ("history", "humanities")]
        for (run, evaluation) in zip(["tiny-gpt2/synth_mmlu", "tiny-gpt2/synth_mmlu [1-shot]"], evaluations) {
            let json = evaluation.json
            let summary = try #require(try store.summary(run))
            // n: the sum of the subtasks' samples, read from their files.
            let folder = parentDirectory(of: evaluation.results)
            var n = 0
            for path in Ingestor.inputs([folder], splitGroups: true).compactMap({ if case .file(let p) = $0 { p } else { nil } })
            where (try LMEvalReader.evaluation(of: path)).file == evaluation.results {
                let task = try LMEvalReader.evaluation(of: path).task
                if subjects[task] != nil { n += try Self.samples(path).count }
            }
            #expect(summary.n == n && n == 60, "\(run)")
            let groupAccuracy = try #require((json["groups"]?["synth_mmlu"] ?? json["results"]?["synth_mmlu"])?["acc,none"]?.doubleValue)
            #expect(abs(summary.accuracy! - groupAccuracy) < 1e-12, "\(run): \(summary.accuracy!) vs \(groupAccuracy)")
            // Per subject: the subtask's own acc; subject and category per question.
            let loaded = try store.loadRun(named: run, details: true)
            for (task, (subject, category)) in subjects {
                let rows = (0..<loaded.predictions.count).filter { loaded.datasets[$0] == task }
                #expect(rows.allSatisfy { loaded.subjects[$0] == subject && loaded.categories[$0] == category }, "\(run) \(task)")
                let hits = rows.filter { i in
                    let range = loaded.predictions.offsets[i]..<loaded.predictions.offsets[i + 1]
                    let p = Array(loaded.predictions.probabilities[range])
                    return p.indices.max { p[$0] < p[$1] || (p[$0] == p[$1] && $0 > $1) } == Int(loaded.predictions.labels[i])
                }.count
                let harness = try #require(json["results"]?[task]?["acc,none"]?.doubleValue)
                #expect(abs(Double(hits) / Double(rows.count) - harness) < 1e-12, "\(run) \(task)")
                #expect(try store.runMetadata(named: run)?.params["lm_eval.subtask.\(task).acc"] == JSONValue.format(harness))
            }
            // Metadata: the group, its subtasks, the model by its checkpoint's last component (the path kept).
            let meta = try #require(try store.runMetadata(named: run))
            #expect(meta.dataset == "synth_mmlu" && meta.tags["lm_eval.group"] == "synth_mmlu" && meta.model == "tiny-gpt2")
            #expect(meta.params["lm_eval.model"]?.hasPrefix("/") == true && meta.params["lm_eval.model"]?.hasSuffix("/tiny-gpt2") == true)
            #expect(Set(meta.params["lm_eval.subtasks"]!.split(separator: ",").map(String.init)) == Set(subjects.keys))
        }
        // The category view agrees with the Swift grouping.
        let view = try store.query("SELECT category, n FROM category_calibration WHERE run = 'tiny-gpt2/synth_mmlu' ORDER BY category").rows
        #expect(view == [[.text("humanities"), .integer(32)], [.text("stem"), .integer(28)]])
    }

    /// A results file that is not one (here a JSON array) is not passed over in silence (issue 23.11).
    @Test func aResultsFileThatIsNoneIsSaid() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        let folder = directory.path("arr")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let name = "pretrained__tiny-gpt2,dtype__float32_synth_int.jsonl"
        try FileManager.default.copyItem(atPath: "\(Self.root)/lm-eval-0.4.2/folder/\(name)", toPath: "\(folder)/\(name)")
        try "[1, 2]\n".write(toFile: "\(folder)/results.json", atomically: true, encoding: .utf8)
        let report = try ingest(store, "\(folder)/\(name)")
        #expect(report.runs.count == 1 && report.notes.count == 1 && report.notes[0].contains("results.json") && report.notes[0].contains("not a harness results file"))
    }

    /// --split-groups keeps one run per subtask, on the same questions as the group's run.
    @Test func splitGroupsGivesARunPerSubtaskOnTheSameQuestions() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        let folder = "\(Self.root)/lm-eval-0.4.13/groups"
        for case .taskGroup(let group) in Ingestor.inputs([folder]) where group.files.count == 4 && group.resultsFile.contains("T19-28-59") {
            _ = try Ingestor(store: store).ingestGroup(group, options: IngestOptions())
        }
        let questions = try store.database.scalarInt("SELECT count(*) FROM questions")
        #expect(questions == 60)
        let split = Ingestor.inputs([folder], splitGroups: true).compactMap { if case .file(let p) = $0 { p } else { nil } }
            .filter { $0.contains("synth_mmlu") && $0.contains("T19-28-59") }
        #expect(split.count == 4)
        for path in split {
            let report = try ingest(store, path)
            let meta = try #require(try store.runMetadata(named: report.runs[0].name))
            #expect(meta.tags["lm_eval.group"] == nil && meta.tags["lm_eval.subtask_of"] != nil && meta.params["lm_eval.top_group"] == "synth_mmlu")
        }
        #expect(try store.database.scalarInt("SELECT count(*) FROM questions") == questions)   // the same questions
        #expect(try store.runSummaries().count == 5)
    }

    /// A group with a subtask missing stays per-file (with a note); a group whose results disagree,
    /// or one of whose files is damaged, is refused whole with the store unchanged.
    @Test func partialOrInconsistentGroups() throws {
        let directory = TemporaryDirectory()
        let store = try RunStore(path: directory.path("t.sqlite"))
        let source = "\(Self.root)/lm-eval-0.4.13/groups"
        let files = Ingestor.inputs([source], splitGroups: true).compactMap { if case .file(let p) = $0 { p } else { nil } }
            .filter { $0.contains("T19-28-59") }
        let law = files.first { $0.contains("synth_mmlu_law") }!, history = files.first { $0.contains("synth_mmlu_history") }!
        let partial = Ingestor.inputs([law, history])
        #expect(partial.count == 3)
        guard case .note(let note) = partial[0] else { Issue.record("no note"); return }
        #expect(note.contains("synth_mmlu") && note.contains("2 of its 4 subtasks"), "\(note)")
        // A copy whose group acc was changed: refused, nothing written.
        let copy = directory.path("copy")
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        for path in files + [try LMEvalReader.evaluation(of: law).file!] {
            try FileManager.default.copyItem(atPath: path, toPath: "\(copy)/\((path as NSString).lastPathComponent)")
        }
        let resultsName = (try LMEvalReader.evaluation(of: law).file! as NSString).lastPathComponent
        let results = try String(contentsOfFile: "\(copy)/\(resultsName)", encoding: .utf8)
        let group = try #require(Ingestor.inputs([copy]).compactMap { if case .taskGroup(let g) = $0, g.group == "synth_mmlu" { g } else { nil } }.first)
        let before = try store.contentsFingerprint()
        let changed = results.replacingOccurrences(of: "\"sample_len\": 60,\n      \"acc,none\": 0.25,", with: "\"sample_len\": 60,\n      \"acc,none\": 0.3,")
        #expect(changed != results)
        try changed.write(toFile: "\(copy)/\(resultsName)", atomically: true, encoding: .utf8)
        do {
            _ = try Ingestor(store: store).ingestGroup(group, options: IngestOptions())
            Issue.record("accepted")
        } catch let error as InputError {
            #expect(error.reason.contains("group acc 0.3"), "\(error)")
        }
        #expect(try store.contentsFingerprint() == before)
        // Results restored, one subtask's file cut mid-line: the whole group refused, naming the file.
        try results.write(toFile: "\(copy)/\(resultsName)", atomically: true, encoding: .utf8)
        let victim = group.files[2].path
        let text = try String(contentsOfFile: victim, encoding: .utf8)
        try String(text.prefix(text.count - 40)).write(toFile: victim, atomically: true, encoding: .utf8)
        do {
            _ = try Ingestor(store: store).ingestGroup(group, options: IngestOptions())
            Issue.record("accepted")
        } catch let error as InputError {
            #expect(error.source == victim && error.reason.contains("truncated"), "\(error)")
        }
        #expect(try store.contentsFingerprint() == before)
    }
}
