import Foundation
import TrackAnalysis
import TrackCalibration
import TrackStore

/// A subcommand of `track`: it parses, validates, calls a service and renders.
protocol Command: Sendable {
    static var spec: CommandSpec { get }
    /// Rules between options and arguments, checked after parsing and before any work (no
    /// store is opened when they fail).
    static func validate(_ arguments: ParsedArguments) throws
    static func run(_ arguments: ParsedArguments, _ session: Session) throws
}

extension Command {
    static func validate(_ arguments: ParsedArguments) throws {}
}

/// The `track` command line: dispatch, help, and the exit-status conventions
/// (0 success, 64 usage error, 1 runtime error; errors on stderr).
public enum TrackCLI {
    static let commands: [any Command.Type] = [
        InitCommand.self, LogCommand.self, IngestCommand.self, RunsCommand.self, ShowCommand.self, SQLCommand.self, SchemaCommand.self,
        CheckCommand.self, MetricsCommand.self, CompareCommand.self, TableCommand.self, PlotCommand.self,
        CalibrateCommand.self, TCECommand.self, EMCommand.self, WinRateCommand.self, MergeCommand.self, PushCommand.self, PullCommand.self,
        RemoveCommand.self, RenameCommand.self, SetCommand.self, TagCommand.self, ReportCommand.self, DemoCommand.self,
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
    public static func run(_ given: [String]) -> Int32 {
        var arguments = given
        // `track --db PATH runs` as well as `track runs --db PATH`.
        if let first = arguments.first, first == "--db" || first.hasPrefix("--db=") {
            let count = first == "--db" ? 2 : 1
            if arguments.count > count {
                let option = Array(arguments[..<count])
                arguments.removeFirst(count)
                arguments.insert(contentsOf: option, at: 1)
            }
        }
        guard let name = arguments.first, name != "-h", name != "--help" else { Console.out(mainHelp); return 0 }
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
            return usageFailure(UsageError(message: "unknown subcommand '\(name)'\(suggestion(name, among: commands.map { $0.spec.name }))"))
        }
        let session = Session(invocation: given)
        // No output of the command may replace its store or one of its input files.
        return OutputFile.withProtections { run(command, arguments, session) }
    }

    /// Parses, validates and runs `command`, and maps its outcome to an exit status.
    private static func run(_ command: any Command.Type, _ arguments: [String], _ session: Session) -> Int32 {
        let name = command.spec.name
        do {
            let parsed = try ArgumentParser.parse(Array(arguments.dropFirst()), spec: command.spec)
            if parsed.helpRequested { Console.out(command.spec.helpText); return 0 }
            try command.validate(parsed)
            session.arguments = parsed
            if !session.isPostgres { OutputFile.protectStore(session.databasePath) }
            for positional in parsed.positionals where FileManager.default.fileExists(atPath: positional) {
                OutputFile.protect(positional, as: "an input")
            }
            for value in parsed.values["labels"] ?? [] { OutputFile.protect(value, as: "an input") }
            for value in parsed.values["into"] ?? [] { OutputFile.protectStore(value) }
            defer { session.close() }
            do {
                try command.run(parsed, session)
            } catch {
                // What a failing command committed before it failed (files ingested in full) is kept,
                // as on SQLite: pushed to a PostgreSQL store too.
                do { try session.finish() } catch let pushError { Console.err("Error: \(pushError)\n") }
                session.removeEmptyCreatedStores()
                throw error
            }
            try session.finish()
            return 0
        } catch var error as UsageError {
            error.command = error.command ?? command.spec.name
            return usageFailure(error)
        } catch let error as CommandFailure {
            if !error.message.isEmpty { Console.err("Error: \(error.message)\n") }
            return error.status
        } catch let error as any TrackFailure {
            if error.kind == .usage { return usageFailure(UsageError(message: error.message, command: name)) }
            Console.err("Error: \(describe(error))\n")
            return 1
        } catch {
            Console.err("Error: \(error)\n")
            return 1
        }
    }

    /// A library error as the command line says it: the message, and the remedy in flags.
    static func describe(_ error: any TrackFailure) -> String {
        guard let remedy = error.remedy else { return error.message }
        let hint: String = switch remedy {
        case .renormalize: "pass --renormalize to rescale such rows"
        case .force: "pass --force to replace it"
        case .append: "pass --append to add to it"
        case .replace: "pass --replace to replace it, or choose another --suffix"
        case .rename: "choose another --run name"
        case .format: "pass --format jsonl|csv|lm-eval|npy"
        case .labels: "pass --labels FILE (.npy or one label per line)"
        case .waitLonger: "try again, or wait longer with --busy-timeout"
        case .create(let path): "create a store with `track init --db \(path)`"
            + (ProcessInfo.processInfo.environment["TRACK_DB"] == path ? " (this path is $TRACK_DB's; --db names another)" : "")
        case .migrate(let path): "open it once with a writing command (e.g. `track init --db \(path)`) to migrate it"
        case .check(let path): "run `track check --db \(path)` for details"
        case .allowWrites: "pass --write to modify the store"
        case .recursive: "pass --recursive to delete them too"
        }
        return error.message + "; " + hint
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

    /// Runs the command line in this process with its output captured (what the tests link):
    /// the exit status, standard output and standard error.
    public static func runCaptured(_ arguments: [String]) -> (status: Int32, stdout: String, stderr: String) {
        let capture = ConsoleCapture()
        let status = Console.$capture.withValue(capture) { run(arguments) }
        return (status, capture.out, capture.err)
    }

    public static func main() -> Never {
        // A reader that goes away (`track sql … | head -1`) is a write error said as such
        // ("Error: cannot write to standard output (Broken pipe)", exit 1), not a silent death by SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        exit(run(Array(CommandLine.arguments.dropFirst())))
    }
}

/// A runtime failure with its own exit status (the message may already have been printed).
struct CommandFailure: Error {
    var message: String
    var status: Int32 = 1
}

/// One command's use of the store: opened on demand with the caller's `--db` and
/// `--busy-timeout`, checkpointed when the command ends.
final class Session {
    var arguments = ParsedArguments()
    /// The command line as given (after `track`).
    let invocation: [String]

    init(invocation: [String]) { self.invocation = invocation }

    /// The command line as typed, for provenance; a PostgreSQL URI without its password.
    var commandLine: String {
        (["track"] + invocation).map { StoreLocation.redacted($0) }.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
    }
    private var stores: [RunStore] = []
    /// SQLite files this command created (a failed first write removes them again).
    private(set) var createdStores: [String] = []

    /// Where the command writes, as messages name it: the path (`./track.sqlite`), said to come from
    /// $TRACK_DB when it does; a PostgreSQL URI without its password.
    var storeLabel: String {
        let path = databasePath
        if StoreLocation.isPostgresURI(path) { return StoreLocation.redacted(path) }
        let shown = path.hasPrefix("/") || path.hasPrefix(".") ? path : "./" + path
        if arguments.values[Options.db.name]?.last == nil, ProcessInfo.processInfo.environment["TRACK_DB"]?.isEmpty == false {
            return shown + " (from $TRACK_DB)"
        }
        return shown
    }

    /// After a failed command: a store it created and wrote no run into is removed (with its
    /// -wal and -shm), so that a failed first ingest leaves no empty database behind.
    func removeEmptyCreatedStores() {
        close()
        func holdsNoRun(_ path: String) -> Bool {   // the connection is closed when this returns
            guard let database = try? Database(path: path, readOnly: true, create: false) else { return false }
            return (try? database.scalarInt("SELECT count(*) FROM runs")) == 0
        }
        for path in createdStores {
            guard holdsNoRun(path) else { continue }
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            Console.err("  (\(path) was new and holds no run: removed)\n")
        }
        createdStores.removeAll()
    }

    var databasePath: String {
        if let path = arguments.values[Options.db.name]?.last { return path }
        if let path = ProcessInfo.processInfo.environment["TRACK_DB"], !path.isEmpty { return path }
        return "track.sqlite"
    }

    var busyTimeout: Double { arguments.double(Options.busyTimeout) ?? 10 }

    /// A progress line on standard error, unless `--quiet` (or standard error is not a terminal).
    func progress(_ label: String, bytes: Bool = false) -> ProgressLine {
        ProgressLine(label, quiet: arguments.flag(Options.quiet), bytes: bytes)
    }

    /// The staging file of `log` and `ingest` on a PostgreSQL store (see `PostgresStaging`).
    private var postgres: PostgresStaging?
    /// The PostgreSQL store, connected once per command.
    private var server: PostgresStore?

    /// Whether `--db` names a PostgreSQL database (a libpq URI).
    var isPostgres: Bool { StoreLocation.isPostgresURI(databasePath) }

    /// The PostgreSQL store itself (connected, schema checked, once per command).
    func postgresStore() throws -> PostgresStore {
        if let server { return server }
        let opened = try PostgresStore(uri: databasePath, connectTimeout: connectTimeout)
        server = opened
        return opened
    }

    var connectTimeout: Int { max(1, Int(busyTimeout.rounded(.up))) }

    /// The store every analysis reads and writes: the SQLite file, or the PostgreSQL server itself.
    func runs(readOnly: Bool = false) throws -> any RunWriting {
        isPostgres ? try postgresStore() : try store(readOnly: readOnly)
    }

    func reader(readOnly: Bool = true) throws -> RunReader { RunReader(try runs(readOnly: readOnly)) }

    /// Another store than `--db` (`merge --into`): a SQLite file or a PostgreSQL server.
    func open(_ location: String) throws -> any RunWriting {
        StoreLocation.isPostgresURI(location) ? try PostgresStore(uri: location, connectTimeout: connectTimeout) : try store(path: location)
    }

    /// A SQLite store: `path`, else `--db`. On a PostgreSQL `--db`, the staging file whose new
    /// runs are pushed when the command ends (what `log` and `ingest` write into; `appending`:
    /// the run `log --append` adds to).
    func store(path: String? = nil, readOnly: Bool = false, appending: String? = nil) throws -> RunStore {
        if path == nil, isPostgres {
            if let postgres { return postgres.local }
            let session = try PostgresStaging(server: try postgresStore(), busyTimeout: busyTimeout, appending: appending)
            postgres = session
            return session.local
        }
        let progress = self.progress("updating run summaries")
        let target = path ?? databasePath
        let existed = FileManager.default.fileExists(atPath: target)
        let store = try RunStore(path: target, readOnly: readOnly, busyTimeout: busyTimeout) { done, total, run in
            progress.update(done: done, total: total, item: run)
        }
        if !existed, !readOnly { createdStores.append(target) }
        stores.append(store)
        return store
    }

    /// What changes runs in place (rm, rename, tag, set): the SQLite store, or the PostgreSQL server itself.
    func runManager() throws -> any RunManaging {
        isPostgres ? try postgresStore() : try store()
    }

    /// On a PostgreSQL store: sends a logged run's committed rows on to the server after each commit.
    func streamToServer(_ logger: RunLogger) {
        guard let postgres else { return }
        logger.onCommit = { [postgres, runID = logger.runID] in try postgres.pushIncrement(runID: runID) }
    }

    /// Pushes the runs a command wrote into a PostgreSQL store's staging file to the server.
    func finish() throws {
        guard let postgres else { return }
        self.postgres = nil
        let pushed = try postgres.pushNewRuns()
        if !pushed.isEmpty, !arguments.flag(Options.quiet) {
            Console.err("pushed \(pushed.count) run\(pushed.count == 1 ? "" : "s") to \(postgres.displayName)\n")
        }
    }

    /// Folds what the command wrote back into the database file, so that
    /// later readers do not wade through a large write-ahead log.
    func close() {
        for store in stores { store.checkpoint() }
        stores.removeAll()
    }

    // Shared readings of options

    func metadata() throws -> RunMetadata {
        let a = arguments
        var meta = RunMetadata(name: a.value(Options.run) ?? "")
        meta.experiment = a.value(Options.experiment)
        meta.model = a.value(Options.model)
        meta.method = a.value(Options.method)
        meta.dataset = a.value(Options.dataset)
        meta.split = a.value(Options.split)
        meta.step = a.int(Options.step)
        meta.epoch = a.double(Options.epoch)
        meta.extraction = a.value(Options.extraction)
        meta.params = try a.pairs(Options.param)
        meta.tags = try a.pairs(Options.tag)
        return meta
    }

    func runFilter() throws -> RunFilter {
        var filter = RunFilter()
        filter.model = arguments.value(Options.model)
        filter.method = arguments.value(Options.method)
        filter.dataset = arguments.value(Options.dataset)
        filter.split = arguments.value(Options.split)
        filter.tags = try arguments.pairs(Options.tag)
        return filter
    }

    var binSettings: BinSettings { BinningOptions.settings(arguments) }

    func metricKeys() throws -> [MetricKey]? {
        guard let text = arguments.value(Options.metrics) else { return nil }
        switch MetricKey.list(text) {
        case .success(let keys): return keys
        case .failure(let error): throw UsageError(message: error.description)
        }
    }

    func aStarRequest() -> AStarRequest {
        var request = AStarRequest(given: arguments.double(Options.aStar), target: arguments.value(Options.target))
        request.eceTolerance = arguments[Options.eceTolerance]
        return request
    }

    /// Prints `text` and, with `--out`, writes it there too.
    func emit(_ text: String, out option: Option = Options.out) throws {
        Console.out(text)
        if let path = arguments.value(option) { try writeExport(text, to: path) }
    }
}
