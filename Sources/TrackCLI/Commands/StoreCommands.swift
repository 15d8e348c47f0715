import Foundation
import TrackAnalysis
import TrackCalibration
import TrackStore

enum InitCommand: Command {
    static let spec = CommandSpec(
        name: "init", abstract: "Create a track database (or migrate an older one) and install the views.",
        usage: "[--db <path>]", options: Options.database)

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        _ = try arguments.positionals(0, "no arguments")
        let store = try session.runs()
        Console.out("\(store.displayName): track schema version \(try store.schemaVersion)\(store.sql.dialect == .postgres ? " (PostgreSQL)" : "")\n")
    }
}

enum RunsCommand: Command {
    static let format = Options.format([.table, .csv, .json])
    static let whereOption = Option.text("where", "expr", "Only runs matching EXPR, e.g. \"method = 'DPO' and params.lr = 5e-7 and conf_ece < 0.05\".")
    static let sort = Option.text("sort", "field", "Sort by a field, a stored metric, params.KEY or tags.KEY (then by run id).")
    static let descending = Option.flag("desc", "Sort in descending order.")
    static let limit = Option.integer("limit", "n", 1...Int64(Int32.max), "At most N runs.")
    static let columns = Option.text("columns", "a,b,c", "The columns shown: fields, stored metrics, params.KEY, tags.KEY (default: the usual ones plus every field --where and --sort name).")
    static let defaultColumns = ["run", "model", "method", "dataset", "split", "step", "status", "n", "accuracy", "mean_confidence"]
    static let spec = CommandSpec(
        name: "runs", abstract: "List runs with n, accuracy and mean confidence.",
        usage: "[--model <m>] [--method <m>] [--dataset <d>] [--split <s>] [--tag <k=v>]... [--where <expr>] [--sort <field> [--desc]] [--limit <n>] [--columns <a,b,c>] [--format table|csv|json]",
        discussion: """
        --where takes a small language, compiled to parameterised SQL: comparisons (= != < <= > >=,
        like 'pat%', in (…), is [not] null) of fields with 'text' or numbers, joined by and, or, not
        and parentheses. Fields: run, model, method, dataset, split, step, epoch, extraction, status,
        experiment, n, accuracy, mean_confidence, overconfidence, the stored metrics conf_ece, mce,
        rmsce, cw_ece, pooled_ece, brier, nll, and params.KEY, tags.KEY (compared as numbers when the
        value is a number). A run without the parameter never matches.
        The table shows the usual columns and every field --where and --sort name (so a filter on
        conf_ece shows conf_ece); --columns chooses them. JSON carries every field, the stored
        metrics, params and tags of each run.
        """,
        options: Options.database + Options.filters + [Options.experiment, whereOption, sort, descending, limit, columns, format])

    static func validate(_ arguments: ParsedArguments) throws {
        for column in commaList(arguments.value(columns)) where RunQuery.fieldSQL(column) == nil {
            throw UsageError(message: "--columns: unknown field '\(column)'" + suggestion(column, among: RunQuery.fieldNames)
                             + " (fields: \(RunQuery.fieldNames.joined(separator: ", ")))")
        }
    }

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        _ = try arguments.positionals(0, "no arguments")
        var filter = try session.runFilter()
        filter.experiment = arguments.value(Options.experiment)
        if let text = arguments.value(whereOption) {
            do { filter.query = try RunQuery(text) } catch { throw UsageError(message: "--where: \(error.description)") }
        }
        filter.sort = arguments.value(sort)
        filter.descending = arguments.flag(descending)
        filter.limit = arguments.int(limit)
        let store = try session.runs(readOnly: true)
        let records = try RunReader(store).runRecords(filter, logged: false)
        if records.isEmpty, let hint = try store.caseHint(filter) { Console.err("note: no run matches; \(hint)\n") }
        var shown = commaList(arguments.value(columns))
        if shown.isEmpty {
            shown = defaultColumns
            for field in (filter.query?.fields ?? []) + [filter.sort].compactMap({ $0 }) where !shown.contains(field) && field != "name" {
                shown.append(field)
            }
        }
        let format = session.arguments[format]
        if format == .json { return Console.out(JSONValue.array(records.map(\.json)).jsonText + "\n") }
        let table = TextTable(columns: shown, rows: records.map { run in shown.map { run.cell($0) } })
        Console.out(table.render(format))
    }
}

enum ShowCommand: Command {
    static let format = Options.format([.table, .json])
    static let spec = CommandSpec(
        name: "show", abstract: "Show one run: metadata, params, tags, summary and logged metrics.",
        usage: "<run> [--db <path>] [--format table|json]", arguments: [("<run>", "The run's name.")],
        options: Options.database + [format])

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        let name = try arguments.positionals(1, "one run name")[0]
        let store = try session.runs(readOnly: true)
        guard let card = try RunCard(store: store, name: name) else {
            throw store.unknownRun(name)
        }
        Console.out(session.arguments[format] == .json ? card.json.jsonText + "\n" : card.text)
    }
}

enum SQLCommand: Command {
    static let format = Options.format([.table, .csv, .json])
    static let write = Option.flag("write", "Open the database for writing; all statements run in one transaction.")
    static let timeout = Option.number("timeout", "seconds", 0...86_400, "Stop a query that runs longer than this (default: no limit).")
    static let spec = CommandSpec(
        name: "sql", abstract: "Run SQL over the store (read-only unless --write).",
        usage: "\"SELECT …\" [--db <path>] [--format table|csv|json] [--write] [--timeout <seconds>]",
        discussion: """
        Views: predictions, run_summary, run_calibration, reliability_bins, classwise_bins,
        subject_calibration, preference_winrate, judged_winrate (each with the run's name, `run`).
        Tables: runs, params, tags, metrics, questions, option_scores (run_id, question_id, option, prob, score).
        `track schema [NAME]` lists them with every column and what it means.
        Several statements separated by ';' run in order (with --write, in one transaction) and
        each that returns rows is printed. Without --write a statement that would change the file
        is refused before it runs; ATTACH and fts3_tokenizer are refused either way.
        """,
        arguments: [("<sql>", "One or more SQL statements.")],
        options: Options.database + [format, write, timeout])

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        let script = try arguments.positionals(1, "one SQL argument (quote it)")[0]
        guard !script.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw UsageError(message: "no SQL statement given") }
        let write = arguments.flag(Self.write)
        // On PostgreSQL the statements run on the server; on SQLite in the file; read-only unless --write.
        let store = try session.runs(readOnly: !write)
        let results: [QueryResult]
        do {
            results = try store.adHocSQL(script, write: write, timeout: arguments.double(timeout))
        } catch let error as StoreError where error.message == "no SQL statement given" {
            throw UsageError(message: error.message)
        } catch let error as any TrackFailure where error.kind == .usage {
            throw error
        } catch {
            throw CommandFailure(message: AdHocSQL.explain(error, write: write, timeout: arguments.double(timeout)))
        }
        let format = session.arguments[Self.format]
        Console.out(results.map { TextTable($0).render(format) }.joined(separator: format == .table ? "\n" : ""))
    }
}

/// `track schema`: what a store holds, as sql/ documents it, from the binary a user has.
enum SchemaCommand: Command {
    static let all = Option.flag("all", "Also list track's own tables and views (stored summaries, bookkeeping).")
    static let format = Options.format([.table, .json])
    static let spec = CommandSpec(
        name: "schema", abstract: "List the tables and views to query, with their columns and what they mean.",
        usage: "[TABLE|VIEW|TABLE.COLUMN] [--all] [--format table|json]",
        discussion: """
        Without a name: each public table and view with what it holds. With a name: its columns,
        their types and notes (e.g. `track schema runs`, `track schema run_calibration.conf_ece`).
        The text is the comments of sql/schema.sql and sql/views.sql, embedded in the binary.
        Tables key a run by run_id; every view also carries its name as `run`, so
        `SELECT * FROM run_calibration WHERE run = 'x'` needs no join.
        """,
        arguments: [("[name]", "A table or view, or TABLE.COLUMN.")],
        options: [all, format])

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        let names = arguments.positionals
        guard names.count <= 1 else { throw UsageError(message: "expected at most one table or view name") }
        let catalog = try SchemaCatalog.current()
        let json = session.arguments[format] == .json
        guard let name = names.first else {
            let listed = catalog.listed(all: arguments.flag(all))
            if json { return Console.out(JSONValue.array(listed.map(Self.json)).jsonText + "\n") }
            var table = TextTable(columns: ["name", "kind", "what it holds"],
                                  rows: listed.map { [.text($0.name), .text($0.kind + ($0.isInternal ? " (track's own)" : "")), .text(Self.firstSentence($0.description))] })
            table.caption = "Columns of one: track schema NAME. Every view carries the run's name as `run`."
            return Console.out(table.render(.table))
        }
        let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
        guard let object = catalog.objects.first(where: { $0.name == parts[0] }) else {
            throw UsageError(message: "no table or view '\(parts[0])'" + suggestion(parts[0], among: catalog.objects.map(\.name)) + " (track schema lists them)")
        }
        var columns = object.columns
        if parts.count == 2 {
            columns = columns.filter { $0.name == parts[1] }
            guard !columns.isEmpty else {
                throw UsageError(message: "\(object.name) has no column '\(parts[1])'" + suggestion(parts[1], among: object.columns.map(\.name))
                                 + " (its columns: \(object.columns.map(\.name).joined(separator: ", ")))")
            }
        }
        if json {
            var shown = object
            shown.columns = columns
            return Console.out(Self.json(shown).jsonText + "\n")
        }
        var out = "\(object.name) (\(object.kind)\(object.isInternal ? ", track's own" : "")): \(object.description)\n\n"
        out += TextTable(columns: ["column", "type", "note"], rows: columns.map { [.text($0.name), .text($0.type), .text($0.note)] }).render(.table)
        Console.out(out)
    }

    /// The description in at most about 100 characters, cut at a word ("…"); the whole with one name.
    static func firstSentence(_ text: String) -> String {
        guard text.count > 100 else { return text }
        let head = text.prefix(100)
        return String(head[..<(head.lastIndex(of: " ") ?? head.endIndex)]) + " …"
    }

    static func json(_ object: SchemaCatalog.Object) -> JSONValue {
        .object(JSONObject([
            .init(key: "name", value: .string(object.name)), .init(key: "kind", value: .string(object.kind)),
            .init(key: "section", value: .string(object.section)), .init(key: "description", value: .string(object.description)),
            .init(key: "internal", value: .bool(object.isInternal)),
            .init(key: "columns", value: .array(object.columns.map { column in
                .object(JSONObject([.init(key: "name", value: .string(column.name)), .init(key: "type", value: .string(column.type)),
                                    .init(key: "note", value: .string(column.note))]))
            })),
        ]))
    }
}

enum CheckCommand: Command {
    static let spec = CommandSpec(
        name: "check", abstract: "Check a store: SQLite's integrity check, foreign keys, stored summaries.",
        usage: "[--db <path>]",
        discussion: """
        Exit 0 when the store is sound, 1 when not (each problem on stderr). A store that fails is
        marked, and writing commands refuse it until a later check passes: nothing is written into
        a damaged file. Repair one with `sqlite3 damaged.sqlite .recover | sqlite3 repaired.sqlite`.
        """,
        options: Options.database)

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        _ = try arguments.positionals(0, "no arguments")
        let path = session.databasePath
        if session.isPostgres { throw UsageError(message: "track check checks a SQLite file; a PostgreSQL server checks its own storage") }
        guard FileManager.default.fileExists(atPath: path) else { throw CommandFailure(message: "\(path): no such file") }
        let report = try RunStore.check(path: path, busyTimeout: session.busyTimeout)
        if report.isClean {
            Console.out("\(path): ok\n")
            return
        }
        if report.isHealthy {
            for problem in report.invalidValues { Console.err("\(path): \(problem)\n") }
            throw CommandFailure(message: "\(path) holds \(report.invalidValues.count)\(report.invalidValues.count == 100 ? "+" : "") invalid stored value\(report.invalidValues.count == 1 ? "" : "s") (written outside track?): the runs holding them cannot be analysed until the rows are corrected or deleted (e.g. track sql --write); the store is otherwise sound")
        }
        for problem in report.problems { Console.err("\(path): \(problem)\n") }
        throw CommandFailure(message: "\(path) failed the check (\(report.problems.count) problem\(report.problems.count == 1 ? "" : "s")); writing commands will refuse it")
    }
}

enum MergeCommand: Command {
    static let into = Option.text("into", "path", "The database to merge into: a SQLite file (created if missing) or a PostgreSQL URI.")
    static let spec = CommandSpec(
        name: "merge", abstract: "Merge shard databases into one: nothing collides or duplicates; merging again changes nothing.",
        usage: "<shard.sqlite>... --into <all.sqlite>",
        discussion: """
        Runs are keyed by their uuid, questions by (dataset, external id), experiments by name; each
        shard is merged in one transaction. A run already in the target is skipped, so repeating a
        merge changes nothing; a run whose name is taken by another run is renamed 'name [uuid]'.
        Shards of another schema version, or whose questions contradict the target's (other
        label or option count), are refused and nothing of them is merged.
        """,
        arguments: [("<shard.sqlite>...", "Shard databases.")],
        options: [into, Options.busyTimeout, Options.quiet])

    static func validate(_ arguments: ParsedArguments) throws {
        _ = try arguments.positionals(nil, "shard databases")
        guard arguments.value(into) != nil else { throw UsageError(message: "--into <all.sqlite> is required") }
    }

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        let shards = arguments.positionals
        let into = arguments.value(into) ?? ""
        let target = try session.open(into)
        let destination = target.sql.dialect == .postgres ? " -> \(target.displayName)" : ""
        var failures = 0
        let progress = session.progress("merge")
        for (index, shard) in shards.enumerated() {
            progress.update(done: index, total: shards.count, item: shard)
            defer { progress.update(done: index + 1, total: shards.count, item: shard) }
            do {
                let report = try target.merge(shard: shard)
                var text = "\(shard): \(report.newRuns.count) new runs"
                if report.newQuestions > 0 || destination.isEmpty { text += ", \(report.newQuestions) new questions" }
                if report.skippedRuns > 0 { text += ", \(report.skippedRuns) runs already merged" }
                Console.out(text + destination + "\n")
                for (from, to) in report.renamedRuns { Console.out("  renamed '\(from)' -> '\(to)' (the name was taken)\n") }
            } catch {
                failures += 1
                Console.err("Error: \(shard): \((error as? any TrackFailure).map(TrackCLI.describe) ?? "\(error)"); nothing of it was merged\n")
            }
        }
        if failures > 0 { throw CommandFailure(message: "", status: 1) }
    }
}

/// `track pull`: runs of a PostgreSQL store into a SQLite file, for offline work.
enum PullCommand: Command {
    static let from = Option.text("from", "uri", "The PostgreSQL store: postgresql://user@host:5432/db (password from PGPASSWORD or ~/.pgpass).")
    static let all = Option.flag("all", "Pull every run of the server.")
    static let spec = CommandSpec(
        name: "pull", abstract: "Copy runs from a PostgreSQL store into a local SQLite store (the reverse of push).",
        usage: "<run>... | --all  --from <postgresql://…> [--db <local.sqlite>]",
        discussion: """
        Reads the server in one consistent snapshot and brings the runs in as track merge brings a
        shard: each with all it owns (option rows, questions, metadata, params, tags, logged metrics,
        summaries, EM targets, folds, preference pairs, judgments, derived-run links, export
        records), in one transaction. A run the local store already holds (same uuid) is skipped, so
        pulling again changes nothing; a run whose name is taken locally by another run is renamed
        'name [uuid]'; a question that contradicts the local store refuses the pull, nothing written.
        """,
        arguments: [("<run>...", "Run names (or --all).")],
        options: Options.database + [from, all])

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        let (uri, names) = try PushCommand.transfer(arguments, session, server: from, all: all, verb: "pull", local: "into")
        let server = try PostgresStore(uri: uri, connectTimeout: session.connectTimeout)
        let report = try server.pull(runs: names.isEmpty ? nil : names, into: try session.store())
        for name in report.newRuns { Console.out("pulled '\(name)'\n") }
        for (old, new) in report.renamedRuns { Console.out("  '\(old)' is another run here: pulled as '\(new)'\n") }
        Console.out("\(report.newRuns.count) new run\(report.newRuns.count == 1 ? "" : "s"), \(report.skippedRuns) already here, \(report.newQuestions) new questions -> \(session.databasePath)\n")
    }
}

enum PushCommand: Command {
    static let to = Option.text("to", "uri", "The PostgreSQL store: postgresql://user@host:5432/db (password from PGPASSWORD or ~/.pgpass).")
    static let all = Option.flag("all", "Push every run of the local store.")
    static let spec = CommandSpec(
        name: "push", abstract: "Copy runs from a local SQLite store to a PostgreSQL store (one transaction per run).",
        usage: "<run>... | --all  --to <postgresql://…> [--db <local.sqlite>]",
        discussion: """
        Copies each run with all it owns — option rows, the questions it answers, metadata, params,
        tags, logged metrics, summaries, EM targets, preference pairs, judgments, the link to the run
        it was derived from and the records of its exports — in one transaction, using COPY. A run the
        server already holds (same uuid) is skipped, so pushing again changes nothing; questions are
        shared by (dataset, external id). A question the server holds with another label or option
        count, or another run of the same name, refuses that run with nothing written (the others
        are pushed). Exit 1 when any run was refused.
        """,
        arguments: [("<run>...", "Run names (or --all).")],
        options: Options.database + [to, all])

    /// What push and pull both check: the server's URI (`--to` / `--from`), a SQLite `--db`, and
    /// run names or `--all` (not both).
    static func transfer(_ arguments: ParsedArguments, _ session: Session, server option: Option, all: Option,
                         verb: String, local direction: String) throws -> (uri: String, names: [String]) {
        guard let uri = arguments.value(option) else { throw UsageError(message: "--\(option.name) <postgresql://…> is required") }
        guard StoreLocation.isPostgresURI(uri) else { throw UsageError(message: "--\(option.name) takes a PostgreSQL URI (postgresql://…), not '\(uri)'") }
        guard !session.isPostgres else { throw UsageError(message: "\(verb) copies \(direction) a SQLite store: --db must be a file") }
        let names = arguments.positionals
        if names.isEmpty == !arguments.flag(all) { throw UsageError(message: names.isEmpty ? "name runs to \(verb), or pass --all" : "name runs or pass --all, not both") }
        return (uri, names)
    }

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        let (uri, names) = try transfer(arguments, session, server: to, all: all, verb: "push", local: "from")
        let store = try session.store(readOnly: true)
        let runs: [(Int64, String)] = try names.isEmpty
            ? store.runSummaries().map { ($0.id, $0.name) }.sorted { $0.0 < $1.0 }
            : names.map { (try store.requireRun($0), $0) }
        let server = try PostgresStore(uri: uri, connectTimeout: session.connectTimeout)
        let progress = session.progress("push")
        var refused = 0
        for (index, (id, name)) in runs.enumerated() {
            progress.update(done: index, total: runs.count, item: name)
            do {
                switch try server.push(runID: id, from: store) {
                case .pushed(let rows): Console.out("pushed '\(name)' (\(rows) option rows)\n")
                case .present: Console.out("'\(name)' is already on the server\n")
                }
            } catch let error as any TrackFailure {
                refused += 1
                Console.err("Error: \(name): \(TrackCLI.describe(error))\n")
            }
        }
        progress.update(done: runs.count, total: runs.count, item: "")
        if refused > 0 { throw CommandFailure(message: "\(refused) of \(runs.count) runs refused; nothing of them was written") }
    }
}

enum RemoveCommand: Command {
    static let recursive = Option.flag("recursive", "Also delete the runs derived from them (e.g. RUN+TS).")
    static let spec = CommandSpec(
        name: "rm", abstract: "Delete runs with everything they own (one transaction).",
        usage: "<run>... [--recursive]", arguments: [("<run>...", "Run names.")], options: Options.database + [recursive])

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        let names = try arguments.positionals(nil, "at least one run name")
        let deleted = try session.runManager().deleteRuns(named: names, recursive: arguments.flag(recursive))
        Console.out(deleted.map { "deleted run '\($0)'\n" }.joined())
    }
}

enum RenameCommand: Command {
    static let spec = CommandSpec(
        name: "rename", abstract: "Rename a run.", usage: "<old> <new>",
        arguments: [("<old>", "The run's name."), ("<new>", "Its new name (must be free).")], options: Options.database)

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        let names = try arguments.positionals(2, "the run's name and its new name")
        try session.runManager().renameRun(names[0], to: names[1])
        Console.out("renamed '\(names[0])' -> '\(names[1])'\n")
    }
}

/// `track set`: correct a run's metadata after ingest.
enum SetCommand: Command {
    static let spec = CommandSpec(
        name: "set", abstract: "Correct a run's model, method, dataset, split, epoch or step.",
        usage: "<run> [--model <name>] [--method <name>] [--dataset <name>] [--split <name>] [--epoch <x>] [--step <n>]",
        discussion: """
        Changes the run's metadata in one transaction, checked as ingest checks it. A derived
        run (track calibrate) takes these from its parent: set them on the parent, and its
        derived runs follow (a method change updates the parent method they record). The
        run's name is not changed (track rename).
        """,
        arguments: [("<run>", "The run's name.")],
        options: Options.database + [Options.model, Options.method, Options.dataset, Options.split, Options.epoch, Options.step])

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        let name = try arguments.positionals(1, "the run's name")[0]
        let given = try session.metadata()
        var changes = RunMetadataChanges()
        (changes.model, changes.method, changes.dataset, changes.split) = (given.model, given.method, given.dataset, given.split)
        (changes.epoch, changes.step) = (given.epoch, given.step)
        guard !changes.isEmpty else { throw UsageError(message: "nothing to set: give --model, --method, --dataset, --split, --epoch or --step") }
        let changed = try session.runManager().setRunMetadata(name, changes)
        Console.out("set \(name)" + (changed.count > 1 ? " and its derived runs \(changed.dropFirst().map { "'\($0)'" }.joined(separator: ", "))" : "") + "\n")
    }
}

enum TagCommand: Command {
    static let untag = Option.text("untag", "key", "Remove this tag.", repeatable: true)
    static let spec = CommandSpec(
        name: "tag", abstract: "Set or remove a run's tags.", usage: "<run> [key=value]... [--untag <key>]...",
        arguments: [("<run>", "The run's name."), ("key=value...", "Tags to set (a key's value is replaced).")],
        options: Options.database + [untag])

    static func run(_ arguments: ParsedArguments, _ session: Session) throws {
        let positionals = try arguments.positionals(nil, "a run name and tags")
        var tags: [String: String] = [:]
        for item in positionals.dropFirst() {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else { throw UsageError(message: "expected key=value, got '\(item)'") }
            tags[String(item[..<equals])] = String(item[item.index(after: equals)...])
        }
        let removed = arguments.all(untag)
        guard !tags.isEmpty || !removed.isEmpty else { throw UsageError(message: "expected tags to set (key=value) or --untag KEY") }
        try session.runManager().tagRun(positionals[0], set: tags, remove: removed)
        Console.out("tagged '\(positionals[0])'\n")
    }
}
