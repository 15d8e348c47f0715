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
                if !earlier.isEmpty {
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
                    try store.deleteRuns(withSourceSHA256: sha)
                    session.replaced += previous
                }
                for id in session.runIDs {
                    for skipped in session.skipped {
                        try store.database.execute(
                            "INSERT INTO ingest_rejects(run_id, source, line, reason) VALUES (?, ?, ?, ?)",
                            [.integer(id), .text(skipped.source), skipped.line.map { .integer(Int64($0)) } ?? .null,
                             .text(skipped.reason)])
                    }
                    try store.database.execute(
                        "UPDATE runs SET source_sha256 = ?, status = 'finished', finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE run_id = ?",
                        [.text(sha), .integer(id)])
                }
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
        var report = IngestReport(file: path, format: format, sha256: sha)
        report.runs = session.createdRuns
        report.skipped = session.skipped
        report.replaced = Array(Set(session.replaced)).sorted()
        return report
    }

    private struct Duplicate: Error { var runs: [String] }

    /// One input of `track ingest` after folders are expanded.
    public enum Input: Equatable, Sendable {
        /// A file to ingest.
        case file(String)
        /// A harness results file given directly: it is read with its samples files, not alone.
        case resultsFile(String)
        /// A folder holding no harness samples file.
        case emptyFolder(String)
    }

    /// The inputs of the paths given: files as they are (a harness results file is noted, not
    /// ingested); a folder stands for every lm-evaluation-harness samples file below it
    /// (both versions' names), in path order.
    public static func inputs(_ paths: [String]) -> [Input] {
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

    private func readNPY(_ session: IngestSession) throws -> String {
        let array = try NPYArray.read(path: session.path)
        guard array.shape.count == 2 else {
            throw InputError(source: session.path, reason: "expected a 2-D array of N questions x K options, found shape \(array.shape)")
        }
        guard let labelsPath = session.options.labelsPath else {
            throw InputError(source: session.path, reason: "a .npy file holds no labels", remedy: .labels)
        }
        let labels = try Self.readLabels(labelsPath)
        let (n, k) = (array.shape[0], array.shape[1])
        guard labels.count == n else {
            throw InputError(source: labelsPath, reason: "\(labels.count) labels for \(n) rows of \(session.path)")
        }
        let run = try session.writer(key: "", metadata: { defaultMetadata(session) })
        for i in 0..<n {
            let row = Array(array.values[(i * k)..<((i + 1) * k)])
            try session.write(Prediction(questionID: String(i), label: labels[i], values: .probabilities(row)),
                              run: run, line: nil, context: "row \(i): ")
        }
        return SHA256.hex(of: try readWholeFile(session.path))
    }

    static func readLabels(_ path: String) throws -> [Int] {
        if path.lowercased().hasSuffix(".npy") {
            let array = try NPYArray.read(path: path)
            guard array.shape.count == 1 else {
                throw InputError(source: path, reason: "labels must be a 1-D array, found shape \(array.shape)")
            }
            return try array.values.enumerated().map { index, value in
                guard value.rounded() == value, value >= 0, value < 1e9 else {
                    throw InputError(source: path, reason: "label \(index) is \(value), not an option index")
                }
                return Int(value)
            }
        }
        let reader = try LineReader(path: path)
        var labels: [Int] = []
        while let line = try reader.nextLine() {
            let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            guard let label = Int(text) ?? RecordDecoder.letterIndex(text) else {
                throw InputError(source: path, line: reader.lineNumber, reason: "'\(text)' is not a label")
            }
            labels.append(label)
        }
        return labels
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
            throw ValidationError("the header has no 'label' column (found: \(names.joined(separator: ",")))")
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
