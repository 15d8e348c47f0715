import Foundation
import TrackCalibration

extension RunLogger {
    /// Logs the JSON lines of `reader` as they arrive (predictions, batches, token
    /// records, scalar metrics, pairs, judgments), committing on the clock even while
    /// the producer is quiet, and finishes the run at end of input. A bad line is an
    /// `InputError` (`source:line: reason`); with `skipInvalid` it is recorded in
    /// `ingest_rejects`, passed to `skipped`, and logging goes on. On any error the
    /// valid rows are kept and the run is marked failed before the error is rethrown.
    public func consume(_ reader: LineReader, extraction: Extraction, progress: ((Int) -> Void)? = nil,
                        skipped: (InputError) -> Void) throws {
        sourceName = reader.name
        var decoder = RecordDecoder()
        func reject(_ error: InputError) throws {
            guard skipInvalid else { throw error }
            recordReject(line: error.line, reason: error.reason)
            skipped(error)
        }
        do {
            while true {
                if !reader.waitForInput(timeout: 0.1) {
                    try commitIfDue()
                    continue
                }
                guard let line = try reader.nextLine() else { break }
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                let lineNumber = reader.lineNumber
                if lineNumber % 1024 == 0 { progress?(lineNumber) }
                do {
                    for record in try decoder.decode(try JSONParser.parse(line)) {
                        switch record {
                        case .prediction(let prediction): try append(prediction, line: lineNumber)
                        case .metric(let key, let value, let step): try logMetric(key, value, step: step)
                        case .pair(let pair): try logPair(pair)
                        case .judgment(let promptID, let opponent, let verdict):
                            try logJudgment(promptID: promptID, opponent: opponent, verdict: verdict)
                        case .tokens(let tokens): try append(try tokens.prediction(extraction), line: lineNumber)
                        }
                    }
                } catch let error as JSONSyntaxError {
                    try reject(InputError(source: reader.name, line: lineNumber, reason: error.description))
                } catch let error as ValidationError {
                    try reject(InputError(source: reader.name, line: lineNumber, reason: error.reason, remedy: error.remedy))
                }
            }
            try finish()
        } catch {
            try? flush()
            try? finish(failed: true)
            throw error
        }
    }
}
