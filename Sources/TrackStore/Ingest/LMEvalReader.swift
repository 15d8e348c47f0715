import Foundation
import TrackCalibration

/// Reads lm-evaluation-harness `--log_samples` output: the JSON lines of
/// versions ≥ 0.4.3 (`samples_<task>_<timestamp>.jsonl`) and the JSON array
/// of 0.4.0–0.4.2. One run per (task, filter). Option scores are the first
/// element of each `filtered_resps` entry (continuation-sum log-likelihoods);
/// the gold index comes from `target` (an index, a letter, or the choice text
/// resolved through `doc.choices` or the task config's `doc_to_choice`).
/// Run metadata comes from the file name and a `results_*.json` beside it.
struct LMEvalReader {
    let session: IngestSession

    /// What the harness's results file says about the task.
    struct Results {
        var model: String?
        var modelArgs: String?
        var version: String?
        var nShot: String?
        var taskVersion: String?
        var choices: [String]?
        var metrics: [(metric: String, filter: String, value: Double)] = []
        var taskNames: [String] = []
    }

    func read() throws -> String {
        let path = session.path
        let firstByte = try Self.firstNonSpaceByte(path)
        if firstByte == nil { throw InputError(source: path, reason: "empty file: no samples") }
        let isArray = firstByte == UInt8(ascii: "[")
        let resultsFile = Self.findResults(besides: path, isArray: isArray)
        let resultsJSON = try resultsFile.map { file -> JSONValue in
            let bytes = try readWholeFile(file)
            do throws(JSONSyntaxError) { return try JSONParser.parse(bytes) } catch {
                throw InputError(source: file, reason: error.description)
            }
        }
        let task = Self.taskName(fileName: (path as NSString).lastPathComponent, isArray: isArray,
                                 knownTasks: resultsJSON?["configs"]?.objectValue?.keys ?? [])
        let results = resultsJSON.map { Self.results($0, task: task) }

        if isArray {
            let bytes = try readWholeFile(path)
            let value: JSONValue
            do throws(JSONSyntaxError) { value = try JSONParser.parse(bytes) } catch {
                throw InputError(source: path, reason: error.description)
            }
            guard let samples = value.arrayValue else {
                throw InputError(source: path, reason: "expected a JSON array of samples")
            }
            for (index, sample) in samples.enumerated() {
                try ingest(sample, task: task, results: results, line: nil, context: "sample \(index): ")
            }
            return SHA256.hex(of: bytes)
        }
        let reader = try LineReader(path: path)
        while let line = try reader.nextLine() {
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let sample: JSONValue
            do {
                sample = try JSONParser.parse(line)
            } catch {
                let truncated = !reader.lastLineWasTerminated ? " (the file ends mid-line: truncated?)" : ""
                try session.reject(line: reader.lineNumber, reason: "\(error)" + truncated)
                continue
            }
            try ingest(sample, task: task, results: results, line: reader.lineNumber, context: "")
        }
        return reader.finalizeSHA256()
    }

    private func ingest(_ sample: JSONValue, task: String, results: Results?, line: Int?, context: String) throws {
        let filter = sample["filter"]?.stringValue ?? "none"
        let prediction: Prediction
        do throws(ValidationError) {
            prediction = try Self.prediction(sample, choices: results?.choices)
        } catch {
            try session.reject(line: line, reason: context + error.reason, remedy: error.remedy)
            return
        }
        let run = try session.writer(key: filter) { try metadata(task: task, filter: filter, results: results) }
        try session.write(prediction, run: run, line: line, context: context)
    }

    static func prediction(_ sample: JSONValue, choices configChoices: [String]?) throws(ValidationError) -> Prediction {
        guard sample.objectValue != nil else { throw ValidationError("a sample must be a JSON object") }
        guard let docID = sample["doc_id"]?.identifierValue else { throw ValidationError("missing field 'doc_id'") }
        var scores: [Double] = []
        if let filtered = sample["filtered_resps"]?.arrayValue {
            for (k, entry) in filtered.enumerated() {
                let first = entry.arrayValue?.first ?? entry
                guard let score = first.numericValue else {
                    throw ValidationError("doc_id \(docID): filtered_resps[\(k)] holds no log-likelihood (\(entry.jsonText.prefix(60)))")
                }
                scores.append(score)
            }
        } else if let resps = sample["resps"]?.arrayValue {
            for (k, entry) in resps.enumerated() {
                guard let score = entry.arrayValue?.first?.arrayValue?.first?.numericValue else {
                    throw ValidationError("doc_id \(docID): resps[\(k)] holds no log-likelihood")
                }
                scores.append(score)
            }
        } else {
            throw ValidationError("doc_id \(docID): missing field 'filtered_resps' (was the task multiple-choice, run with --log_samples?)")
        }
        guard let target = sample["target"] else { throw ValidationError("doc_id \(docID): missing field 'target'") }
        let choices = sample["doc"]?["choices"]?.arrayValue?.compactMap(\.stringValue) ?? configChoices
        let label = try resolveTarget(target, choices: choices, optionCount: scores.count, docID: docID)
        return Prediction(questionID: docID, label: label, values: .scores(scores),
                          subject: sample["doc"]?["subject"]?.stringValue)
    }

    /// `target` as an option index: an integer (or its string), the text of one
    /// of the choices, or a letter.
    static func resolveTarget(_ target: JSONValue, choices: [String]?, optionCount: Int,
                              docID: String) throws(ValidationError) -> Int {
        var index: Int?
        if let number = target.integerValue {
            index = number
        } else if let text = target.stringValue {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            if let choices, let found = choices.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == trimmed }) {
                index = found
            } else {
                index = RecordDecoder.letterIndex(trimmed)
            }
        } else if target.arrayValue != nil {
            throw ValidationError("doc_id \(docID): several gold targets are not supported")
        }
        guard let index else {
            throw ValidationError("doc_id \(docID): cannot resolve target \(target.jsonText) to an option (no matching choice)")
        }
        guard index >= 0, index < optionCount else {
            throw ValidationError("doc_id \(docID): label \(index) is out of range for \(optionCount) options (0...\(optionCount - 1))")
        }
        return index
    }

    private func metadata(task: String, filter: String, results: Results?) throws -> RunMetadata {
        var meta = session.options.metadata
        let directory = ((session.path as NSString).deletingLastPathComponent as NSString).lastPathComponent
        let model = meta.model ?? results?.model ?? results?.modelArgs.flatMap(Self.pretrained)
            ?? (directory.isEmpty || directory == "." ? nil : directory)
        meta.model = model
        if meta.dataset == nil { meta.dataset = task }
        if meta.extraction == nil { meta.extraction = "continuation-sum" }
        let suffix = filter == "none" ? "" : "/\(filter)"
        if meta.name.isEmpty {
            meta.name = "\(model ?? "lm-eval")/\(task)\(suffix)"
        } else {
            meta.name += suffix
        }
        meta.params["lm_eval.task"] = task
        meta.params["lm_eval.filter"] = filter
        if let results {
            if let v = results.version { meta.params["lm_eval.version"] = v }
            if let v = results.nShot { meta.params["lm_eval.n_shot"] = v }
            if let v = results.modelArgs { meta.params["lm_eval.model_args"] = v }
            if let v = results.taskVersion { meta.params["lm_eval.task_version"] = v }
            for metric in results.metrics where metric.filter == filter {
                meta.params["lm_eval.\(metric.metric)"] = JSONValue.format(metric.value)
            }
        }
        return meta
    }

    // MARK: - File names and the results file

    /// `samples_<task>_<YYYY-MM-DDTHH-MM-SS.ffffff>.jsonl` → task; for the
    /// 0.4.0–0.4.2 name `<model_args>_<task>.jsonl`, the longest task of the
    /// results file that ends the name, else the whole stem.
    static func taskName(fileName: String, isArray: Bool, knownTasks: [String]) -> String {
        var stem = fileName
        for ext in [".jsonl", ".json"] where stem.hasSuffix(ext) { stem.removeLast(ext.count); break }
        if stem.hasPrefix("samples_") {
            stem.removeFirst("samples_".count)
            if let underscore = stem.lastIndex(of: "_"), looksLikeTimestamp(stem[stem.index(after: underscore)...]) {
                stem = String(stem[..<underscore])
            }
            return stem
        }
        if let known = knownTasks.filter({ stem == $0 || stem.hasSuffix("_" + $0) }).max(by: { $0.count < $1.count }) {
            return known
        }
        return stem
    }

    static func looksLikeTimestamp<S: StringProtocol>(_ text: S) -> Bool {
        let chars = Array(text)
        return chars.count >= 10 && chars[4] == "-" && chars[7] == "-" && chars[0...3].allSatisfy(\.isNumber)
    }

    /// `results_<timestamp>.json` with the samples' timestamp, else the newest
    /// `results*.json` in the same folder.
    static func findResults(besides path: String, isArray: Bool) -> String? {
        let directory = (path as NSString).deletingLastPathComponent
        let folder = directory.isEmpty ? "." : directory
        var name = (path as NSString).lastPathComponent
        for ext in [".jsonl", ".json"] where name.hasSuffix(ext) { name.removeLast(ext.count); break }
        if let underscore = name.lastIndex(of: "_"), looksLikeTimestamp(name[name.index(after: underscore)...]) {
            let candidate = (folder as NSString).appendingPathComponent("results_\(name[name.index(after: underscore)...]).json")
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
        }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        let candidates = files.filter { $0.hasPrefix("results") && $0.hasSuffix(".json") }.sorted()
        return candidates.last.map { (folder as NSString).appendingPathComponent($0) }
    }

    static func results(_ json: JSONValue, task: String) -> Results {
        var results = Results()
        results.model = json["model_name"]?.stringValue
        if let args = json["config"]?["model_args"] {
            results.modelArgs = args.stringValue ?? args.jsonText
        }
        results.version = json["lm_eval_version"]?.stringValue
        results.nShot = json["n-shot"]?[task]?.identifierValue
        results.taskVersion = json["versions"]?[task]?.identifierValue
        results.taskNames = json["configs"]?.objectValue?.keys ?? []
        if let choices = json["configs"]?[task]?["doc_to_choice"]?.arrayValue {
            results.choices = choices.compactMap(\.stringValue)
        }
        for entry in json["results"]?[task]?.objectValue?.entries ?? [] {
            let parts = entry.key.split(separator: ",", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].hasSuffix("_stderr"), let value = entry.value.doubleValue else { continue }
            results.metrics.append((parts[0], parts[1], value))
        }
        return results
    }

    /// `pretrained=Qwen/Qwen3-8B,dtype=bfloat16` → `Qwen/Qwen3-8B`.
    static func pretrained(_ modelArgs: String) -> String? {
        for part in modelArgs.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces) == "pretrained" {
                return String(pair[1])
            }
        }
        return nil
    }

    static func firstNonSpaceByte(_ path: String) throws -> UInt8? {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw InputError(source: path, reason: "cannot open") }
        defer { try? handle.close() }
        while true {
            let data = handle.readData(ofLength: 4096)
            if data.isEmpty { return nil }
            if let byte = data.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) { return byte }
        }
    }
}
