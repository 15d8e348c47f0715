import Foundation
import TrackCalibration

/// Logs one run batch by batch, as an evaluation loop produces them.
///
/// `append` validates a batch at once (a bad row throws before anything is
/// kept) and buffers it; the buffer is written in one short transaction when
/// a second has passed since the last write, when it holds many rows, and on
/// `flush`/`finish`. Short transactions keep several writers of one file
/// (one per GPU) from waiting on each other; a writer that dies loses at
/// most its last second, and its run stays marked `running` (unfinished).
public final class RunLogger {
    public let runID: Int64
    public let name: String
    let store: RunStore
    let writer: PredictionWriter
    let validation: ValidationOptions
    /// Called after each commit that wrote something, and when the run is finished: e.g. to send
    /// what was committed on to a shared store.
    public var onCommit: (() throws -> Void)?
    /// Seconds between automatic commits.
    public var commitInterval: Double = 1.0
    /// Rows buffered before a commit regardless of time.
    public var maxBufferedQuestions = 20_000
    /// Checked predictions waiting for the next commit, with the input line each came from.
    private var buffered: [(prediction: CheckedPrediction, line: Int?)] = []
    private var bufferedMetrics: [(key: String, value: Double, step: Int, time: Date)] = []
    private var bufferedPairs: [PreferencePair] = []
    private var bufferedJudgments: [(promptID: String, opponent: String, verdict: String)] = []
    private var bufferedRejects: [(line: Int?, reason: String)] = []
    private var lastCommit = Date()
    public private(set) var questionsWritten = 0
    /// Rows skipped (with `skipInvalid`), kept in `ingest_rejects`.
    public private(set) var rejectedCount = 0
    private var finished = false
    /// Skip a question that conflicts with the store or repeats one of the run
    /// (recording it in `ingest_rejects`) instead of stopping.
    public var skipInvalid = false
    /// The name errors and `ingest_rejects` give the input (e.g. `<stdin>`).
    public var sourceName = "<stream>"
    /// A continued run (`--append`): a metric row it already holds (key, step, value) is not logged again.
    public var skipsLoggedMetrics = false

    /// The run's uuid: each commit checks that the run is still the one this logger started.
    private let uuid: String?

    init(store: RunStore, runID: Int64, name: String, defaultDataset: String, validation: ValidationOptions) throws {
        self.store = store
        self.runID = runID
        self.name = name
        self.validation = validation
        self.uuid = try store.database.scalarText("SELECT uuid FROM runs WHERE run_id = ?", [.integer(runID)])
        self.writer = try PredictionWriter(database: store.database, runID: runID, defaultDataset: defaultDataset,
                                           validation: validation, questions: store.questions)
        // Many short commits: checkpoint the WAL every ~64 MB rather than every 4 MB, so that a
        // page rewritten by each commit (the ends of the indexes) is copied back less often.
        try store.database.execute("PRAGMA wal_autocheckpoint = 16384")
    }

    /// Adds one forward pass's predictions. Throws `ValidationError` naming the
    /// first bad row (0-based within the batch); nothing of that batch is kept.
    /// `line` is where they came from in the input, for messages.
    public func append(_ predictions: [Prediction], line: Int? = nil) throws {
        try append(checked: try Self.checked(predictions, validation: validation), line: line)
    }

    /// A forward pass's predictions checked together (pure; any thread): the first bad row,
    /// 0-based within the batch, rejects them all.
    static func checked(_ predictions: [Prediction], validation: ValidationOptions) throws -> [CheckedPrediction] {
        var checked: [CheckedPrediction] = []
        checked.reserveCapacity(predictions.count)
        for (index, prediction) in predictions.enumerated() {
            do throws(ValidationError) {
                checked.append(try PredictionWriter.checked(prediction, validation: validation))
            } catch {
                throw ValidationError(predictions.count > 1 ? "row \(index) of the batch: \(error.reason)" : error.reason, remedy: error.remedy)
            }
        }
        return checked
    }

    /// Buffers predictions already checked (by `checked`).
    func append(checked: [CheckedPrediction], line: Int?) throws {
        buffered.append(contentsOf: checked.map { ($0, line) })
        try commitIfDue()
    }

    public func append(_ prediction: Prediction, line: Int? = nil) throws { try append([prediction], line: line) }

    /// Records an input row that was skipped (written to `ingest_rejects` with the next commit).
    public func recordReject(line: Int?, reason: String) {
        bufferedRejects.append((line, reason))
        rejectedCount += 1
    }

    /// Logs a scalar metric (e.g. a training loss) at a step.
    public func logMetric(_ key: String, _ value: Double, step: Int = 0, at time: Date = Date()) throws {
        guard value.isFinite else { throw ValidationError("metric '\(key)' is not finite (\(value))") }
        bufferedMetrics.append((key, value, step, time))
        try commitIfDue()
    }

    /// Logs a preference pair's sequence log-likelihoods (win rate, paper Eq. 21).
    public func logPair(_ pair: PreferencePair) throws {
        bufferedPairs.append(pair)
        try commitIfDue()
    }

    /// Logs a judged comparison of this run (A) against another run or a reference (B).
    public func logJudgment(promptID: String, opponent: String, verdict: String) throws {
        guard ["A", "B", "tie"].contains(verdict) else { throw ValidationError("verdict must be A, B or tie") }
        bufferedJudgments.append((promptID, opponent, verdict))
        try commitIfDue()
    }

    /// Commits when the interval has passed or the buffer is full.
    public func commitIfDue() throws {
        if buffered.count >= maxBufferedQuestions || Date().timeIntervalSince(lastCommit) >= commitInterval {
            try flush()
        }
    }

    /// Writes everything buffered in one transaction. A question that conflicts
    /// with the store or repeats one of the run is skipped and recorded with
    /// `skipInvalid`; otherwise the questions before it are committed and the
    /// error names its input line. When the transaction fails, the buffer is
    /// kept, so that nothing is lost if the caller tries again.
    public func flush() throws {
        lastCommit = Date()
        guard !buffered.isEmpty || !bufferedMetrics.isEmpty || !bufferedPairs.isEmpty || !bufferedJudgments.isEmpty
                || !bufferedRejects.isEmpty else { return }
        var failure: (line: Int?, reason: String, remedy: Remedy?)?
        var written = 0
        var rejects = bufferedRejects
        do {
            // Foreign keys are not checked row by row (two table seeks per option row, 12% of a
            // stream's writing): as in `track ingest`, every row names this logger's run, which
            // `checkRunExists` finds under the write lock, and questions the index inserted in this
            // transaction or read from the store (track never deletes a question).
            try store.database.withoutForeignKeyChecks { try store.database.transaction {
                try checkRunExists()
                try store.questions.begin(store.database)
                for item in buffered {
                    do {
                        try writer.write(item.prediction)
                        written += 1
                    } catch let error as ValidationError {
                        let reason = "question '\(item.prediction.questionID)': \(error.reason)"
                        guard skipInvalid else {
                            failure = (item.line, reason, error.remedy)
                            break
                        }
                        rejects.append((item.line, reason))
                    }
                }
                try writer.flush()
                for pair in bufferedPairs { try store.insertPair(runID: runID, pair) }
                for judgment in bufferedJudgments {
                    try store.insertJudgment(runID: runID, promptID: judgment.promptID, opponent: judgment.opponent, verdict: judgment.verdict)
                }
                for metric in bufferedMetrics {
                    try store.insertMetric(runID: runID, key: metric.key, value: metric.value,
                                           step: metric.step, timestamp: metric.time, unlessLogged: skipsLoggedMetrics)
                }
                for reject in rejects {
                    try store.database.execute(
                        "INSERT INTO ingest_rejects(run_id, source, line, reason) VALUES (?, ?, ?, ?)",
                        [.integer(runID), .text(sourceName), reject.line.map { .integer(Int64($0)) } ?? .null, .text(reject.reason)])
                }
            }}
            store.questions.commit()
            writer.committed()
        } catch {
            store.questions.rollback()
            writer.rolledBack()
            throw error
        }
        rejectedCount += rejects.count - bufferedRejects.count
        questionsWritten += written
        // What was committed goes on even when a later row is refused (its error is the caller's).
        defer { try? onCommit?() }
        buffered.removeAll(keepingCapacity: true)
        bufferedMetrics.removeAll(keepingCapacity: true)
        bufferedPairs.removeAll()
        bufferedJudgments.removeAll()
        bufferedRejects.removeAll()
        if let failure {
            if let line = failure.line { throw InputError(source: sourceName, line: line, reason: failure.reason, remedy: failure.remedy) }
            throw ValidationError(failure.reason, remedy: failure.remedy)
        }
    }

    /// Inside a write transaction: the run this logger writes is still there (a `track rm`
    /// while the stream runs stops it, instead of writing rows that belong to no run).
    private func checkRunExists() throws {
        let current = try store.database.scalarText("SELECT uuid FROM runs WHERE run_id = ?", [.integer(runID)])
        guard current != nil, current == uuid else {
            throw StoreError("run '\(name)' was removed while this stream was logging it: \(questionsWritten) questions had been committed to it; nothing more is written", kind: .conflict)
        }
    }

    /// Writes what is buffered and marks the run `finished` (or `failed`).
    public func finish(failed: Bool = false) throws {
        guard !finished else { return }
        if !failed { try flush() }
        try store.database.transaction {
            try checkRunExists()
            try store.setStatus(runID: runID, failed ? .failed : .finished)
        }
        finished = true
        try onCommit?()
    }
}
