import Foundation
import TrackAnalysis
import TrackCalibration
import TrackStore

/// `track log`: JSON lines on stdin, appended as they arrive.
enum LogCommand: Command {
    static let spec = CommandSpec(
        name: "log", abstract: "Log a run from JSON lines on standard input, as an evaluation loop writes them.",
        usage: "--run <name> [metadata options] [--append | --replace] [--skip-invalid] [--renormalize]",
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
        options: Options.database + Options.metadata + Options.validation + [append, replace])

    static let append = Option.flag("append", "Add to an existing run of that name instead of refusing it (metric rows it holds are not logged twice).")
    static let replace = Option.flag("replace", "Delete an existing run of that name (with everything it owns) and log it anew.")

    static func validate(_ arguments: ParsedArguments) throws {
        _ = try arguments.positionals(0, "no arguments (input comes on stdin)")
        guard arguments.value(Options.run)?.isEmpty == false else { throw UsageError(message: "--run <name> is required") }
        if arguments.flag(append), arguments.flag(replace) { throw UsageError(message: "--append continues a run and --replace starts it over; give one") }
    }

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        var meta = try session.metadata()
        meta.sourceFormat = "stream"
        let logger: RunLogger
        do {
            if arguments.flag(replace), session.isPostgres {
                throw UsageError(message: "--replace on a PostgreSQL store: remove the run first with `track rm \(meta.name)`, then log it")
            }
            logger = try session.store(appending: arguments.flag(append) ? meta.name : nil).startRun(meta, validation: ValidationOptions(renormalize: arguments.flag(Options.renormalize)),
                                                  append: arguments.flag(append), replace: arguments.flag(replace))
        } catch let error as ValidationError where error.kind == .conflict {
            throw CommandFailure(message: TrackCLI.describe(error) + " (pass --append to add to it, --replace to log it anew, or remove it with `track rm \(meta.name)`)")
        }
        if meta.dataset == nil {
            Console.err("note: no --dataset: questions without a \"dataset\" field are keyed by their ids alone, so runs over the same ids pair\n")
        }
        logger.commitInterval = 0.9
        session.streamToServer(logger)
        logger.skipInvalid = arguments.flag(Options.skipInvalid)
        // One run per stream: token records use --extraction (default continuation-sum).
        let progress = session.progress("logging \(meta.name), lines")
        try logger.consume(LineReader(descriptor: 0, name: "<stdin>"), extraction: Extraction(rawValue: meta.extraction ?? "") ?? .sum,
                           progress: { progress.update(done: $0, total: 0) }) {
            Console.err("Warning: \(TrackCLI.describe($0)) (skipped)\n")
        }
        progress.finish()
        Console.out("logged \(logger.questionsWritten) questions to run '\(logger.name)' in \(session.storeLabel)" +
                    (logger.rejectedCount > 0 ? " (\(logger.rejectedCount) rows skipped; see ingest_rejects)" : "") + "\n")
    }
}

/// `track ingest`: files that evaluation harnesses already write.
enum IngestCommand: Command {
    static let format = Option.choice("format", IngestFormat.self, "The input format.", default: .auto)
    static let labels = Option.text("labels", "file", "Labels for .npy input (.npy of integers, or one label per line).")
    static let force = Option.flag("force", "Ingest again a file already ingested: replacing its runs, or with a new --run name as a second run.")
    static let splitGroups = Option.flag("split-groups", "lm-eval task groups: one run per subtask instead of one run per top-level group.")
    static let spec = CommandSpec(
        name: "ingest", abstract: "Ingest evaluation outputs: lm-evaluation-harness samples, JSONL, CSV, .npy.",
        usage: "<file>... [--format auto|jsonl|csv|lm-eval|npy] [--labels <file>] [metadata options] [--force] [--skip-invalid] [--split-groups]",
        discussion: """
        Each file is ingested in one transaction: a bad row refuses the file with
        file:line: reason and leaves the database as it was (--skip-invalid skips
        and reports bad rows instead). A file ingested before (same SHA-256) is
        left alone unless --force, which replaces its runs (or, with a new --run name,
        stores it again as a second run).
        lm-evaluation-harness --log_samples output: give the samples files or their folder
        (every samples file below it is read). One run per (task, filter), named
        <model>[/<method>]/<task>[/<split>][/<filter>] (method and split when given); a task
        group (lm_eval --tasks mmlu) is one run per top-level group, in one transaction, its
        questions keyed by subtask, with subject (abstract_algebra) and category (stem) per
        question (--split-groups: one run per subtask). A local checkpoint path names the model
        by its last component. A rerun whose name another evaluation holds gets what differs
        (n-shot, limit, version, date) in brackets. Gold comes from the continuations the
        harness scored; every row is checked against the sample's own acc, each run's
        accuracy against the results file's (see METHODS §10).
        """,
        arguments: [("<file>...", "Input files.")],
        options: Options.database + Options.metadata + Options.validation + [format, labels, force, splitGroups])

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        let paths = try arguments.positionals(nil, "input files")
        var options = IngestOptions()
        options.format = arguments.choice(format, as: IngestFormat.self) ?? .auto
        options.metadata = try session.metadata()
        options.skipInvalid = arguments.flag(Options.skipInvalid)
        options.force = arguments.flag(force)
        options.validation = ValidationOptions(renormalize: arguments.flag(Options.renormalize))
        options.labelsPath = arguments.value(labels)
        let ingestor = Ingestor(store: try session.store())
        var failures = 0
        for input in Ingestor.inputs(paths, splitGroups: arguments.flag(splitGroups)) {
            let path: String
            var group: Ingestor.TaskGroupInput?
            switch input {
            case .file(let file): path = file
            case .taskGroup(let found):
                group = found
                path = found.resultsFile
            case .note(let text):
                Console.err("note: \(text)\n")
                continue
            case .resultsFile(let file):
                Console.out("\(file): a harness results file; it is read with the samples files beside it\n")
                continue
            case .emptyFolder(let folder):
                failures += 1
                Console.err("Error: \(folder): no lm-evaluation-harness samples files in this folder\n")
                continue
            }
            do {
                let progress = session.progress("ingest \((group?.group).map { "task group \($0)" } ?? (path as NSString).lastPathComponent)", bytes: true)
                options.progress = { progress.update(done: $0, total: $1) }
                let report = try group.map { try ingestor.ingestGroup($0, options: options) } ?? ingestor.ingest(path, options: options)
                progress.finish()
                let label = group.map { "task group '\($0.group)' (\($0.files.count) subtasks, \(path))" } ?? path
                for skipped in report.skipped { Console.err("Warning: \(TrackCLI.describe(skipped)) (skipped)\n") }
                for note in report.notes { Console.err("note: \(path): \(note)\n") }
                if !report.alreadyIngestedAs.isEmpty {
                    let earlier = report.alreadyIngestedAs.map { "'\($0)'" }.joined(separator: ", ")
                    let name = options.metadata.name
                    let how = Ingestor.isNewName(name, besides: report.alreadyIngestedAs)
                        ? "pass --force to store it again as a second run '\(name)'" : "pass --force to replace it, or --force with a new --run name to store it again as a second run"
                    Console.out("\(label): already ingested as \(earlier); nothing changed (\(how))\n")
                    continue
                }
                for run in report.runs {
                    Console.out("\(label): \(run.questions) questions -> run '\(run.name)' (\(report.format.rawValue)) in \(session.storeLabel)\n")
                }
                if options.metadata.dataset == nil, report.format != .lmEval, !report.runs.isEmpty {
                    let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
                    Console.err("note: questions without a dataset field are keyed under dataset '\(stem)' (the file's name); pass --dataset to pair them with runs from other files\n")
                }
                if !report.replaced.isEmpty { Console.out("  replaced: \(report.replaced.joined(separator: ", "))\n") }
                if !report.skipped.isEmpty { Console.out("  skipped \(report.skipped.count) invalid rows\n") }
            } catch {
                failures += 1
                Console.err("Error: \((error as? any TrackFailure).map(TrackCLI.describe) ?? "\(error)")\n")
                let unchanged = session.createdStores.isEmpty ? "; the database is unchanged" : ""
                Console.err("  \(group.map { "task group '\($0.group)'" } ?? path): nothing was ingested\(unchanged).\n")
            }
        }
        if failures > 0 { throw CommandFailure(message: "", status: 1) }
    }
}
