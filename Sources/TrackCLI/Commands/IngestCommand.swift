import Foundation
import TrackStore

/// `track ingest`: files that evaluation harnesses already write.
enum IngestCommand: Command {
    static let spec = CommandSpec(
        name: "ingest", abstract: "Ingest evaluation outputs: lm-evaluation-harness samples, JSONL, CSV, .npy.",
        usage: "<file>... [--format auto|jsonl|csv|lm-eval|npy] [--labels <file>] [metadata options] [--force] [--skip-invalid]",
        discussion: """
        Each file is ingested in one transaction: a bad row refuses the file with
        file:line: reason and leaves the database as it was (--skip-invalid skips
        and reports bad rows instead). A file ingested before (same SHA-256) is
        left alone unless --force, which replaces its runs.
        lm-evaluation-harness --log_samples files give one run per (task, filter),
        with metadata from a results_*.json beside them.
        """,
        arguments: [("<file>...", "Input files.")],
        options: SharedOptions.database + SharedOptions.metadata + SharedOptions.validation + [
            .value("format", "format", "auto (default), jsonl, csv, lm-eval or npy."),
            .value("labels", "file", "Labels for .npy input (.npy of integers, or one label per line)."),
            .flag("force", "Ingest again a file already ingested, replacing its runs."),
        ])

    static func run(_ arguments: ParsedArguments) throws {
        guard !arguments.positionals.isEmpty else { throw UsageError(message: "no input files") }
        let formatName = try arguments.choice("format", IngestFormat.allCases.map(\.rawValue), default: "auto")
        var options = IngestOptions()
        options.format = IngestFormat(rawValue: formatName)!
        options.metadata = try SharedOptions.metadata(arguments)
        options.skipInvalid = arguments.flag("skip-invalid")
        options.force = arguments.flag("force")
        options.validation = SharedOptions.validation(arguments)
        options.labelsPath = arguments.value("labels")
        let store = try SharedOptions.openStore(arguments)
        let ingestor = Ingestor(store: store)
        var failures = 0
        for path in arguments.positionals {
            do {
                let report = try ingestor.ingest(path, options: options)
                for skipped in report.skipped { Console.err("Warning: \(skipped) (skipped)\n") }
                if !report.alreadyIngestedAs.isEmpty {
                    Console.out("\(path): already ingested as \(report.alreadyIngestedAs.map { "'\($0)'" }.joined(separator: ", ")); nothing changed (pass --force to ingest it again)\n")
                    continue
                }
                for run in report.runs {
                    Console.out("\(path): \(run.questions) questions -> run '\(run.name)' (\(report.format.rawValue))\n")
                }
                if arguments.value("dataset") == nil, report.format != .lmEval, !report.runs.isEmpty {
                    let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
                    Console.err("note: questions without a dataset field are keyed under dataset '\(stem)' (the file's name); pass --dataset to pair them with runs from other files\n")
                }
                if !report.replaced.isEmpty { Console.out("  replaced: \(report.replaced.joined(separator: ", "))\n") }
                if !report.skipped.isEmpty { Console.out("  skipped \(report.skipped.count) invalid rows\n") }
            } catch {
                failures += 1
                Console.err("Error: \(error)\n")
                Console.err("  \(path): nothing was ingested; the database is unchanged.\n")
            }
        }
        if failures > 0 { throw CommandFailure(message: "", status: 1) }
    }
}
