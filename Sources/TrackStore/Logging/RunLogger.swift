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
    /// Seconds between automatic commits.
    public var commitInterval: Double = 1.0
    /// Rows buffered before a commit regardless of time.
    public var maxBufferedQuestions = 20_000
    private var buffered: [CheckedPrediction] = []
    private var bufferedMetrics: [(key: String, value: Double, step: Int, time: Date)] = []
    private var bufferedPairs: [PreferencePair] = []
    private var bufferedJudgments: [(promptID: String, opponent: String, verdict: String)] = []
    private var lastCommit = Date()
    public private(set) var questionsWritten = 0
    private var finished = false

    init(store: RunStore, runID: Int64, name: String, defaultDataset: String, validation: ValidationOptions) throws {
        self.store = store
        self.runID = runID
        self.name = name
        self.validation = validation
        self.writer = try PredictionWriter(database: store.database, runID: runID, defaultDataset: defaultDataset,
                                           validation: validation, questions: store.questions)
    }

    /// Adds one forward pass's predictions. Throws `ValidationError` naming the
    /// first bad row (0-based within the batch); nothing of that batch is kept.
    public func append(_ predictions: [Prediction]) throws {
        var checked: [CheckedPrediction] = []
        checked.reserveCapacity(predictions.count)
        for (index, prediction) in predictions.enumerated() {
            do throws(ValidationError) {
                checked.append(try PredictionWriter.checked(prediction, validation: validation))
            } catch {
                throw ValidationError(predictions.count > 1 ? "row \(index) of the batch: \(error.reason)" : error.reason)
            }
        }
        buffered.append(contentsOf: checked)
        try commitIfDue()
    }

    public func append(_ prediction: Prediction) throws { try append([prediction]) }

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

    /// Writes everything buffered in one transaction.
    public func flush() throws {
        lastCommit = Date()
        guard !buffered.isEmpty || !bufferedMetrics.isEmpty || !bufferedPairs.isEmpty || !bufferedJudgments.isEmpty else { return }
        let batch = buffered
        let metrics = bufferedMetrics
        let pairs = bufferedPairs, judgments = bufferedJudgments
        buffered.removeAll(keepingCapacity: true)
        bufferedMetrics.removeAll(keepingCapacity: true)
        bufferedPairs.removeAll()
        bufferedJudgments.removeAll()
        do {
            try store.database.transaction {
                try store.questions.begin(store.database)
                for prediction in batch {
                    do {
                        try writer.write(prediction)
                    } catch let error as ValidationError {
                        throw ValidationError("question '\(prediction.questionID)': \(error.reason)")
                    }
                }
                try writer.flush()
                for pair in pairs { try store.insertPair(runID: runID, pair) }
                for judgment in judgments {
                    try store.insertJudgment(runID: runID, promptID: judgment.promptID, opponent: judgment.opponent, verdict: judgment.verdict)
                }
                for metric in metrics {
                    try store.insertMetric(runID: runID, key: metric.key, value: metric.value,
                                           step: metric.step, timestamp: metric.time)
                }
            }
            store.questions.commit()
            questionsWritten += batch.count
        } catch {
            store.questions.rollback()
            writer.rollback()
            throw error
        }
    }

    /// Writes what is buffered and marks the run `finished` (or `failed`).
    public func finish(failed: Bool = false) throws {
        guard !finished else { return }
        if !failed { try flush() }
        try store.database.transaction {
            try store.setStatus(runID: runID, failed ? "failed" : "finished")
        }
        finished = true
    }
}
