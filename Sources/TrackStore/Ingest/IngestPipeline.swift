import Foundation
import TrackCalibration

/// What the parsing thread hands to the writing thread.
enum ParsedItem: Sendable {
    case prediction(CheckedPrediction, line: Int?, context: String)
    case metric(key: String, value: Double, step: Int)
    case reject(line: Int?, reason: String, remedy: Remedy? = nil)
    case pair(PreferencePair, line: Int?)
    /// A prediction for the run of one extraction method.
    case extracted(CheckedPrediction, method: Extraction, line: Int?)
    case judgment(promptID: String, opponent: String, verdict: String, line: Int?)
}

/// Batches of parsed items, with the producer's SHA-256 as its outcome.
typealias BatchQueue = BlockingQueue<[ParsedItem], String>

/// Collects parsed items into batches for the queue.
struct BatchEmitter {
    let queue: BatchQueue
    let validation: ValidationOptions
    var batch: [ParsedItem] = []
    let batchSize = 2048

    init(queue: BatchQueue, validation: ValidationOptions) {
        self.queue = queue
        self.validation = validation
        batch.reserveCapacity(batchSize)
    }

    /// False when the consumer stopped listening; the producer should stop too.
    /// The predictions of each extraction method, validated here.
    mutating func emit(_ tokens: TokenPrediction, methods: [Extraction], line: Int?) -> Bool {
        for method in methods {
            do throws(ValidationError) {
                let checked = try PredictionWriter.checked(try tokens.prediction(method), validation: validation)
                guard emit(.extracted(checked, method: method, line: line)) else { return false }
            } catch {
                return emit(.reject(line: line, reason: "question '\(tokens.questionID)': \(error.reason)", remedy: error.remedy))
            }
        }
        return true
    }

    /// Validates on the producer's thread: a bad row becomes a reject.
    mutating func emit(_ prediction: Prediction, line: Int?, context: String) -> Bool {
        do throws(ValidationError) {
            return emit(.prediction(try PredictionWriter.checked(prediction, validation: validation), line: line, context: context))
        } catch {
            return emit(.reject(line: line, reason: context + error.reason, remedy: error.remedy))
        }
    }

    mutating func emit(_ item: ParsedItem) -> Bool {
        batch.append(item)
        if batch.count >= batchSize { return flush() }
        return true
    }

    mutating func flush() -> Bool {
        guard !batch.isEmpty else { return true }
        defer { batch.removeAll(keepingCapacity: true) }
        return queue.push(batch)
    }
}

extension IngestSession {
    /// Runs `produce` (reading and parsing) on its own thread while this
    /// thread validates and writes what it yields into run `run`, so that
    /// parsing and SQLite use both cores. Returns the producer's SHA-256.
    func pipelined(run: Int, _ produce: @escaping @Sendable (inout BatchEmitter) throws -> String) throws -> String {
        let queue = BatchQueue()
        let validation = options.validation
        let thread = Thread {
            var emitter = BatchEmitter(queue: queue, validation: validation)
            do {
                let sha = try produce(&emitter)
                _ = emitter.flush()
                queue.finish(.success(sha))
            } catch {
                _ = emitter.flush()
                queue.finish(.failure(error))
            }
        }
        thread.stackSize = 8 << 20
        thread.start()
        do {
            while let batch = queue.pop() {
                for item in batch {
                    switch item {
                    case .prediction(let prediction, let line, let context):
                        try write(checked: prediction, run: run, line: line, context: context)
                    case .metric(let key, let value, let step):
                        try logMetric(run: run, key: key, value: value, step: step)
                    case .reject(let line, let reason, let remedy):
                        try reject(line: line, reason: reason, remedy: remedy)
                    case .extracted(let prediction, let method, let line):
                        try write(checked: prediction, run: try extractionRun(method), line: line)
                    case .pair(let pair, let line):
                        try insert(line: line) { try store.insertPair(runID: runIDs[run], pair) }
                    case .judgment(let promptID, let opponent, let verdict, let line):
                        try insert(line: line) { try store.insertJudgment(runID: runIDs[run], promptID: promptID, opponent: opponent, verdict: verdict) }
                    }
                }
            }
        } catch {
            queue.cancel()
            _ = queue.outcome()
            throw error
        }
        return try queue.outcome().get()
    }
}
