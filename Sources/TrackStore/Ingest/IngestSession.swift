import Foundation
import TrackCalibration

/// The state of ingesting one file inside its single transaction: the runs it
/// creates (lazily, as records name them), their writers, and skipped rows.
final class IngestSession {
    let store: RunStore
    /// The file being read (a task group's run reads several in turn).
    var path: String
    let options: IngestOptions
    let format: IngestFormat
    private var runs: [(key: String, name: String, id: Int64, writer: PredictionWriter, count: Int)] = []
    private var runIndex: [String: Int] = [:]
    var skipped: [InputError] = []
    /// Preference pairs and judgments written (files may hold only those).
    var otherRecords = 0
    var replaced: [String] = []

    init(store: RunStore, path: String, options: IngestOptions, format: IngestFormat) {
        self.store = store
        self.path = path
        self.options = options
        self.format = format
    }

    var createdRuns: [IngestReport.RunReport] { runs.map { .init(name: $0.name, questions: $0.count) } }
    var runIDs: [Int64] { runs.map(\.id) }

    /// Other names for a run whose name another run holds (tried in order), e.g. an
    /// evaluation's n-shot or date; nil: a taken name is a conflict.
    var alternativeNames: ((_ new: RunMetadata, _ holder: RunMetadata?) -> [String])?
    /// The file recorded as the runs' source (default: `path`), e.g. a task group's results file.
    var sourceFile: String?

    /// The writer of the run identified by `key`, creating the run from `metadata()` on first use.
    /// With `force`, a run of the same name ingested from the same file is replaced; a run of
    /// that name from elsewhere is never touched.
    func writer(key: String, metadata: () throws -> RunMetadata) throws -> Int {
        if let index = runIndex[key] { return index }
        var meta = try metadata()
        meta.sourceFile = Self.absolute(sourceFile ?? path)
        meta.sourceFormat = format.rawValue
        if options.force, let existing = try store.runID(named: meta.name),
           try store.database.scalarText("SELECT source_file FROM runs WHERE run_id = ?", [.integer(existing)]) == meta.sourceFile {
            try store.deleteRun(existing)
            replaced.append(meta.name)
        }
        if let alternatives = alternativeNames, try store.runID(named: meta.name) != nil {
            let base = meta.name
            var candidates = alternatives(meta, try store.runMetadata(named: base))
            candidates += (2...99).map { "\(candidates.last ?? base) #\($0)" }
            if let free = try candidates.first(where: { try store.runID(named: $0) == nil }) { meta.name = free }
        }
        let id: Int64
        do {
            id = try store.insertRun(meta)
        } catch let error as ValidationError {
            throw AlreadyExists(name: meta.name, reason: error.reason)
        }
        let writer = try PredictionWriter(database: store.database, runID: id,
                                          defaultDataset: meta.dataset ?? "", validation: options.validation,
                                          questions: store.questions)
        runs.append((key, meta.name, id, writer, 0))
        runIndex[key] = runs.count - 1
        return runs.count - 1
    }

    /// A path as stored with a run: absolute, so that the record says where the file was.
    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? (path as NSString).standardizingPath
            : ((FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path) as NSString).standardizingPath
    }

    /// A run name collision, which may turn out to be a re-ingest of the same file.
    struct AlreadyExists: Error {
        var name: String
        var reason: String
    }

    /// Derives the runs of extraction methods from the file's run: `<name>/<method>`,
    /// with the method recorded; set by the reader before predictions arrive.
    var extractionRunMetadata: (() -> RunMetadata)?

    func extractionRun(_ method: Extraction) throws -> Int {
        try writer(key: method.rawValue) {
            guard var meta = extractionRunMetadata?() else { throw StoreError("no run for extracted scores") }
            meta.name += "/\(method.rawValue)"
            meta.extraction = method.rawValue
            return meta
        }
    }

    /// A file of token records only leaves its base run empty: remove it (and keep the derived runs).
    func dropEmptyBaseRun() throws {
        guard let index = runIndex[""], runs[index].count == 0, otherRecords == 0, runs.count > 1 else { return }
        try store.deleteRun(runs[index].id)
        runs.remove(at: index)
        runIndex = Dictionary(uniqueKeysWithValues: runs.enumerated().map { ($1.key, $0) })
    }

    /// Ends every run the file made, in its transaction: the skipped rows kept with each, the
    /// output's identity recorded (a re-ingest is noticed), status `finished`.
    func finishRuns(sourceSHA256 sha: String) throws {
        for id in runIDs {
            for skipped in skipped {
                try store.database.execute(
                    "INSERT INTO ingest_rejects(run_id, source, line, reason) VALUES (?, ?, ?, ?)",
                    [.integer(id), .text(skipped.source), skipped.line.map { .integer(Int64($0)) } ?? .null, .text(skipped.reason)])
            }
            try store.database.execute(
                "UPDATE runs SET source_sha256 = ?, status = 'finished', finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE run_id = ?",
                [.text(sha), .integer(id)])
        }
    }

    /// What the ingest made, once it committed.
    func report(file: String, sha256: String) -> IngestReport {
        var report = IngestReport(file: file, format: format, sha256: sha256)
        report.runs = createdRuns
        report.skipped = skipped
        report.replaced = Array(Set(replaced)).sorted()
        return report
    }

    /// Writes every run's queued rows; call before the transaction commits.
    func flush() throws {
        for run in runs { try run.writer.flush() }
    }

    /// Writes one already checked prediction to run `index`, or records it as skipped.
    func write(checked prediction: CheckedPrediction, run index: Int, line: Int?, context: String = "") throws {
        do {
            try runs[index].writer.write(prediction)
            runs[index].count += 1
        } catch let error as ValidationError {
            try reject(line: line, reason: context + error.reason, remedy: error.remedy)
        }
    }

    /// Checks and writes one prediction to run `index`, or records it as skipped.
    func write(_ prediction: Prediction, run index: Int, line: Int?, context: String = "") throws {
        let checked: CheckedPrediction
        do throws(ValidationError) {
            checked = try PredictionWriter.checked(prediction, validation: options.validation)
        } catch {
            return try reject(line: line, reason: context + error.reason, remedy: error.remedy)
        }
        try write(checked: checked, run: index, line: line, context: context)
    }

    /// Inserts a pair or judgment; a duplicate is a bad record.
    func insert(line: Int?, _ body: () throws -> Void) throws {
        do {
            try body()
            otherRecords += 1
        } catch let error as ValidationError {
            try reject(line: line, reason: error.reason)
        }
    }

    /// A bad record: fatal unless skipping was asked for.
    func reject(line: Int?, reason: String, remedy: Remedy? = nil) throws {
        let error = InputError(source: path, line: line, reason: reason, remedy: remedy)
        if options.skipInvalid { skipped.append(error) } else { throw error }
    }

    func logMetric(run index: Int, key: String, value: Double, step: Int) throws {
        try store.insertMetric(runID: runs[index].id, key: key, value: value, step: step, timestamp: Date())
    }

    func setParam(run index: Int, key: String, value: String) throws {
        try store.database.execute(
            "INSERT INTO params(run_id, key, value) VALUES (?, ?, ?) ON CONFLICT(run_id, key) DO UPDATE SET value = excluded.value",
            [.integer(runs[index].id), .text(key), .text(value)])
    }
}
