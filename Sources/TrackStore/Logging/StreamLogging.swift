import Foundation
import TrackCalibration

/// What the parsing thread of `consume` hands to the logging thread, in input order.
enum StreamItem: Sendable {
    /// One line's predictions, validated together (a bad row rejects the line).
    case predictions([CheckedPrediction], line: Int)
    case metric(key: String, value: Double, step: Int, line: Int)
    case pair(PreferencePair)
    case judgment(promptID: String, opponent: String, verdict: String, line: Int)
    case reject(InputError)
}

/// Lines parsed, and the last line number seen, per batch.
typealias StreamQueue = BlockingQueue<(items: [StreamItem], line: Int), String>

extension RunLogger {
    /// Logs the JSON lines of `reader` as they arrive (predictions, batches, token
    /// records, scalar metrics, pairs, judgments), committing on the clock even while
    /// the producer is quiet, and finishes the run at end of input. A bad line is an
    /// `InputError` (`source:line: reason`); with `skipInvalid` it is recorded in
    /// `ingest_rejects`, passed to `skipped`, and logging goes on. On any error the
    /// valid rows are kept and the run is marked failed before the error is rethrown.
    ///
    /// Reading, JSON parsing and validation run on their own thread, as `track ingest` does,
    /// while this thread writes: a batch goes over as soon as the input pauses, so a slow
    /// evaluation loop's rows are still committed within the commit interval.
    public func consume(_ reader: LineReader, extraction: Extraction, progress: ((Int) -> Void)? = nil,
                        skipped: (InputError) -> Void) throws {
        sourceName = reader.name
        reader.hashes = false   // a logged stream is not identified by its bytes (an ingested file is)
        let queue = StreamQueue()
        let validation = self.validation
        let thread = Thread {
            var decoder = RecordDecoder()
            var batch: [StreamItem] = []
            batch.reserveCapacity(256)
            func send() -> Bool {
                guard !batch.isEmpty else { return true }
                defer { batch.removeAll(keepingCapacity: true) }
                return queue.push((batch, reader.lineNumber))
            }
            do {
                while true {
                    // The input pauses: what was parsed goes over now.
                    if !reader.waitForInput(timeout: 0.05) {
                        guard send(), !queue.isCancelled else { break }
                        continue
                    }
                    guard let line = try reader.nextLine() else { break }
                    if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                    let lineNumber = reader.lineNumber
                    do {
                        var predictions: [Prediction] = []
                        for record in try decoder.decode(try JSONParser.parse(line)) {
                            switch record {
                            case .prediction(let prediction): predictions.append(prediction)
                            case .tokens(let tokens): predictions.append(try tokens.prediction(extraction))
                            case .metric(let key, let value, let step): batch.append(.metric(key: key, value: value, step: step, line: lineNumber))
                            case .pair(let pair): batch.append(.pair(pair))
                            case .judgment(let promptID, let opponent, let verdict):
                                batch.append(.judgment(promptID: promptID, opponent: opponent, verdict: verdict, line: lineNumber))
                            }
                        }
                        if !predictions.isEmpty {
                            batch.append(.predictions(try RunLogger.checked(predictions, validation: validation), line: lineNumber))
                        }
                    } catch let error as JSONSyntaxError {
                        batch.append(.reject(InputError(source: reader.name, line: lineNumber, reason: error.description)))
                    } catch let error as ValidationError {
                        batch.append(.reject(InputError(source: reader.name, line: lineNumber, reason: error.reason, remedy: error.remedy)))
                    }
                    if batch.count >= 256 { guard send() else { break } }
                }
                _ = send()
                queue.finish(.success(""))
            } catch {
                _ = send()
                queue.finish(.failure(error))
            }
        }
        thread.stackSize = 8 << 20
        thread.start()
        do {
            loop: while true {
                switch queue.pop(waitingAtMost: 0.1) {
                case .timedOut:
                    try commitIfDue()
                case .finished:
                    break loop
                case .item(let (items, lastLine)):
                    for item in items {
                        switch item {
                        case .predictions(let checked, let line):
                            try append(checked: checked, line: line)
                        case .metric(let key, let value, let step, let line):
                            do { try logMetric(key, value, step: step) } catch let error as ValidationError {
                                try reject(InputError(source: reader.name, line: line, reason: error.reason, remedy: error.remedy), skipped)
                            }
                        case .pair(let pair): try logPair(pair)
                        case .judgment(let promptID, let opponent, let verdict, let line):
                            do { try logJudgment(promptID: promptID, opponent: opponent, verdict: verdict) } catch let error as ValidationError {
                                try reject(InputError(source: reader.name, line: line, reason: error.reason, remedy: error.remedy), skipped)
                            }
                        case .reject(let error):
                            try reject(error, skipped)
                        }
                    }
                    progress?(lastLine)
                }
            }
            if case .failure(let error) = queue.outcome() { throw error }
            try finish()
        } catch {
            // The reading thread stops at its next batch or pause (it may be waiting on input).
            queue.cancel()
            try? flush()
            try? finish(failed: true)
            throw error
        }
    }

    private func reject(_ error: InputError, _ skipped: (InputError) -> Void) throws {
        guard skipInvalid else { throw error }
        recordReject(line: error.line, reason: error.reason)
        skipped(error)
    }
}
