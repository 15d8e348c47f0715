import Foundation
import TrackStore

/// A subcommand of `track`.
protocol Command: Sendable {
    static var spec: CommandSpec { get }
    static func run(_ arguments: ParsedArguments) throws
}

/// The `track` command line: dispatch, help, and the exit-status conventions
/// (0 success, 64 usage error, 1 runtime error; errors on stderr).
public enum TrackCLI {
    static let commands: [any Command.Type] = [
        InitCommand.self, LogCommand.self, IngestCommand.self, RunsCommand.self,
        ShowCommand.self, SQLCommand.self, CheckCommand.self, MetricsCommand.self, CompareCommand.self, TableCommand.self, PlotCommand.self, CalibrateCommand.self, TCECommand.self, EMCommand.self, WinRateCommand.self, MergeCommand.self, DemoCommand.self,
    ]

    static var mainHelp: String {
        var text = """
        OVERVIEW: track — a SQLite experiment tracker for the calibration of LLMs on multiple-choice questions.

        Every forward pass logs per-question option probabilities (or the logits they came from)
        into one SQLite file; SQL views and analyzers read them back.

        USAGE: track <subcommand> [options]

        OPTIONS:
          -h, --help              Show help information.
          --version               Show the version.

        SUBCOMMANDS:

        """
        for command in commands { text += CommandSpec.row(command.spec.name, command.spec.abstract) }
        text += "\n  See 'track help <subcommand>' for detailed help.\n"
        text += "\nThe database is --db PATH, else $TRACK_DB, else ./track.sqlite.\n"
        return text
    }

    public static let version = "0.1.0"

    /// Runs the command line and returns the exit status.
    public static func run(_ arguments: [String]) -> Int32 {
        guard let name = arguments.first else {
            Console.out(mainHelp)
            return 0
        }
        if name == "-h" || name == "--help" { Console.out(mainHelp); return 0 }
        if name == "--version" || name == "version" { Console.out("track \(version) (SQLite \(Database.sqliteVersion))\n"); return 0 }
        if name == "help" {
            guard let topic = arguments.dropFirst().first else { Console.out(mainHelp); return 0 }
            guard let command = commands.first(where: { $0.spec.name == topic }) else {
                return usageFailure(UsageError(message: "unknown subcommand '\(topic)'"))
            }
            Console.out(command.spec.helpText)
            return 0
        }
        guard let command = commands.first(where: { $0.spec.name == name }) else {
            return usageFailure(UsageError(message: "unknown subcommand '\(name)'"))
        }
        do {
            let parsed = try ArgumentParser.parse(Array(arguments.dropFirst()), spec: command.spec)
            if parsed.helpRequested { Console.out(command.spec.helpText); return 0 }
            defer { SharedOptions.closeStores() }
            try command.run(parsed)
            return 0
        } catch var error as UsageError {
            error.command = error.command ?? command.spec.name
            return usageFailure(error)
        } catch let error as CommandFailure {
            if !error.message.isEmpty { Console.err("Error: \(error.message)\n") }
            return error.status
        } catch {
            Console.err("Error: \(error)\n")
            return 1
        }
    }

    static func usageFailure(_ error: UsageError) -> Int32 {
        Console.err("Error: \(error.message)\n")
        if let name = error.command, let command = commands.first(where: { $0.spec.name == name }) {
            Console.err("Usage: track \(name) \(command.spec.usage)\n")
            Console.err("  See 'track \(name) --help' for more information.\n")
        } else {
            Console.err("Usage: track <subcommand> [options]\n  See 'track --help' for more information.\n")
        }
        return 64
    }

    public static func main() -> Never {
        exit(run(Array(CommandLine.arguments.dropFirst())))
    }
}

/// A runtime failure with its own exit status (the message may already have been printed).
struct CommandFailure: Error {
    var message: String
    var status: Int32 = 1
}

// MARK: - Options shared by commands

enum SharedOptions {
    static let database: [OptionSpec] = [
        .value("db", "path", "The track database (default: $TRACK_DB, else ./track.sqlite)."),
        .value("busy-timeout", "seconds", "How long to wait for another writer's lock (default: 10)."),
    ]

    static let metadata: [OptionSpec] = [
        .value("run", "name", "Run name (default: derived from the input)."),
        .value("experiment", "name", "Experiment the run belongs to."),
        .value("model", "name", "Model checkpoint, e.g. Llama-3.1-8B-Tulu."),
        .value("method", "name", "Method, e.g. base, SFT, DPO, TS, CFT, RCFT."),
        .value("dataset", "name", "Dataset, e.g. mmlu, medmcqa."),
        .value("split", "name", "Split, e.g. in-domain, out-domain, test."),
        .value("step", "n", "Training step."),
        .value("epoch", "x", "Training epoch."),
        .value("extraction", "method", "Confidence extraction: choice, continuation-sum, continuation-min, continuation-mean, probability."),
        .value("param", "key=value", "A run parameter.", repeatable: true),
        .value("tag", "key=value", "A run tag.", repeatable: true),
    ]

    static let validation: [OptionSpec] = [
        .flag("renormalize", "Rescale probability rows that do not sum to 1 instead of refusing them."),
        .flag("skip-invalid", "Skip bad rows and report each, instead of refusing the input."),
    ]

    static func databasePath(_ arguments: ParsedArguments) -> String {
        if let path = arguments.value("db") { return path }
        if let path = ProcessInfo.processInfo.environment["TRACK_DB"], !path.isEmpty { return path }
        return "track.sqlite"
    }

    static func openStore(_ arguments: ParsedArguments, readOnly: Bool = false) throws -> RunStore {
        let timeout = try arguments.double("busy-timeout") ?? 10
        let progress = ProgressLine("updating run summaries")
        let store = try RunStore(path: databasePath(arguments), readOnly: readOnly, busyTimeout: timeout) { done, total, run in
            progress.update(done: done, total: total, item: run)
        }
        openedStores.append(store)
        return store
    }

    /// Stores a command opened, closed when it ends (see `closeStores`).
    nonisolated(unsafe) static var openedStores: [RunStore] = []

    /// Folds what the command wrote back into the database file, so that
    /// later readers do not wade through a large write-ahead log.
    static func closeStores() {
        for store in openedStores { store.checkpoint() }
        openedStores.removeAll()
    }

    static func metadata(_ arguments: ParsedArguments) throws -> RunMetadata {
        var meta = RunMetadata(name: arguments.value("run") ?? "")
        meta.experiment = arguments.value("experiment")
        meta.model = arguments.value("model")
        meta.method = arguments.value("method")
        meta.dataset = arguments.value("dataset")
        meta.split = arguments.value("split")
        meta.step = try arguments.int("step")
        meta.epoch = try arguments.double("epoch")
        if let extraction = arguments.value("extraction") {
            guard RunMetadata.extractionMethods.contains(extraction) else {
                throw UsageError(message: "--extraction must be one of \(RunMetadata.extractionMethods.joined(separator: ", ")), got '\(extraction)'")
            }
            meta.extraction = extraction
        }
        meta.params = try arguments.pairs("param")
        meta.tags = try arguments.pairs("tag")
        return meta
    }

    /// The run filters of `runs` and `table`: --model, --method, --dataset, --split, --tag.
    static func runFilter(_ arguments: ParsedArguments) throws -> RunFilter {
        var filter = RunFilter()
        filter.model = arguments.value("model")
        filter.method = arguments.value("method")
        filter.dataset = arguments.value("dataset")
        filter.split = arguments.value("split")
        filter.tags = try arguments.pairs("tag")
        return filter
    }

    static func validation(_ arguments: ParsedArguments) -> ValidationOptions {
        ValidationOptions(renormalize: arguments.flag("renormalize"))
    }

    static func outputFormat(_ arguments: ParsedArguments, allowed: [OutputFormat] = OutputFormat.allCases) throws -> OutputFormat {
        let text = try arguments.choice("format", allowed.map(\.rawValue), default: "table")
        return OutputFormat(rawValue: text)!
    }
}
