import Foundation

/// What the parsing thread hands to the writing thread.
enum ParsedItem: Sendable {
    case prediction(CheckedPrediction, line: Int?, context: String)
    case metric(key: String, value: Double, step: Int)
    case reject(line: Int?, reason: String)
}

/// A bounded queue of batches between one producer and one consumer thread.
final class BatchQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var batches: [[ParsedItem]] = []
    private var finished = false
    private var result: Result<String, any Error>?
    private var cancelled = false
    private let capacity: Int

    init(capacity: Int = 8) { self.capacity = capacity }

    /// Adds a batch, waiting while the queue is full; false once the consumer has cancelled.
    func push(_ batch: [ParsedItem]) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while batches.count >= capacity && !cancelled { condition.wait() }
        if cancelled { return false }
        batches.append(batch)
        condition.broadcast()
        return true
    }

    /// The producer is done: with the file's SHA-256, or with an error.
    func finish(_ outcome: Result<String, any Error>) {
        condition.lock()
        result = outcome
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next batch, or nil when the producer has finished and the queue is empty.
    func pop() -> [ParsedItem]? {
        condition.lock()
        defer { condition.unlock() }
        while batches.isEmpty && !finished { condition.wait() }
        if batches.isEmpty { return nil }
        let batch = batches.removeFirst()
        condition.broadcast()
        return batch
    }

    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits for the producer's outcome.
    func outcome() -> Result<String, any Error> {
        condition.lock()
        defer { condition.unlock() }
        while !finished { condition.wait() }
        return result!
    }
}

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
    /// Validates on the producer's thread: a bad row becomes a reject.
    mutating func emit(_ prediction: Prediction, line: Int?, context: String) -> Bool {
        do throws(ValidationError) {
            return emit(.prediction(try PredictionWriter.checked(prediction, validation: validation), line: line, context: context))
        } catch {
            return emit(.reject(line: line, reason: context + error.reason))
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
                    case .reject(let line, let reason):
                        try reject(line: line, reason: reason)
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
