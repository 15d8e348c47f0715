import Foundation
import TrackCalibration
import TrackStore

/// `track log`: JSON lines on stdin, appended as they arrive.
enum LogCommand: Command {
    static let spec = CommandSpec(
        name: "log", abstract: "Log a run from JSON lines on standard input, as an evaluation loop writes them.",
        usage: "--run <name> [metadata options] [--append] [--skip-invalid] [--renormalize]",
        discussion: """
        Each line is one question, a forward-pass batch, or a scalar metric:
          {"id": "q1", "label": 2, "probs": [0.1, 0.2, 0.6, 0.1], "subject": "anatomy"}
          {"id": "q2", "label": "B", "logits": [1.2, 3.4, 0.1, -0.5]}
          {"batch": [{"id": "q3", ...}, {"id": "q4", ...}]}
          {"ids": ["q5", "q6"], "labels": [0, 3], "logprobs": [[...], [...]]}
          {"metric": "loss", "value": 0.41, "step": 100}
        Rows are committed at least every second and at end of input, in short
        transactions, so several writers can share one database. A writer killed
        mid-stream keeps every committed row and leaves its run marked 'running'.
        Example: python eval.py | track log --run llama-dpo-e1 --model llama --method DPO
        """,
        options: SharedOptions.database + SharedOptions.metadata + SharedOptions.validation + [
            .flag("append", "Add to an existing run of that name instead of refusing it."),
        ])

    static func run(_ arguments: ParsedArguments) throws {
        guard arguments.positionals.isEmpty else { throw UsageError(message: "unexpected argument '\(arguments.positionals[0])' (input comes on stdin)") }
        let metadata = try SharedOptions.metadata(arguments)
        guard !metadata.name.isEmpty else { throw UsageError(message: "--run <name> is required") }
        var meta = metadata
        meta.sourceFormat = "stream"
        let store = try SharedOptions.openStore(arguments)
        let logger: RunLogger
        do {
            logger = try store.startRun(meta, validation: SharedOptions.validation(arguments), append: arguments.flag("append"))
        } catch let error as ValidationError {
            throw CommandFailure(message: error.reason + (arguments.flag("append") ? "" : " (or pass --append)"))
        }
        if metadata.dataset == nil {
            Console.err("note: no --dataset: questions without a \"dataset\" field are keyed by their ids alone, so runs over the same ids pair\n")
        }
        logger.commitInterval = 0.9
        let skipInvalid = arguments.flag("skip-invalid")
        logger.skipInvalid = skipInvalid
        logger.sourceName = "<stdin>"
        let reader = LineReader(descriptor: 0, name: "<stdin>")
        var decoder = RecordDecoder()
        do {
            while true {
                // Commit on the clock even while the producer is quiet.
                if !reader.waitForInput(timeout: 0.1) {
                    try logger.commitIfDue()
                    continue
                }
                guard let line = try reader.nextLine() else { break }
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                let lineNumber = reader.lineNumber
                do {
                    for record in try decoder.decode(try JSONParser.parse(line)) {
                        switch record {
                        case .prediction(let prediction): try logger.append(prediction, line: lineNumber)
                        case .metric(let key, let value, let step): try logger.logMetric(key, value, step: step)
                        case .pair(let pair): try logger.logPair(pair)
                        case .judgment(let promptID, let opponent, let verdict):
                            try logger.logJudgment(promptID: promptID, opponent: opponent, verdict: verdict)
                        case .tokens(let tokens):
                            // One run per stream: the extraction method of --extraction (default continuation-sum).
                            let method = Extraction(rawValue: metadata.extraction ?? "") ?? .sum
                            try logger.append(try tokens.prediction(method), line: lineNumber)
                        }
                    }
                } catch let error as JSONSyntaxError {
                    try reject(InputError(source: "<stdin>", line: lineNumber, reason: error.description), logger)
                } catch let error as ValidationError {
                    try reject(InputError(source: "<stdin>", line: lineNumber, reason: error.reason), logger)
                }
            }
            try logger.finish()
        } catch {
            // Keep what was valid, mark the run failed, then report.
            try? logger.flush()
            try? logger.finish(failed: true)
            throw error
        }
        Console.out("logged \(logger.questionsWritten) questions to run '\(logger.name)'" +
                    (logger.rejectedCount > 0 ? " (\(logger.rejectedCount) rows skipped; see ingest_rejects)" : "") + "\n")
    }

    private static func reject(_ error: InputError, _ logger: RunLogger) throws {
        guard logger.skipInvalid else { throw error }
        logger.recordReject(line: error.line, reason: error.reason)
        Console.err("Warning: \(error) (skipped)\n")
    }
}
