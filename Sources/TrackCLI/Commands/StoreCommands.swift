import Foundation
import TrackStore

// MARK: - track init

enum InitCommand: Command {
    static let spec = CommandSpec(
        name: "init", abstract: "Create a track database (or migrate an older one) and install the views.",
        usage: "[--db <path>]", options: SharedOptions.database)

    static func run(_ arguments: ParsedArguments) throws {
        guard arguments.positionals.isEmpty else { throw UsageError(message: "unexpected argument '\(arguments.positionals[0])'") }
        let store = try SharedOptions.openStore(arguments)
        Console.out("\(store.database.path): track schema version \(try store.database.schemaVersion)\n")
    }
}

// MARK: - track runs

enum RunsCommand: Command {
    static let spec = CommandSpec(
        name: "runs", abstract: "List runs with n, accuracy and mean confidence.",
        usage: "[--model <m>] [--method <m>] [--dataset <d>] [--split <s>] [--tag <k=v>]... [--format table|csv|json]",
        options: SharedOptions.database + [
            .value("model", "name", "Only runs of this model."),
            .value("method", "name", "Only runs of this method."),
            .value("dataset", "name", "Only runs on this dataset."),
            .value("split", "name", "Only runs on this split."),
            .value("tag", "key=value", "Only runs with this tag.", repeatable: true),
            .value("format", "format", "table, csv or json (default: table)."),
        ])

    static func run(_ arguments: ParsedArguments) throws {
        guard arguments.positionals.isEmpty else { throw UsageError(message: "unexpected argument '\(arguments.positionals[0])'") }
        let format = try SharedOptions.outputFormat(arguments, allowed: [.table, .csv, .json])
        let filter = try SharedOptions.runFilter(arguments)
        let store = try SharedOptions.openStore(arguments, readOnly: true)
        let runs = try store.runSummaries(filter)
        let table = TextTable(
            columns: ["run", "model", "method", "dataset", "split", "step", "status", "n", "accuracy", "mean_conf"],
            rows: runs.map { run in
                [.text(run.name), .text(run.model), .text(run.method), .text(run.dataset), .text(run.split),
                 .integer(run.step.map(Int64.init)), .text(run.status.rawValue), .integer(Int64(run.n)),
                 .number(run.accuracy, digits: 4), .number(run.meanConfidence, digits: 4)]
            })
        Console.out(table.render(format))
    }
}

// MARK: - track show

enum ShowCommand: Command {
    static let spec = CommandSpec(
        name: "show", abstract: "Show one run: metadata, params, tags, summary and logged metrics.",
        usage: "<run> [--db <path>]", arguments: [("<run>", "The run's name.")],
        options: SharedOptions.database)

    static func run(_ arguments: ParsedArguments) throws {
        guard arguments.positionals.count == 1 else { throw UsageError(message: "expected one run name") }
        let name = arguments.positionals[0]
        let store = try SharedOptions.openStore(arguments, readOnly: true)
        var filter = RunFilter()
        filter.names = [name]
        guard let run = try store.runSummaries(filter).first else {
            throw CommandFailure(message: "no run named '\(name)' in \(store.database.path) (see `track runs`)")
        }
        let detail = try store.query("""
            SELECT r.uuid, e.name, r.started_at, r.finished_at, r.source_file, r.source_sha256, r.source_format, p.name
            FROM runs r LEFT JOIN experiments e USING (experiment_id) LEFT JOIN runs p ON p.run_id = r.parent_run_id
            WHERE r.run_id = \(run.id)
            """).rows.first ?? []
        func text(_ index: Int) -> String? {
            guard index < detail.count, case .text(let s) = detail[index] else { return nil }
            return s
        }
        var out = "run:         \(run.name)\n"
        let fields: [(String, String?)] = [
            ("uuid", text(0)), ("experiment", text(1)), ("model", run.model), ("method", run.method),
            ("dataset", run.dataset), ("split", run.split), ("step", run.step.map(String.init)),
            ("epoch", run.epoch.map { JSONValue.format($0) }), ("extraction", run.extraction),
            ("parent", text(7)), ("status", run.status.rawValue), ("started", text(2)), ("finished", text(3)),
            ("source", text(4)), ("sha256", text(5)), ("format", text(6)),
        ]
        for (key, value) in fields {
            guard let value else { continue }
            out += (key + ":").padding(toLength: 13, withPad: " ", startingAt: 0) + value + "\n"
        }
        out += "questions:   \(run.n)\n"
        if let accuracy = run.accuracy, let confidence = run.meanConfidence {
            out += String(format: "accuracy:    %.4f\nmean conf:   %.4f\noverconf:    %+.4f\n",
                          accuracy, confidence, confidence - accuracy)
        }
        for table in ["params", "tags"] {
            let pairs = try store.keyValues(table, runID: run.id)
            if pairs.isEmpty { continue }
            out += "\(table):\n"
            for (key, value) in pairs { out += "  \(key) = \(value)\n" }
        }
        let metrics = try store.query("""
            SELECT key, COUNT(*) AS n, MAX(step) AS last_step,
                   (SELECT value FROM metrics m2 WHERE m2.run_id = m.run_id AND m2.key = m.key
                     ORDER BY step DESC, timestamp DESC LIMIT 1) AS last_value
            FROM metrics m WHERE run_id = \(run.id) GROUP BY key ORDER BY key
            """)
        if !metrics.rows.isEmpty {
            out += "metrics (last value):\n"
            for row in metrics.rows {
                if case .text(let key) = row[0], case .integer(let n) = row[1], case .real(let value) = row[3] {
                    out += "  \(key) = \(JSONValue.format(value))  (\(n) logged)\n"
                }
            }
        }
        Console.out(out)
    }
}

// MARK: - track sql

enum SQLCommand: Command {
    static let spec = CommandSpec(
        name: "sql", abstract: "Run SQL over the store (read-only unless --write).",
        usage: "\"SELECT …\" [--db <path>] [--format table|csv|json] [--write] [--timeout <seconds>]",
        discussion: """
        Views: predictions, run_summary, run_calibration, reliability_bins, classwise_bins,
        subject_calibration, preference_winrate, judged_winrate (each with the run's name, `run`).
        Tables: runs, params, tags, metrics, questions, option_scores (run_id, question_id, option, prob, score).
        Several statements separated by ';' run in order (with --write, in one transaction) and
        each that returns rows is printed. Without --write a statement that would change the file
        is refused before it runs; ATTACH and fts3_tokenizer are refused either way.
        """,
        arguments: [("<sql>", "One or more SQL statements.")],
        options: SharedOptions.database + [
            .value("format", "format", "table, csv or json (default: table)."),
            .flag("write", "Open the database for writing; all statements run in one transaction."),
            .value("timeout", "seconds", "Stop a query that runs longer than this (default: no limit)."),
        ])

    static func run(_ arguments: ParsedArguments) throws {
        guard arguments.positionals.count == 1 else { throw UsageError(message: "expected one SQL argument (quote it)") }
        let script = arguments.positionals[0]
        guard !script.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw UsageError(message: "no SQL statement given")
        }
        let format = try SharedOptions.outputFormat(arguments, allowed: [.table, .csv, .json])
        let write = arguments.flag("write")
        let timeout = try arguments.double("timeout")
        let store = try SharedOptions.openStore(arguments, readOnly: !write)
        let database = store.database
        database.restrictForAdHocSQL(timeout: timeout)
        let results: [QueryResult]
        do {
            // Plain SQL fires the triggers that keep the stored summaries honest;
            // the summaries of the runs it touched are then recomputed.
            database.triggersEnabled = true
            if write {
                results = try database.transaction { try database.runScript(script, refuseWrites: false) }
            } else {
                results = try database.runScript(script, refuseWrites: true)
            }
            database.triggersEnabled = false
            if write { try store.refreshStaleSummaries() }
        } catch let error as SQLiteError {
            if error.code == 9 { // SQLITE_INTERRUPT
                throw CommandFailure(message: "the query ran longer than --timeout \(timeout ?? 0) s and was stopped; nothing was changed")
            }
            let readOnlyFile = error.message.contains("readonly") || error.message.contains("read-only")
            throw CommandFailure(message: error.message + (readOnlyFile ? (write ? " (the file or its folder is not writable)" : " (pass --write to modify the store)") : "")
                                 + (write ? "; nothing was changed" : ""))
        } catch let error as StoreError {
            if error.message == "no SQL statement given" { throw UsageError(message: error.message) }
            throw CommandFailure(message: error.message + (write ? "" : " (pass --write to modify it)"))
        }
        Console.out(results.map { TextTable($0).render(format) }.joined(separator: format == .table ? "\n" : ""))
    }
}

// MARK: - track check

enum CheckCommand: Command {
    static let spec = CommandSpec(
        name: "check", abstract: "Check a store: SQLite's integrity check, foreign keys, stored summaries.",
        usage: "[--db <path>]",
        discussion: """
        Exit 0 when the store is sound, 1 when not (each problem on stderr). A store that fails is
        marked, and writing commands refuse it until a later check passes: nothing is written into
        a damaged file. Repair one with `sqlite3 damaged.sqlite .recover | sqlite3 repaired.sqlite`.
        """,
        options: SharedOptions.database)

    static func run(_ arguments: ParsedArguments) throws {
        guard arguments.positionals.isEmpty else { throw UsageError(message: "unexpected argument '\(arguments.positionals[0])'") }
        let path = SharedOptions.databasePath(arguments)
        guard FileManager.default.fileExists(atPath: path) else { throw CommandFailure(message: "\(path): no such file") }
        let report = try RunStore.check(path: path, busyTimeout: try arguments.double("busy-timeout") ?? 10)
        if report.isHealthy {
            Console.out("\(path): ok\n")
            return
        }
        for problem in report.problems { Console.err("\(path): \(problem)\n") }
        throw CommandFailure(message: "\(path) failed the check (\(report.problems.count) problem\(report.problems.count == 1 ? "" : "s")); writing commands will refuse it")
    }
}
