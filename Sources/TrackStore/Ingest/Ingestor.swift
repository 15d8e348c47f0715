import Foundation
import TrackCalibration

/// Reads evaluation output files into the store, one transaction per file:
/// a bad record refuses the whole file (`file:line: reason`) and leaves the
/// database as it was, unless `skipInvalid` asks to skip and report instead.
public struct Ingestor {
    public let store: RunStore

    public init(store: RunStore) { self.store = store }

    public func ingest(_ path: String, options: IngestOptions) throws -> IngestReport {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw InputError(source: path, reason: "no such file")
        }
        let format = try options.format == .auto ? Self.detectFormat(path) : options.format
        let session = IngestSession(store: store, path: path, options: options, format: format)
        var sha = ""
        // A harness output is known before it is read: its samples file with its results file.
        var earlier: [String] = []
        var evaluation: LMEvalReader.Evaluation?
        if format == .lmEval {
            let found = try LMEvalReader.evaluation(of: path)
            evaluation = found
            let identity = LMEvalReader.identity(samplesSHA: try Self.sha256(ofFile: path), evaluation: found)
            earlier = try store.runs(withSourceSHA256: identity)
            if !earlier.isEmpty, !options.force {
                var report = IngestReport(file: path, format: format, sha256: identity)
                report.alreadyIngestedAs = earlier
                return report
            }
        }
        try store.database.execute("PRAGMA foreign_keys = OFF")
        defer { try? store.database.execute("PRAGMA foreign_keys = ON") }
        do {
            try store.database.transaction {
                try store.questions.begin(store.database)
                if !earlier.isEmpty, !Self.keepsEarlier(earlier, options) {
                    // --force: this evaluation's own runs make way for it, no other run.
                    for name in earlier { if let id = try store.runID(named: name) { try store.deleteRun(id) } }
                    session.replaced += earlier
                }
                switch format {
                case .jsonl: sha = try readJSONL(session)
                case .csv: sha = try readCSV(session)
                case .npy: sha = try readNPY(session)
                case .lmEval: sha = try LMEvalReader(session: session, evaluation: evaluation!).read()
                case .auto: preconditionFailure()
                }
                try session.flush()
                try session.dropEmptyBaseRun()
                if session.createdRuns.allSatisfy({ $0.questions == 0 }), session.otherRecords == 0 {
                    let reason = session.skipped.isEmpty ? "no questions found (empty file?)"
                        : "no valid questions: all \(session.skipped.count) rows were skipped"
                    throw InputError(source: path, reason: reason)
                }
                let previous = try store.runs(withSourceSHA256: sha)
                if !previous.isEmpty {
                    guard options.force else { throw Duplicate(runs: previous) }
                    if !Self.keepsEarlier(previous, options) {
                        try store.deleteRuns(withSourceSHA256: sha)
                        session.replaced += previous
                    }
                }
                try session.finishRuns(sourceSHA256: sha)
            }
            store.questions.commit()
        } catch let duplicate as Duplicate {
            store.questions.rollback()
            var report = IngestReport(file: path, format: format, sha256: sha)
            report.alreadyIngestedAs = duplicate.runs
            return report
        } catch let exists as IngestSession.AlreadyExists {
            store.questions.rollback()
            // Same name: is it the same file again?
            let fileSHA = try Self.sha256(ofFile: path)
            let previous = try store.runs(withSourceSHA256: fileSHA)
            if !previous.isEmpty {
                var report = IngestReport(file: path, format: format, sha256: fileSHA)
                report.alreadyIngestedAs = previous
                return report
            }
            throw InputError(source: path, reason: exists.reason, kind: .conflict, remedy: .force)
        } catch {
            store.questions.rollback()
            throw error
        }
        var report = session.report(file: path, sha256: sha)
        if format == .lmEval, evaluation?.file == nil {
            let folder = parentDirectory(of: path)
            let others = ((try? FileManager.default.contentsOfDirectory(atPath: folder.isEmpty ? "." : folder)) ?? [])
                .filter { $0.hasSuffix(".json") && !$0.hasPrefix("samples_") }.sorted()
            report.notes.append(others.isEmpty
                ? "no harness results file beside it: the run's accuracy was not checked against the harness's, and its metadata (model, n-shot, date) is missing"
                : "\(others.prefix(3).joined(separator: ", ")) beside it \(others.count == 1 ? "is" : "are") not a harness results file (a JSON object with \"results\" and \"configs\"): the run's accuracy was not checked against the harness's")
        }
        return report
    }

    private struct Duplicate: Error { var runs: [String] }

    /// Ingests one top-level task group of a harness evaluation as one run per filter, in one
    /// transaction: every subtask's questions keyed under the subtask's name, with its subject
    /// and category (the group just below the top one); each subtask's accuracy checked against
    /// its `acc`, the run's against the group's (size-weighted; or the mean of the subtasks' when
    /// the harness aggregated without weights, recorded in `lm_eval.group_weighting`).
    public func ingestGroup(_ input: TaskGroupInput, options: IngestOptions) throws -> IngestReport {
        let resultsBytes = try readWholeFile(input.resultsFile)
        let json: JSONValue
        do throws(JSONSyntaxError) { json = try JSONParser.parse(resultsBytes) } catch {
            throw InputError(source: input.resultsFile, reason: error.description)
        }
        let resultsSHA = SHA256.hex(of: resultsBytes)
        let groups = TaskGroups(json)
        // The group's identity: its results file with every subtask's samples file.
        var shas: [String] = []
        for file in input.files { shas.append("\(file.task)=\(try Self.sha256(ofFile: file.path))") }
        let identity = SHA256.hex(of: Array("lm-eval-group:\(input.group):\(resultsSHA):\(shas.joined(separator: ","))".utf8))
        let earlier = try store.runs(withSourceSHA256: identity)
        let keepEarlier = Self.keepsEarlier(earlier, options)
        if !earlier.isEmpty, !options.force {
            var report = IngestReport(file: input.resultsFile, format: .lmEval, sha256: identity)
            report.alreadyIngestedAs = earlier
            return report
        }
        let session = IngestSession(store: store, path: input.files[0].path, options: options, format: .lmEval)
        session.alternativeNames = LMEvalReader.alternativeNames
        session.sourceFile = input.resultsFile
        try store.database.execute("PRAGMA foreign_keys = OFF")
        defer { try? store.database.execute("PRAGMA foreign_keys = ON") }
        do {
            try store.database.transaction {
                try store.questions.begin(store.database)
                if !earlier.isEmpty, !keepEarlier {
                    for name in earlier { if let id = try store.runID(named: name) { try store.deleteRun(id) } }
                    session.replaced += earlier
                }
                var totals: [String: (n: Int, hits: Int)] = [:]
                var subtaskAccuracy: [String: [Double]] = [:]
                for file in input.files {
                    session.path = file.path
                    let evaluation = LMEvalReader.Evaluation(file: input.resultsFile, sha256: resultsSHA, json: json, task: file.task)
                    let member = LMEvalReader.GroupMember(group: input.group,
                                                          subject: groups.subject(of: file.task, json: json),
                                                          category: groups.category(of: file.task, top: input.group, json: json))
                    var counts: [String: (n: Int, hits: Int)] = [:]
                    _ = try LMEvalReader(session: session, evaluation: evaluation, group: member).read(totals: &counts)
                    for (filter, count) in counts {
                        totals[filter, default: (0, 0)].n += count.n
                        totals[filter, default: (0, 0)].hits += count.hits
                        if count.n > 0 { subtaskAccuracy[filter, default: []].append(Double(count.hits) / Double(count.n)) }
                    }
                }
                session.path = input.resultsFile
                try session.flush()
                if session.createdRuns.allSatisfy({ $0.questions == 0 }) {
                    throw InputError(source: input.resultsFile, reason: "task group '\(input.group)': no questions found")
                }
                // The run's accuracy against the harness's group acc, per filter.
                if session.skipped.isEmpty {
                    for (filter, count) in totals where count.n > 0 {
                        guard let reported = LMEvalReader.metrics(json, of: input.group).first(where: { $0.metric == "acc" && $0.filter == filter })?.value else { continue }
                        let pooled = Double(count.hits) / Double(count.n)
                        let accuracies = subtaskAccuracy[filter] ?? []
                        let mean = accuracies.reduce(0, +) / Double(max(accuracies.count, 1))
                        if abs(pooled - reported) <= 1e-9 { continue }
                        if abs(mean - reported) <= 1e-9 {
                            for id in session.runIDs {
                                try store.database.execute("INSERT OR REPLACE INTO params(run_id, key, value) VALUES (?, 'lm_eval.group_weighting', 'unweighted mean of subtasks')", [.integer(id)])
                            }
                            continue
                        }
                        throw InputError(source: input.resultsFile, reason: "task group '\(input.group)': accuracy \(JSONValue.format(pooled)) over its \(count.n) samples (filter \(filter)) differs from the harness's group acc \(JSONValue.format(reported)) (nor is that the mean of its subtasks' accuracies): samples and results file do not belong together")
                    }
                }
                try session.finishRuns(sourceSHA256: identity)
            }
            store.questions.commit()
        } catch let exists as IngestSession.AlreadyExists {
            store.questions.rollback()
            throw InputError(source: input.resultsFile, reason: exists.reason, kind: .conflict, remedy: .force)
        } catch {
            store.questions.rollback()
            throw error
        }
        return session.report(file: input.resultsFile, sha256: identity)
    }

    /// Whether `--force` stores an output again as a second run (a new `--run` name) rather
    /// than replacing the runs it made before.
    static func keepsEarlier(_ earlier: [String], _ options: IngestOptions) -> Bool {
        options.force && isNewName(options.metadata.name, besides: earlier)
    }

    /// Whether `name` (a `--run` given) is none of the runs an output made before (nor their
    /// `/<filter>` runs): then `--force` stores the output again under it.
    public static func isNewName(_ name: String, besides earlier: [String]) -> Bool {
        !name.isEmpty && !earlier.contains { $0 == name || $0.hasPrefix(name + "/") }
    }


    /// One input of `track ingest` after folders are expanded.
    public enum Input: Equatable, Sendable {
        /// A file to ingest.
        case file(String)
        /// A harness results file given directly: it is read with its samples files, not alone.
        case resultsFile(String)
        /// A folder holding no harness samples file.
        case emptyFolder(String)
        /// The samples files of every subtask of one top-level lm-evaluation-harness task group
        /// (one evaluation): ingested as one run.
        case taskGroup(TaskGroupInput)
        /// Something to tell the user about the inputs (e.g. a group with subtasks missing).
        case note(String)
    }

    /// One top-level task group of one harness evaluation, with each subtask's samples file.
    public struct TaskGroupInput: Equatable, Sendable {
        public var group: String
        public var resultsFile: String
        /// (subtask, samples file), in the group's order.
        public var files: [SubtaskFile]

        public struct SubtaskFile: Equatable, Sendable {
            public var task: String
            public var path: String
        }
    }

    /// The inputs of the paths given: files as they are (a harness results file is noted, not
    /// ingested); a folder stands for every lm-evaluation-harness samples file below it
    /// (both versions' names), in path order.
    public static func inputs(_ paths: [String], splitGroups: Bool = false) -> [Input] {
        let plain = expand(paths)
        return splitGroups ? plain : groupTasks(plain)
    }

    /// Every input path, folders expanded to their samples files.
    static func expand(_ paths: [String]) -> [Input] {
        paths.flatMap { path -> [Input] in
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [.file(path)] }
            guard isDirectory.boolValue else {
                return LMEvalReader.isResultsFile(path) ? [.resultsFile(path)] : [.file(path)]
            }
            let found = (FileManager.default.subpaths(atPath: path) ?? []).sorted()
                .map { (path as NSString).appendingPathComponent($0) }
                .filter { LMEvalReader.isSamplesFile($0) && !LMEvalReader.isResultsFile($0) }
            return found.isEmpty ? [.emptyFolder(path)] : found.map(Input.file)
        }
    }

    /// Gathers the samples files of each top-level task group of an evaluation (its results
    /// file's `group_subtasks`) into one input, placed where its first file was; a group whose
    /// subtasks are not all given stays one input per file, with a note saying so.
    static func groupTasks(_ inputs: [Input]) -> [Input] {
        struct Found { var task: String; var results: String; var groups: TaskGroups }
        var cache: [String: TaskGroups?] = [:]
        var found: [Int: Found] = [:]
        for (position, input) in inputs.enumerated() {
            guard case .file(let path) = input, LMEvalReader.isSamplesFile(path),
                  let results = LMEvalReader.findResults(besides: path) else { continue }
            if cache[results] == nil {
                let parsed = (try? readWholeFile(results)).flatMap { try? JSONParser.parse($0) }
                cache[results] = .some(parsed.map { TaskGroups($0) })
            }
            guard let entry = cache[results], let groups = entry, !groups.isEmpty else { continue }
            let task = LMEvalReader.taskName(fileName: (path as NSString).lastPathComponent, knownTasks: groups.allTasks)
            found[position] = Found(task: task, results: results, groups: groups)
        }
        guard !found.isEmpty else { return inputs }
        // Per (results file, top-level group): the files of its subtasks.
        var members: [String: [(position: Int, task: String, path: String)]] = [:]
        var order: [String] = []
        var tops: [String: (group: String, results: String, leaves: [String])] = [:]
        for position in found.keys.sorted() {
            let item = found[position]!
            guard let top = item.groups.path(to: item.task).first, case .file(let path) = inputs[position] else { continue }
            let key = item.results + "\u{1F}" + top
            if members[key] == nil {
                order.append(key)
                tops[key] = (top, item.results, item.groups.leaves(of: top))
            }
            members[key, default: []].append((position, item.task, path))
        }
        var replaced: [Int: Input] = [:], dropped: Set<Int> = []
        var notes: [Input] = []
        for key in order {
            let (group, results, leaves) = tops[key]!
            let files = members[key]!
            let tasks = files.map(\.task)
            guard Set(tasks) == Set(leaves), tasks.count == leaves.count else {
                let missing = leaves.filter { !tasks.contains($0) }
                let why = missing.isEmpty ? "a subtask's samples file is given twice"
                    : "\(missing.count) of its \(leaves.count) subtasks have no samples file here (\(missing.prefix(3).joined(separator: ", "))\(missing.count > 3 ? ", …" : ""))"
                notes.append(.note("task group '\(group)' of \(results): \(why); its \(files.count) given subtask files are ingested one run each"))
                continue
            }
            let ordered = leaves.map { leaf in
                TaskGroupInput.SubtaskFile(task: leaf, path: files.first { $0.task == leaf }!.path)
            }
            let first = files.map(\.position).min()!
            replaced[first] = .taskGroup(TaskGroupInput(group: group, resultsFile: results, files: ordered))
            for file in files where file.position != first { dropped.insert(file.position) }
        }
        var result: [Input] = notes
        for (position, input) in inputs.enumerated() where !dropped.contains(position) {
            result.append(replaced[position] ?? input)
        }
        return result
    }

    static func sha256(ofFile path: String) throws -> String {
        let reader = try LineReader(path: path)
        while try reader.nextLine() != nil {}
        return reader.finalizeSHA256()
    }

    // MARK: - Format detection

    /// By extension; `.jsonl`/`.json` files are looked into, since
    /// lm-evaluation-harness samples and generic JSON lines share the suffix.
    public static func detectFormat(_ path: String) throws -> IngestFormat {
        let name = (path as NSString).lastPathComponent.lowercased()
        if name.hasSuffix(".csv") || name.hasSuffix(".tsv") { return .csv }
        if name.hasSuffix(".npy") { return .npy }
        guard name.hasSuffix(".jsonl") || name.hasSuffix(".json") || name.hasSuffix(".ndjson") else {
            throw InputError(source: path, reason: "cannot tell the format from the name", remedy: .format)
        }
        if name.hasPrefix("samples_") { return .lmEval }
        // Peek at the first record.
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw InputError(source: path, reason: "cannot open")
        }
        defer { try? handle.close() }
        let head = String(decoding: handle.readData(ofLength: 1 << 16), as: UTF8.self)
        let trimmed = head.drop(while: { $0.isWhitespace })
        if trimmed.first == "[" || (trimmed.contains("\"doc_id\"") && (trimmed.contains("\"filtered_resps\"") || trimmed.contains("\"resps\""))) {
            return .lmEval
        }
        return .jsonl
    }

    // MARK: - Generic JSON lines

    private func defaultMetadata(_ session: IngestSession) -> RunMetadata {
        var meta = session.options.metadata
        let stem = ((session.path as NSString).lastPathComponent as NSString).deletingPathExtension
        if meta.name.isEmpty { meta.name = stem }
        if meta.dataset == nil { meta.dataset = stem }
        if meta.extraction == nil, session.format == .npy { meta.extraction = "probability" }
        return meta
    }

    private func readJSONL(_ session: IngestSession) throws -> String {
        let reader = try LineReader(path: session.path)
        reader.reportProgress(session.options.progress)
        let base = defaultMetadata(session)
        let run = try session.writer(key: "", metadata: { base })
        session.extractionRunMetadata = { base }
        let methods = Extraction(rawValue: session.options.metadata.extraction ?? "").map { [$0] } ?? Extraction.allCases
        return try session.pipelined(run: run) { emitter in
            var decoder = RecordDecoder()
            while let line = try reader.nextLine() {
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                let lineNumber = reader.lineNumber
                let records: [Record]
                do {
                    records = try decoder.decode(try JSONParser.parse(line))
                } catch let error as JSONSyntaxError {
                    let truncated = !reader.lastLineWasTerminated ? " (the file ends mid-line: truncated?)" : ""
                    guard emitter.emit(.reject(line: lineNumber, reason: error.description + truncated)) else { break }
                    continue
                } catch let error as ValidationError {
                    guard emitter.emit(.reject(line: lineNumber, reason: error.reason, remedy: error.remedy)) else { break }
                    continue
                }
                for record in records {
                    let accepted: Bool
                    switch record {
                    case .prediction(let prediction):
                        accepted = emitter.emit(prediction, line: lineNumber,
                                                context: records.count > 1 ? "question '\(prediction.questionID)': " : "")
                    case .metric(let key, let value, let step):
                        accepted = emitter.emit(.metric(key: key, value: value, step: step))
                    case .pair(let pair):
                        accepted = emitter.emit(.pair(pair, line: lineNumber))
                    case .judgment(let promptID, let opponent, let verdict):
                        accepted = emitter.emit(.judgment(promptID: promptID, opponent: opponent, verdict: verdict, line: lineNumber))
                    case .tokens(let tokens):
                        accepted = emitter.emit(tokens, methods: methods, line: lineNumber)
                    }
                    guard accepted else { return "" }
                }
            }
            return reader.finalizeSHA256()
        }
    }

    // MARK: - CSV

    private func readCSV(_ session: IngestSession) throws -> String {
        let reader = try LineReader(path: session.path)
        reader.reportProgress(session.options.progress)
        guard let headerLine = try reader.nextLine() else {
            throw InputError(source: session.path, reason: "empty file: no header and no questions")
        }
        let header: CSVHeader
        do throws(ValidationError) {
            header = try CSVHeader(String(decoding: headerLine, as: UTF8.self))
        } catch {
            throw InputError(source: session.path, line: 1, reason: error.reason)
        }
        let run = try session.writer(key: "", metadata: { defaultMetadata(session) })
        return try session.pipelined(run: run) { emitter in
            var fields: [CSVField] = []
            var values = [Double](repeating: 0, count: header.optionColumns.count)
            var rowIndex = 0
            func record(_ line: UnsafeRawBufferPointer, lineNumber: Int) -> Bool {
                let accepted: Bool
                do throws(ValidationError) {
                    try CSV.split(line, into: &fields)
                    let prediction = try header.prediction(line, fields: fields, values: &values, rowIndex: rowIndex)
                    accepted = emitter.emit(prediction, line: lineNumber, context: "")
                } catch {
                    let truncated = !reader.lastLineWasTerminated ? " (the file ends mid-line: truncated?)" : ""
                    accepted = emitter.emit(.reject(line: lineNumber, reason: error.reason + truncated, remedy: error.remedy))
                }
                rowIndex += 1
                return accepted
            }
            // A quoted field may hold line breaks (RFC 4180): such a record spans lines.
            var pending: [UInt8] = [], pendingLine = 0
            func quotesOpen(_ bytes: UnsafeRawBufferPointer) -> Bool { bytes.reduce(0) { $0 + ($1 == 0x22 ? 1 : 0) } % 2 == 1 }
            while let line = try reader.nextLine() {
                if pending.isEmpty {
                    if line.isEmpty { continue }
                    if !line.contains(0x22) || !quotesOpen(line) {
                        guard record(line, lineNumber: reader.lineNumber) else { break }
                        continue
                    }
                    pendingLine = reader.lineNumber
                } else {
                    pending.append(0x0A)
                }
                pending.append(contentsOf: line)
                if pending.withUnsafeBytes({ quotesOpen($0) }) { continue }
                let accepted = pending.withUnsafeBytes { record($0, lineNumber: pendingLine) }
                pending.removeAll(keepingCapacity: true)
                guard accepted else { break }
            }
            if !pending.isEmpty {
                _ = emitter.emit(.reject(line: pendingLine, reason: "a quoted field is never closed (the file ends inside it)"))
            }
            return reader.finalizeSHA256()
        }
    }

    // MARK: - NumPy

    /// Rows are read a block at a time, with the labels alongside: memory does not grow with the file.
    private func readNPY(_ session: IngestSession) throws -> String {
        let array = try NPYFile(path: session.path)
        guard array.header.shape.count == 2 else {
            throw InputError(source: session.path, reason: "expected a 2-D array of N questions x K options, found shape \(array.header.shape)")
        }
        guard let labelsPath = session.options.labelsPath else {
            throw InputError(source: session.path, reason: "a .npy file holds no labels", remedy: .labels)
        }
        let labels = try LabelStream(path: labelsPath)
        let (n, k) = (array.header.shape[0], array.header.shape[1])
        let run = try session.writer(key: "", metadata: { defaultMetadata(session) })
        let block = 4096
        for first in stride(from: 0, to: n, by: block) {
            let rows = first..<min(first + block, n)
            let values = try array.rows(rows)
            for i in rows {
                guard let label = try labels.next() else {
                    throw InputError(source: labelsPath, reason: "\(i + (try labels.remainingCount())) labels for \(n) rows of \(session.path)")
                }
                let row = Array(values[((i - first) * k)..<((i - first + 1) * k)])
                try session.write(Prediction(questionID: String(i), label: label, values: .probabilities(row)),
                                  run: run, line: nil, context: "row \(i): ")
            }
        }
        let extra = try labels.remainingCount()
        guard extra == 0 else { throw InputError(source: labelsPath, reason: "\(n + extra) labels for \(n) rows of \(session.path)") }
        return try Self.sha256(ofFile: session.path)
    }
}

/// The labels of a `.npy` file's rows, read one at a time from a 1-D `.npy` array or a text file
/// of one label (an index or a letter) per line.
final class LabelStream {
    private let path: String
    private let array: NPYFile?
    private let lines: LineReader?
    private var block: [Double] = []
    private var position = 0, blockStart = 0

    init(path: String) throws {
        self.path = path
        if path.lowercased().hasSuffix(".npy") {
            let array = try NPYFile(path: path)
            guard array.header.shape.count == 1 else {
                throw InputError(source: path, reason: "labels must be a 1-D array, found shape \(array.header.shape)")
            }
            self.array = array
            lines = nil
        } else {
            array = nil
            lines = try LineReader(path: path)
        }
    }

    /// The next label, or nil at the end.
    func next() throws -> Int? {
        if let array {
            if position == block.count {
                let count = array.header.shape[0]
                let start = blockStart + block.count
                guard start < count else { return nil }
                block = try array.rows(start..<min(start + 4096, count))
                blockStart = start
                position = 0
            }
            let value = block[position], index = blockStart + position
            position += 1
            guard value.rounded() == value, value >= 0, value < 1e9 else {
                throw InputError(source: path, reason: "label \(index) is \(value), not an option index")
            }
            return Int(value)
        }
        guard let lines else { return nil }
        while let line = try lines.nextLine() {
            let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            guard let label = Int(text) ?? RecordDecoder.letterIndex(text) else {
                throw InputError(source: path, line: lines.lineNumber, reason: "'\(text)' is not a label")
            }
            return label
        }
        return nil
    }

    /// How many labels are left (reading them).
    func remainingCount() throws -> Int {
        var count = 0
        while try next() != nil { count += 1 }
        return count
    }
}

/// The columns of a generic CSV file: `id`, `label`, `subject`, `dataset`,
/// and option columns `p0..p{K-1}` (probabilities) or `s0..`/`logit0..`/`logprob0..` (scores).
struct CSVHeader {
    var idColumn: Int?
    var labelColumn: Int
    var subjectColumn: Int?
    var datasetColumn: Int?
    var optionColumns: [Int]
    var isProbability: Bool
    var count: Int
    var names: [String]

    init(_ line: String) throws(ValidationError) {
        let names = try CSV.fields(of: line).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        self.names = names
        count = names.count
        func column(_ candidates: String...) -> Int? { names.firstIndex(where: candidates.contains) }
        idColumn = column("id", "question_id", "doc_id")
        guard let label = column("label", "gold", "target") else {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("{") || trimmed.hasPrefix("[") {
                throw ValidationError("line 1 is JSON, not a CSV header: this is a JSON-lines file (drop --format csv, or give --format jsonl or lm-eval)")
            }
            if names.count == 1, let separator = [";", "\t", "|"].first(where: { trimmed.contains($0) }) {
                let shown = separator == "\t" ? "tabs" : "'\(separator)'"
                throw ValidationError("the header has no 'label' column: its fields are separated by \(shown), and track reads comma-separated CSV "
                                      + "(convert it, e.g. with `tr '\(separator == "\t" ? "\\t" : separator)' ','`, when no field holds a comma)")
            }
            let found = names.joined(separator: ",")
            throw ValidationError("the header has no 'label' column (found: \(found.count > 200 ? found.prefix(200) + "…" : found))")
        }
        labelColumn = label
        subjectColumn = column("subject")
        datasetColumn = column("dataset")
        var probability: [Int: Int] = [:], score: [Int: Int] = [:]
        for (index, name) in names.enumerated() {
            for prefix in ["prob_", "prob", "p_", "p"] where name.hasPrefix(prefix) {
                if let k = Int(name.dropFirst(prefix.count)) { probability[k] = index; break }
            }
            for prefix in ["logit_", "logit", "logprob_", "logprob", "score_", "score", "s_", "s"] where name.hasPrefix(prefix) {
                if let k = Int(name.dropFirst(prefix.count)) { score[k] = index; break }
            }
        }
        if !probability.isEmpty, !score.isEmpty {
            throw ValidationError("the header has both probability and score columns; give one kind")
        }
        isProbability = score.isEmpty
        let chosen = isProbability ? probability : score
        guard chosen.count >= 2 else {
            throw ValidationError("the header needs option columns p0,p1,… (probabilities) or s0,s1,… (scores); found \(names.joined(separator: ","))")
        }
        guard Set(chosen.keys) == Set(0..<chosen.count) else {
            throw ValidationError("option columns must be numbered 0…K-1 without gaps")
        }
        optionColumns = (0..<chosen.count).map { chosen[$0]! }
    }

    func prediction(_ line: UnsafeRawBufferPointer, fields: [CSVField], values: inout [Double],
                    rowIndex: Int) throws(ValidationError) -> Prediction {
        guard fields.count == count else {
            throw ValidationError("expected \(count) fields, found \(fields.count)")
        }
        for (k, column) in optionColumns.enumerated() {
            guard let value = CSV.double(fields[column], in: line) else {
                throw ValidationError("column \(names[column]): '\((try? CSV.text(fields[column], in: line)) ?? "?")' is not a number")
            }
            values[k] = value
        }
        let label: Int
        if let index = CSV.integer(fields[labelColumn], in: line) {
            label = index
        } else {
            let labelText = try CSV.text(fields[labelColumn], in: line)
            guard let letter = RecordDecoder.letterIndex(labelText) else {
                throw ValidationError(labelText.isEmpty ? "missing label" : "label '\(labelText)' is not an option index or letter")
            }
            label = letter
        }
        let id = try idColumn.map { column throws(ValidationError) in try CSV.text(fields[column], in: line) } ?? String(rowIndex)
        return Prediction(questionID: id, label: label,
                          values: isProbability ? .probabilities(values) : .scores(values),
                          subject: try subjectColumn.map { column throws(ValidationError) in try CSV.text(fields[column], in: line) },
                          dataset: try datasetColumn.map { column throws(ValidationError) in try CSV.text(fields[column], in: line) })
    }
}
