import Foundation
import TrackCalibration

/// Reads lm-evaluation-harness `--log_samples` output as the harness scored it
/// (METHODS §10): the JSON lines of 0.4.3 and later (`samples_<task>_<date>.jsonl`)
/// and the JSON array of 0.4.0–0.4.2 (`<model_args>_<task>.jsonl`), one run per
/// (task, filter), with the evaluation's metadata from its results file.
///
/// - Options are the continuations the harness scored (`arguments`), in order;
///   their scores the first element of each `filtered_resps` entry. For
///   `acc_mutual_info` tasks the harness also scores each continuation without
///   its context: those unconditional scores (the entries with an empty context)
///   are not options; they are only used to check the harness's per-sample value.
/// - Gold as the harness computes it: an integer target is the index; a target
///   string is the index of the scored continuation (less the task's target
///   delimiter) equal to it. A digit string from a template, or the value of the
///   doc field `doc_to_target` names, follows the harness's conversion. `doc.choices`
///   is not consulted: the harness does not use it unless `doc_to_choice` does,
///   and then the continuations already hold it. Several gold answers are refused.
/// - Every row is checked against the sample's own `acc` (and `acc_mutual_info`),
///   and each run's accuracy against the results file's `acc`.
struct LMEvalReader {
    let session: IngestSession
    /// The evaluation the samples file belongs to (`evaluation(of:)`, read once by the ingestor).
    let evaluation: Evaluation
    /// When the file is one subtask of a task group read as one run: the group.
    var group: GroupMember?

    /// A subtask read into its top-level group's run: its questions keyed under the subtask's
    /// name (doc_ids repeat across subtasks), with its subject and intermediate group.
    struct GroupMember {
        /// The top-level group, which names the run.
        var group: String
        var subject: String
        var category: String?
    }

    init(session: IngestSession, evaluation: Evaluation, group: GroupMember? = nil) {
        self.session = session
        self.evaluation = evaluation
        self.group = group
    }

    /// One harness evaluation: its results file, as far as this task is concerned.
    struct Evaluation {
        var file: String?
        var sha256: String?
        var json: JSONValue?
        var task: String

        var config: JSONValue? { json?["configs"]?[task] }
        var metrics: [(metric: String, filter: String, value: Double)] {
            (json?["results"]?[task]?.objectValue?.entries ?? []).compactMap { entry in
                let parts = entry.key.split(separator: ",", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].hasSuffix("_stderr"), let value = entry.value.doubleValue else { return nil }
                return (parts[0], parts[1], value)
            }
        }
        /// `model_args` as (key, value) pairs: a dict (0.4.3+) or `k=v,k=v` text (0.4.2).
        var modelArgs: [(String, String)] {
            guard let args = json?["config"]?["model_args"] else { return [] }
            if let object = args.objectValue { return object.entries.map { ($0.key, LMEvalReader.text($0.value)) } }
            return (args.stringValue ?? "").split(separator: ",").compactMap { part in
                let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                return pair.count == 2 ? (pair[0], pair[1]) : nil
            }
        }
        /// The model as given to the harness: a hub id (`meta-llama/Llama-3.1-8B`) or a local checkpoint path.
        var modelArgument: String? {
            json?["model_name"]?.stringValue ?? modelArgs.first { $0.0 == "pretrained" }?.1
        }
        /// The model's name for runs: a hub id as it is; a local checkpoint path (absolute, or
        /// starting `./`, `../`, `~`) by its last component (the full path stays in the params).
        var model: String? {
            guard let argument = modelArgument else { return nil }
            return Self.modelName(argument)
        }

        static func modelName(_ argument: String) -> String {
            let isPath = argument.hasPrefix("/") || argument.hasPrefix("./") || argument.hasPrefix("../") || argument.hasPrefix("~")
            guard isPath else { return argument }
            let trimmed = argument.split(separator: "/", omittingEmptySubsequences: true)
            // A checkpoint folder named like `checkpoint-500` says little alone: keep its parent too.
            guard let last = trimmed.last else { return argument }
            if last.hasPrefix("checkpoint"), trimmed.count >= 2 { return "\(trimmed[trimmed.count - 2])/\(last)" }
            return String(last)
        }
        var version: String? { json?["lm_eval_version"]?.stringValue }
        var nShot: Int? { json?["n-shot"]?[task]?.integerValue }
        var limit: String? {
            guard let limit = json?["config"]?["limit"], limit != .null else { return nil }
            return LMEvalReader.text(limit)
        }
        /// The evaluation's date (ISO 8601 UTC), from the results file's `date` (seconds since 1970).
        var date: String? {
            guard let seconds = json?["date"]?.numericValue else { return nil }
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return formatter.string(from: Date(timeIntervalSince1970: seconds))
        }
        /// The task's groups from the top-level one down to its parent (`group_subtasks`).
        var groupPath: [String] { json.map { TaskGroups($0).path(to: task) } ?? [] }
        var targetDelimiter: String { config?["target_delimiter"]?.stringValue ?? " " }
        /// The task's filters in the order the harness applies (and, before 0.4.3, logs) them.
        var filterNames: [String] {
            let configured = (config?["filter_list"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
            if !configured.isEmpty { return configured }
            var names: [String] = []
            for metric in metrics where !names.contains(metric.filter) { names.append(metric.filter) }
            return names.isEmpty ? ["none"] : names
        }
        var usesMutualInformation: Bool {
            config?["metric_list"]?.arrayValue?.contains { $0["metric"]?.stringValue == "acc_mutual_info" } == true
        }
    }

    /// Reads the file into the session's runs; returns the identity of this evaluation output.
    func read() throws -> String {
        var totals: [String: (n: Int, hits: Int)] = [:]
        return try read(totals: &totals)
    }

    /// Reads the file; adds its per-filter questions and hits to `totals` (a group's subtasks
    /// are counted together for the group's accuracy).
    func read(totals: inout [String: (n: Int, hits: Int)]) throws -> String {
        let path = session.path
        let firstByte = try Self.firstNonSpaceByte(path)
        if firstByte == nil { throw InputError(source: path, reason: "empty file: no samples") }
        let isArray = firstByte == UInt8(ascii: "[")
        var state = ReadState()
        session.alternativeNames = Self.alternativeNames

        let samplesSHA: String
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
                try ingest(sample, evaluation, &state, line: nil, context: "sample \(index): ")
            }
            samplesSHA = SHA256.hex(of: bytes)
        } else {
            let reader = try LineReader(path: path)
            reader.reportProgress(session.options.progress)
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
                try ingest(sample, evaluation, &state, line: reader.lineNumber, context: "")
            }
            samplesSHA = reader.finalizeSHA256()
        }
        try checkAccuracy(state, evaluation)
        for (filter, count) in state.counts {
            totals[filter, default: (0, 0)].n += count.n
            totals[filter, default: (0, 0)].hits += count.hits
        }
        return group == nil ? Self.identity(samplesSHA: samplesSHA, evaluation: evaluation) : samplesSHA
    }

    /// Per filter: questions and hits as track resolved them, for the run-level check.
    struct ReadState {
        var counts: [String: (n: Int, hits: Int)] = [:]
        /// How often each doc_id was seen: 0.4.2 logs no filter name, but each filter's samples in turn.
        var seen: [String: Int] = [:]
    }

    /// An evaluation's output is identified by its samples file together with its
    /// results file: a byte-identical samples file of another evaluation is another run.
    static func identity(samplesSHA: String, evaluation: Evaluation) -> String {
        guard let results = evaluation.sha256 else { return samplesSHA }
        return SHA256.hex(of: Array("lm-eval:\(samplesSHA):\(results)".utf8))
    }

    private func ingest(_ sample: JSONValue, _ evaluation: Evaluation, _ state: inout ReadState,
                        line: Int?, context: String) throws {
        var filter = sample["filter"]?.stringValue ?? "none"
        if sample["filter"] == nil {
            let names = evaluation.filterNames
            if names.count == 1 {
                filter = names[0]   // one filter: no doc_id to count (memory stays flat)
            } else if let id = sample["doc_id"]?.identifierValue {
                let occurrence = state.seen[id, default: 0]
                state.seen[id] = occurrence + 1
                filter = occurrence < names.count ? names[occurrence] : "none"
            }
        }
        let scored: Scored
        do throws(ValidationError) {
            scored = try Self.scored(sample, evaluation: evaluation)
        } catch {
            try session.reject(line: line, reason: context + error.reason, remedy: error.remedy)
            return
        }
        let run = try session.writer(key: filter) { try metadata(evaluation, filter: filter) }
        let before = session.skipped.count
        var prediction = scored.prediction
        if let group {
            prediction.dataset = evaluation.task
            prediction.subject = group.subject
            prediction.category = group.category
        }
        try session.write(prediction, run: run, line: line, context: context)
        if session.skipped.count == before {
            state.counts[filter, default: (0, 0)].n += 1
            if scored.hit { state.counts[filter, default: (0, 0)].hits += 1 }
        }
    }

    /// A sample as the harness scored it: the prediction and whether its argmax is gold.
    struct Scored {
        var prediction: Prediction
        var hit: Bool
    }

    static func scored(_ sample: JSONValue, evaluation: Evaluation) throws(ValidationError) -> Scored {
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
        // The (context, continuation) pairs the harness scored, when logged.
        let arguments = Self.arguments(sample["arguments"])
        if let arguments, arguments.count != scores.count {
            throw ValidationError("doc_id \(docID): \(arguments.count) scored requests but \(scores.count) log-likelihoods")
        }
        // Mutual information: the unconditional requests (empty context) are not options.
        let metricNames = Set((sample["metrics"]?.arrayValue ?? []).compactMap(\.stringValue))
        let mutualInformation = metricNames.contains("acc_mutual_info") || sample["acc_mutual_info"] != nil
            || evaluation.usesMutualInformation
        var optionScores = scores, unconditional: [Double] = []
        var continuations = arguments?.map(\.continuation)
        if mutualInformation, let arguments, arguments.count % 2 == 0 {
            let conditionalIndexes = arguments.indices.filter { !arguments[$0].context.isEmpty }
            let unconditionalIndexes = arguments.indices.filter { arguments[$0].context.isEmpty }
            guard conditionalIndexes.count == arguments.count / 2, unconditionalIndexes.count == arguments.count / 2 else {
                throw ValidationError("doc_id \(docID): cannot tell the conditional from the unconditional requests of acc_mutual_info")
            }
            optionScores = conditionalIndexes.map { scores[$0] }
            unconditional = unconditionalIndexes.map { scores[$0] }
            continuations = conditionalIndexes.map { arguments[$0].continuation }
        }
        let delimiter = evaluation.targetDelimiter
        let choices = continuations.map { $0.map { $0.hasPrefix(delimiter) ? String($0.dropFirst(delimiter.count)) : $0 } }
            ?? evaluation.config?["doc_to_choice"]?.arrayValue?.compactMap(\.stringValue)
            ?? sample["doc"]?["choices"]?.arrayValue?.compactMap(\.stringValue)
        guard let target = sample["target"] else { throw ValidationError("doc_id \(docID): missing field 'target'") }
        let label = try resolveTarget(target, doc: sample["doc"], docToTarget: evaluation.config?["doc_to_target"]?.stringValue,
                                      choices: choices, optionCount: optionScores.count, docID: docID)
        // The harness's argmax: the first of the largest log-likelihoods.
        let predicted = optionScores.indices.max { optionScores[$0] < optionScores[$1] || (optionScores[$0] == optionScores[$1] && $0 > $1) } ?? 0
        if let acc = sample["acc"]?.numericValue, (acc == 1) != (predicted == label) {
            throw ValidationError("doc_id \(docID): the harness scored acc = \(JSONValue.format(acc)), but the option with the highest log-likelihood (\(predicted)) \(predicted == label ? "is" : "is not") the gold option \(label) as resolved from target \(target.jsonText): gold or options misread")
        }
        if let value = sample["acc_mutual_info"]?.numericValue, unconditional.count == optionScores.count {
            let information = zip(optionScores, unconditional).map { $0 - $1 }
            let best = information.indices.max { information[$0] < information[$1] || (information[$0] == information[$1] && $0 > $1) } ?? 0
            if (value == 1) != (best == label) {
                throw ValidationError("doc_id \(docID): the harness scored acc_mutual_info = \(JSONValue.format(value)), which the conditional and unconditional log-likelihoods do not reproduce")
            }
        }
        let prediction = Prediction(questionID: docID, label: label, values: .scores(optionScores),
                                    subject: sample["doc"]?["subject"]?.stringValue)
        return Scored(prediction: prediction, hit: predicted == label)
    }

    /// `arguments` as (context, continuation) pairs: `{"gen_args_0": {"arg_0": …, "arg_1": …}, …}`
    /// (0.4.3+) or `[[context, continuation], …]` (0.4.2).
    static func arguments(_ value: JSONValue?) -> [(context: String, continuation: String)]? {
        if let object = value?.objectValue {
            let pairs = object.entries.compactMap { entry -> (String, String)? in
                guard let context = entry.value["arg_0"]?.stringValue, let continuation = entry.value["arg_1"]?.stringValue else { return nil }
                return (context, continuation)
            }
            return pairs.count == object.entries.count ? pairs : nil
        }
        if let array = value?.arrayValue {
            let pairs = array.compactMap { item -> (String, String)? in
                guard let parts = item.arrayValue, parts.count >= 2, let context = parts[0].stringValue,
                      let continuation = parts[1].stringValue else { return nil }
                return (context, continuation)
            }
            return pairs.count == array.count ? pairs : nil
        }
        return nil
    }

    /// The gold index as the harness computes it from `target`.
    static func resolveTarget(_ target: JSONValue, doc: JSONValue?, docToTarget: String?, choices: [String]?,
                              optionCount: Int, docID: String) throws(ValidationError) -> Int {
        var value = target
        // `doc_to_target` naming a doc field: the harness uses that field's value as it is.
        if let field = docToTarget, !field.contains("{{"), let raw = doc?[field], raw != .null {
            value = raw
        } else if let text = target.stringValue {
            // A template's text: digits become an index and "[…]" a list, as in the harness.
            if !text.isEmpty, text.allSatisfy(\.isASCII), text.allSatisfy(\.isNumber) {
                value = .number(Double(text) ?? -1)
            } else if text.hasPrefix("["), text.hasSuffix("]"), let list = try? JSONParser.parse(text), list.arrayValue != nil {
                value = list
            }
        }
        if let list = value.arrayValue {
            if list.count == 1, let only = list.first { value = only } else {
                throw ValidationError("doc_id \(docID): several gold answers (\(value.jsonText)); track stores one gold option per question, so multi-gold tasks are not supported")
            }
        }
        let index: Int
        if let number = value.integerValue, value.stringValue == nil {
            index = number
        } else if let text = value.stringValue {
            guard let choices else {
                throw ValidationError("doc_id \(docID): target \(target.jsonText) is text, and neither the scored continuations nor the task's choices were logged")
            }
            guard let found = choices.firstIndex(of: text) else {
                throw ValidationError("doc_id \(docID): target \(target.jsonText) is not one of the \(choices.count) scored choices (\(choices.prefix(5).map { "\"\($0)\"" }.joined(separator: ", ")))")
            }
            index = found
        } else {
            throw ValidationError("doc_id \(docID): cannot resolve target \(target.jsonText) to an option")
        }
        guard index >= 0, index < optionCount else {
            throw ValidationError("doc_id \(docID): label \(index) is out of range for \(optionCount) options (0...\(optionCount - 1))")
        }
        return index
    }

    /// Each run's accuracy against the harness's `acc` for its filter (equal up to float printing).
    private func checkAccuracy(_ state: ReadState, _ evaluation: Evaluation) throws {
        guard session.skipped.isEmpty else { return }
        for (filter, count) in state.counts where count.n > 0 {
            guard let reported = evaluation.metrics.first(where: { $0.metric == "acc" && $0.filter == filter })?.value else { continue }
            let accuracy = Double(count.hits) / Double(count.n)
            if abs(accuracy - reported) > 1e-9 {
                throw InputError(source: session.path, reason: "accuracy \(JSONValue.format(accuracy)) over the \(count.n) samples (filter \(filter)) differs from the harness's acc \(JSONValue.format(reported)) in \(evaluation.file ?? "its results file"): samples and results file do not belong together")
            }
        }
    }

    private func metadata(_ evaluation: Evaluation, filter: String) throws -> RunMetadata {
        var meta = session.options.metadata
        let task = group?.group ?? evaluation.task
        let directory = (parentDirectory(of: session.path) as NSString).lastPathComponent
        let model = meta.model ?? evaluation.model ?? (directory.isEmpty || directory == "." ? nil : directory)
        meta.model = model
        if meta.dataset == nil { meta.dataset = task }
        let givenSplit = meta.split
        if meta.split == nil { meta.split = evaluation.config?["test_split"]?.stringValue }
        if meta.extraction == nil { meta.extraction = "continuation-sum" }
        if meta.startedAt == nil { meta.startedAt = evaluation.date }
        let suffix = filter == "none" ? "" : "/\(filter)"
        // <model>[/<method>]/<task>[/<split>]: the method and split when given on the command line.
        let generated = ([model ?? "lm-eval", meta.method].compactMap { $0 } + [task, givenSplit].compactMap { $0 }).joined(separator: "/")
        meta.name = (meta.name.isEmpty ? generated : meta.name) + suffix
        var params: [String: String] = ["lm_eval.task": task, "lm_eval.filter": filter]
        if let file = evaluation.file { params["lm_eval.results_file"] = IngestSession.absolute(file) }
        if let sha = evaluation.sha256 { params["lm_eval.results_sha256"] = sha }
        if let json = evaluation.json {
            params["lm_eval.version"] = evaluation.version
            // A group's n-shot is its subtasks' (0.4.2 lists the group itself as 0-shot).
            params["lm_eval.n_shot"] = evaluation.nShot.map(String.init)
            params["lm_eval.limit"] = evaluation.limit
            params["lm_eval.date"] = evaluation.date
            if let version = json["versions"]?[task], version != .null { params["lm_eval.task_version"] = Self.version(version) }
            let args = evaluation.modelArgs
            if !args.isEmpty { params["lm_eval.model_args"] = args.map { "\($0)=\($1)" }.joined(separator: ",") }
            for (key, value) in args { params["lm_eval.model_args.\(key)"] = value }
            if let argument = evaluation.modelArgument { params["lm_eval.model"] = argument }
            for (key, name) in [("model", "model_type"), ("model_dtype", "model_dtype"), ("model_revision", "model_revision"),
                                ("model_sha", "model_sha"), ("batch_size", "batch_size"), ("device", "device"),
                                ("random_seed", "seed.random"), ("numpy_seed", "seed.numpy"), ("torch_seed", "seed.torch"),
                                ("fewshot_seed", "seed.fewshot"), ("model_num_parameters", "model_num_parameters")] {
                if let value = json["config"]?[key], value != .null, value != .string("") { params["lm_eval.\(name)"] = Self.text(value) }
            }
            for key in ["transformers_version", "git_hash", "model_source"] {
                if let value = json[key]?.stringValue, !value.isEmpty { params["lm_eval.\(key)"] = value }
            }
            for (key, name) in [("chat_template_sha", "chat_template_sha256"), ("system_instruction_sha", "system_instruction_sha256")] {
                if let value = json[key]?.stringValue { params["lm_eval.\(name)"] = value }
            }
            if let group {
                // One run for the whole group: its aggregate, and each subtask's own figures.
                let groups = TaskGroups(json)
                let subtasks = groups.leaves(of: group.group)
                params["lm_eval.group"] = group.group
                params["lm_eval.subtasks"] = subtasks.joined(separator: ",")
                for metric in Self.metrics(json, of: group.group) where metric.filter == filter {
                    params["lm_eval.\(metric.metric)"] = JSONValue.format(metric.value)
                }
                for subtask in subtasks {
                    for metric in Self.metrics(json, of: subtask) where metric.filter == filter && metric.metric == "acc" {
                        params["lm_eval.subtask.\(subtask).acc"] = JSONValue.format(metric.value)
                    }
                    if let samples = json["n-samples"]?[subtask]?["effective"] { params["lm_eval.subtask.\(subtask).n"] = Self.text(samples) }
                    if let version = json["versions"]?[subtask], version != .null { params["lm_eval.subtask.\(subtask).version"] = Self.version(version) }
                    if let hash = json["task_hashes"]?[subtask]?.stringValue { params["lm_eval.subtask.\(subtask).hash"] = hash }
                }
                meta.tags["lm_eval.group"] = group.group
            } else {
                if let hash = json["task_hashes"]?[task]?.stringValue { params["lm_eval.task_hash"] = hash }
                if let samples = json["n-samples"]?[task] {
                    params["lm_eval.n_samples.original"] = samples["original"].map(Self.text)
                    params["lm_eval.n_samples.effective"] = samples["effective"].map(Self.text)
                }
                for metric in evaluation.metrics where metric.filter == filter {
                    params["lm_eval.\(metric.metric)"] = JSONValue.format(metric.value)
                }
                // A subtask read on its own (--split-groups): the groups it belongs to, each named
                // as such, so that no subtask's number is labelled with a group's name.
                let path = evaluation.groupPath
                if let parent = path.last {
                    meta.tags["lm_eval.subtask_of"] = parent
                    params["lm_eval.subtask_of"] = parent
                    params["lm_eval.top_group"] = path.first
                    for metric in Self.metrics(json, of: parent) where metric.filter == filter {
                        params["lm_eval.subtask_of.\(metric.metric)"] = JSONValue.format(metric.value)
                    }
                }
            }
        }
        for (key, value) in params where meta.params[key] == nil { meta.params[key] = value }
        return meta
    }

    /// A task's or group's (metric, filter, value) entries of the results file: a group's from
    /// `groups` (0.4.3+), else `results`.
    static func metrics(_ json: JSONValue, of name: String) -> [(metric: String, filter: String, value: Double)] {
        let entries = (json["groups"]?[name] ?? json["results"]?[name])?.objectValue?.entries ?? []
        return entries.compactMap { entry in
            let parts = entry.key.split(separator: ",", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].hasSuffix("_stderr"), let value = entry.value.doubleValue else { return nil }
            return (parts[0], parts[1], value)
        }
    }

    /// A JSON scalar as text: strings as they are, numbers as JSON writes them.
    static func text(_ value: JSONValue) -> String { value.stringValue ?? value.jsonText }

    /// A task version as the harness writes it: "Yaml", or a number with its decimal point (1.0).
    static func version(_ value: JSONValue) -> String {
        if let number = value.doubleValue { return number == number.rounded() && abs(number) < 1e15 ? "\(Int(number)).0" : "\(number)" }
        return text(value)
    }

    /// Names for a rerun whose name another evaluation (`existing`) holds: what differs between
    /// the two, in order n-shot, limit, harness version, date — never what both share; then all
    /// that differ together (METHODS §10).
    static func alternativeNames(_ meta: RunMetadata, existing: RunMetadata?) -> [String] {
        let other = existing?.params ?? [:]
        var parts: [String] = []
        for (key, label) in [("lm_eval.n_shot", { "\($0)-shot" }), ("lm_eval.limit", { "limit \($0)" }),
                             ("lm_eval.version", { "lm-eval \($0)" }), ("lm_eval.date", { (value: String) in value })] as [(String, (String) -> String)] {
            guard let value = meta.params[key], value != other[key] else { continue }
            parts.append(label(value))
        }
        var names = parts.map { "\(meta.name) [\($0)]" }
        if parts.count > 1 { names.append("\(meta.name) [\(parts.joined(separator: ", "))]") }
        return names
    }

    // MARK: - File names and the results file

    /// The evaluation a samples file belongs to: its results file and the task's name.
    static func evaluation(of path: String) throws -> Evaluation {
        let resultsFile = findResults(besides: path)
        var json: JSONValue?, sha: String?
        if let resultsFile {
            let bytes = try readWholeFile(resultsFile)
            do throws(JSONSyntaxError) { json = try JSONParser.parse(bytes) } catch {
                throw InputError(source: resultsFile, reason: error.description)
            }
            sha = SHA256.hex(of: bytes)
        }
        let task = taskName(fileName: (path as NSString).lastPathComponent, knownTasks: json?["configs"]?.objectValue?.keys ?? [])
        return Evaluation(file: resultsFile, sha256: sha, json: json, task: task)
    }

    /// `samples_<task>_<YYYY-MM-DDTHH-MM-SS.ffffff>.jsonl` → task; for the
    /// 0.4.0–0.4.2 name `<model_args>_<task>.jsonl`, the longest task of the
    /// results file that ends the name, else the whole stem.
    static func taskName(fileName: String, knownTasks: [String]) -> String {
        var stem = fileName
        for ext in [".jsonl", ".json"] where stem.hasSuffix(ext) { stem.removeLast(ext.count); break }
        if stem.hasPrefix("samples_") {
            stem.removeFirst("samples_".count)
            if let timestamp = timestamp(of: stem) { stem.removeLast(timestamp.count + 1) }
            return stem
        }
        if let known = knownTasks.filter({ stem == $0 || stem.hasSuffix("_" + $0) }).max(by: { $0.count < $1.count }) {
            return known
        }
        return stem
    }

    /// The `_<YYYY-MM-DDTHH-MM-SS.ffffff>` ending of a file stem, if it has one.
    static func timestamp(of stem: String) -> String? {
        guard let underscore = stem.lastIndex(of: "_") else { return nil }
        let tail = stem[stem.index(after: underscore)...]
        let chars = Array(tail)
        guard chars.count >= 10, chars[4] == "-", chars[7] == "-", chars[0...3].allSatisfy(\.isNumber) else { return nil }
        return String(tail)
    }

    /// The results file of the evaluation a samples file belongs to: beside it with the
    /// same timestamp, whatever its stem (`results_<date>.json`, or `<name>_<date>.json`
    /// for `--output_path <name>.json`); for untimestamped (0.4.2) samples, the results
    /// file beside them (`results.json`, or the `--output_path` file) that lists the task.
    static func findResults(besides path: String) -> String? {
        let directory = parentDirectory(of: path)
        let folder = directory.isEmpty ? "." : directory
        var name = (path as NSString).lastPathComponent
        for ext in [".jsonl", ".json"] where name.hasSuffix(ext) { name.removeLast(ext.count); break }
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
        if let stamp = timestamp(of: name) {
            return files.first { $0.hasSuffix("_\(stamp).json") && !$0.hasPrefix("samples_") }
                .map { (folder as NSString).appendingPathComponent($0) }
        }
        let candidates = files.filter { $0.hasSuffix(".json") && !$0.hasPrefix("samples_") && timestamp(of: String($0.dropLast(5))) == nil }
            .map { (folder as NSString).appendingPathComponent($0) }
            .filter(isResultsFile)
        let task = taskName(fileName: (path as NSString).lastPathComponent, knownTasks: [])
        return candidates.first { file in
            guard let bytes = try? readWholeFile(file), let json = try? JSONParser.parse(bytes) else { return false }
            return json["configs"]?.objectValue?.keys.contains { task == $0 || task.hasSuffix("_" + $0) } == true
        } ?? candidates.last
    }

    /// Whether a `.json` file is a harness results file (an object with "results" and "configs"
    /// or "versions" near its start), not samples.
    static func isResultsFile(_ path: String) -> Bool {
        guard path.hasSuffix(".json"), let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = String(decoding: handle.readData(ofLength: 1 << 16), as: UTF8.self)
        guard head.drop(while: \.isWhitespace).first == "{" else { return false }
        return head.contains("\"results\"") && (head.contains("\"configs\"") || head.contains("\"versions\"") || head.contains("\"config\""))
    }

    /// Whether a file is harness samples output: `samples_*.jsonl`, or a JSON array of
    /// samples (0.4.2).
    static func isSamplesFile(_ path: String) -> Bool {
        let name = (path as NSString).lastPathComponent
        guard name.hasSuffix(".jsonl") || name.hasSuffix(".json") else { return false }
        if name.hasPrefix("samples_"), name.hasSuffix(".jsonl") { return true }
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = String(decoding: handle.readData(ofLength: 1 << 14), as: UTF8.self)
        return head.drop(while: \.isWhitespace).first == "[" && head.contains("\"doc_id\"")
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
