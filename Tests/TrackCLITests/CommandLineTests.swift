import Foundation
import Testing
import TrackStore

@Suite struct CommandLineTests {
    @Test func helpForEveryCommandExitsZero() throws {
        let main = try TrackBinary.run(["--help"])
        #expect(main.status == 0 && main.stdout.contains("SUBCOMMANDS:") && main.stdout.contains("ingest"))
        for command in ["init", "log", "ingest", "runs", "show", "sql", "demo"] {
            let help = try TrackBinary.run([command, "--help"])
            #expect(help.status == 0, "\(command)")
            #expect(help.stdout.contains("OVERVIEW:") && help.stdout.contains("USAGE: track \(command)"), "\(command)")
            #expect(try TrackBinary.run(["help", command]).stdout == help.stdout)
        }
    }

    @Test func usageErrorsExit64WithUsageOnStderr() throws {
        let unknown = try TrackBinary.run(["ingest", "--no-such-flag", "x.csv"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("Error: unknown option '--no-such-flag'"))
        #expect(unknown.stderr.contains("Usage: track ingest"))
        #expect(unknown.stderr.contains("See 'track ingest --help'"))
        #expect(unknown.stdout.isEmpty)
        #expect(try TrackBinary.run(["frobnicate"]).status == 64)
        #expect(try TrackBinary.run(["log"]).status == 64)                       // --run is required
        #expect(try TrackBinary.run(["runs", "--format", "xml"]).status == 64)
        #expect(try TrackBinary.run(["ingest", "a.csv", "--step", "two"]).status == 64)
    }

    @Test func runtimeErrorsExit1() throws {
        let scratch = Scratch()
        let missing = try TrackBinary.run(["runs", "--db", scratch.path("none.sqlite")])
        #expect(missing.status == 1 && missing.stderr.hasPrefix("Error: "))
        let notADatabase = scratch.write("junk.sqlite", String(repeating: "junk ", count: 500))
        let refused = try TrackBinary.run(["init", "--db", notADatabase])
        #expect(refused.status == 1 && refused.stderr.contains("is not a track database"))
    }

    @Test func ingestThenSQLGivesTheRightAccuracy() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        let ingest = try TrackBinary.run(["ingest", StoreFixtures.path("synthetic-seed0-n1000.csv"), "--db", db,
                                          "--run", "syn", "--model", "m", "--method", "DPO", "--tag", "seed=0"])
        #expect(ingest.status == 0, "\(ingest.stderr)")
        #expect(ingest.stdout.contains("1000 questions -> run 'syn'"))
        let sql = try TrackBinary.run(["sql", "--db", db, "--format", "csv",
                                       "SELECT n, accuracy, mean_confidence FROM run_summary WHERE run = 'syn'"])
        #expect(sql.status == 0)
        let row = sql.stdout.split(separator: "\n")[1].split(separator: ",").map(String.init)
        #expect(row[0] == "1000")
        #expect(abs(Double(row[1])! - 0.614) < 1e-12)
        #expect(abs(Double(row[2])! - 0.780578) < 5e-7)
        // Read-only unless --write.
        let write = try TrackBinary.run(["sql", "--db", db, "DELETE FROM runs"])
        #expect(write.status == 1 && write.stderr.contains("--write"))
        // runs filters and formats
        let json = try TrackBinary.run(["runs", "--db", db, "--method", "DPO", "--tag", "seed=0", "--format", "json"])
        let parsed = try JSONParser.parse(json.stdout)
        #expect(parsed.arrayValue?.count == 1 && parsed.arrayValue?[0]["n"] == .number(1000))
        #expect(try TrackBinary.run(["runs", "--db", db, "--method", "SFT", "--format", "json"]).stdout == "[]\n")
        let show = try TrackBinary.run(["show", "syn", "--db", db])
        #expect(show.stdout.contains("accuracy:         0.6140") && show.stdout.contains("seed = 0"))
    }

    @Test func databasePathFromEnvironment() throws {
        let scratch = Scratch()
        let db = scratch.path("env.sqlite")
        #expect(try TrackBinary.run(["init"], environment: ["TRACK_DB": db]).status == 0)
        #expect(FileManager.default.fileExists(atPath: db))
        // Default: ./track.sqlite
        #expect(try TrackBinary.run(["init"], directory: scratch.url).status == 0)
        #expect(FileManager.default.fileExists(atPath: scratch.path("track.sqlite")))
    }

    @Test func ingestOfLMEvalSamplesThroughTheBinary() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        let file = StoreFixtures.path("lm-eval-0.4.13/Qwen__Qwen3-8B/samples_casino_belief_2025-06-01T12-00-00.123456.jsonl")
        let first = try TrackBinary.run(["ingest", file, "--db", db, "--method", "base"])
        #expect(first.status == 0 && first.stdout.contains("2 questions -> run 'Qwen/Qwen3-8B/base/casino_belief' (lm-eval)"))
        let again = try TrackBinary.run(["ingest", file, "--db", db])
        #expect(again.status == 0 && again.stdout.contains("already ingested") && again.stdout.contains("pass --force"))
        // Under a new name, --force stores it again as a second run.
        let second = try TrackBinary.run(["ingest", file, "--db", db, "--run", "qwen-again"])
        #expect(second.stdout.contains("pass --force to store it again as a second run 'qwen-again'"), "\(second.stdout)")
        #expect(try TrackBinary.run(["ingest", file, "--db", db, "--run", "qwen-again", "--force"]).stdout.contains("-> run 'qwen-again'"))
        // Metadata corrected after ingest, checked before any work.
        let set = try TrackBinary.run(["set", "Qwen/Qwen3-8B/base/casino_belief", "--method", "DPO", "--epoch", "1", "--db", db])
        #expect(set.status == 0, "\(set.stderr)")
        #expect(try RunStore(path: db, readOnly: true).runMetadata(named: "Qwen/Qwen3-8B/base/casino_belief")?.method == "DPO")
        #expect(try TrackBinary.run(["set", "Qwen/Qwen3-8B/base/casino_belief", "--epoch", "-1", "--db", db]).status == 64)
        #expect(try TrackBinary.run(["set", "Qwen/Qwen3-8B/base/casino_belief", "--db", db]).status == 64)
        #expect(try TrackBinary.run(["set", "nope", "--step", "3", "--db", db]).status == 1)
        let bad = scratch.write("bad.jsonl", #"{"id": "a", "label": 0, "probs": [0.5, 0.6]}"# + "\n")
        let refused = try TrackBinary.run(["ingest", bad, "--db", db])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("bad.jsonl:1: probabilities sum to 1.1"))
    }

    @Test func demoBuildsSimulatedRunsWithOverconfidentDPO() throws {
        let scratch = Scratch()
        let db = scratch.path("demo.sqlite")
        let demo = try TrackBinary.run(["demo", "--db", db, "--out", scratch.path("exports"), "--questions", "300"])
        #expect(demo.status == 0, "\(demo.stderr)")
        #expect(demo.stdout.contains("SIMULATED"))
        let runsCSV = try String(contentsOfFile: scratch.path("exports/demo_runs.csv"), encoding: .utf8)
        #expect(runsCSV.split(separator: "\n").count == 55)
        let regimes = try String(contentsOfFile: scratch.path("exports/gallery_regimes.png.csv"), encoding: .utf8)
        let regimeRows = regimes.split(separator: "\n").dropFirst().map { $0.split(separator: ",").map(String.init) }
        #expect(regimeRows.count == 5)
        for row in regimeRows {   // run, accuracy, conf_ece, regime, a_star
            #expect(row[3] == (Double(row[1])! > Double(row[4])! ? "non-calibratable" : "calibratable"), "\(row)")
        }
        let table = try String(contentsOfFile: scratch.path("exports/demo_table2.tex"), encoding: .utf8)
        #expect(table.contains("\\toprule") && table.contains("\\multicolumn{3}{c}{in-domain}") && table.contains("Vicuna-7B-sim & DPO"))
        let store = try RunStore(path: db, readOnly: true)
        var filter = RunFilter()
        filter.method = "DPO"
        let dpo = try store.runSummaries(filter)
        filter.method = "SFT"
        let sft = try store.runSummaries(filter)
        #expect(dpo.count == 6 && sft.count == 6)
        let gap = { (runs: [RunSummary]) in runs.map { $0.meanConfidence! - $0.accuracy! }.reduce(0, +) / Double(runs.count) }
        #expect(gap(dpo) > gap(sft) + 0.1)
        #expect(try store.database.scalarInt("SELECT count(*) FROM preference_pairs") ?? 0 > 0)
        // Same seed, same data.
        let again = try TrackBinary.run(["demo", "--db", db, "--out", scratch.path("exports"), "--questions", "300"])
        #expect(again.status == 0)
        let store2 = try RunStore(path: db, readOnly: true)
        #expect(try store2.runSummaries().map(\.accuracy) == store.runSummaries().map(\.accuracy))
        // Never overwrites a database that is not a demo.
        let real = scratch.path("real.sqlite")
        _ = try TrackBinary.run(["init", "--db", real])
        #expect(try TrackBinary.run(["demo", "--db", real]).status == 1)
    }
}

/// Issue 24: the CLI module linked by its tests. A command run in-process (parse → validate →
/// run, output captured) says exactly what the binary says; rules between options are checked
/// before any store is opened; every choice says what it accepts and suggests the closest.
@Suite struct InProcessCommandLineTests {
    @Test func inProcessRunsSayWhatTheBinarySays() throws {
        let scratch = Scratch()
        let db = scratch.path("demo.sqlite")
        #expect(try TrackBinary.launch(["demo", "--db", db, "--out", scratch.path("exports"), "--questions", "50", "--quiet"]).status == 0)
        let dpo = "Vicuna-7B-sim/DPO/in-domain"
        let commands: [[String]] = [
            ["runs", "--db", db, "--where", "method = 'DPO'"], ["show", dpo, "--db", db, "--format", "json"],
            ["metrics", dpo, "--db", db, "--ci", "--resamples", "30", "--format", "csv"], ["metrics", "Vicuna-7B-sim/DPO/in-domian", "--db", db],
            ["metrics", dpo, "--db", db, "--resampls", "3"], ["metrics", dpo, "--db", db, "--bins", "0"], ["metrcs"],
            ["calibrate", "temprature", "--fit", dpo, "--db", db], ["plot", "relability", dpo, "--db", db],
            ["sql", "SELECT count(*) AS n FROM runs", "--db", db, "--format", "csv"], ["help", "table"], ["--version"],
        ]
        for command in commands {
            let inProcess = try TrackBinary.run(command), launched = try TrackBinary.launch(command)
            #expect(inProcess.status == launched.status && inProcess.stdout == launched.stdout && inProcess.stderr == launched.stderr,
                    "track \(command.joined(separator: " ")): in-process \(inProcess.status) \(inProcess.stderr) vs binary \(launched.status) \(launched.stderr)")
        }
        let typo = try TrackBinary.run(["calibrate", "temprature", "--fit", dpo, "--db", db])
        #expect(typo.status == 64 && typo.stderr.contains("did you mean 'temperature'?"), "\(typo.stderr)")
        #expect(try TrackBinary.run(["metrics", dpo, "--db", db, "--resampls", "3"]).stderr.contains("did you mean '--resamples'?"))
    }

    @Test func crossOptionRulesComeBeforeAnyStoreIsOpened() throws {
        let scratch = Scratch()
        let db = scratch.path("never.sqlite")
        for command in [["calibrate", "temperature", "--db", db], ["calibrate", "temperature", "--fit", "a", "--holdout", "0.2", "--folds", "3", "--db", db],
                        ["plot", "grid", "--db", db], ["plot", "reliability", "a", "--by", "subject", "--db", db],
                        ["plot", "reliability", "a", "--out", scratch.path("x.gif"), "--db", db], ["merge", "a.sqlite"], ["calibrate", "--db", db]] {
            let result = try TrackBinary.run(command)
            #expect(result.status == 64, "track \(command.joined(separator: " ")): \(result.status) \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: db), "track \(command.joined(separator: " ")) created the store")
        }
    }

    @Test func oneDefaultForResamplesAndSeed() throws {
        for command in ["metrics", "compare", "table", "plot", "report"] {
            let help = try TrackBinary.run(["help", command]).stdout
            #expect(help.contains("--resamples <n>") && help.contains("(default: 1000)"), "\(command)")
        }
        for command in ["metrics", "compare", "table", "calibrate", "demo"] {
            let help = try TrackBinary.run(["help", command]).stdout
            let line = help.split(separator: "\n").first { $0.hasPrefix("  --seed <n>") }.map(String.init) ?? ""
            #expect(line.contains("(default: 0)"), "\(command): \(line)")
        }
    }
}

/// Issue 28: the schema is discoverable from the binary: tables and views with their columns and
/// the comments of sql/, public ones by default.
@Suite struct SchemaCommandTests {
    @Test func tablesViewsColumnsAndTheirNotes() throws {
        let list = try TrackBinary.run(["schema"])
        #expect(list.status == 0)
        for name in ["runs", "option_scores", "questions", "run_calibration", "predictions", "subject_calibration"] {
            #expect(list.stdout.contains("\n\(name) "), "lists \(name)")
        }
        #expect(!list.stdout.contains("_track_stale_run_bins") && !list.stdout.contains("_track_run_bins ") && !list.stdout.contains("track_meta"))
        let all = try TrackBinary.run(["schema", "--all"])
        #expect(all.stdout.contains("_track_stale_run_bins") && all.stdout.contains("_track_run_bins") && all.stdout.contains("track's own"))
        // Every public object says what it holds.
        let catalog = try #require(try JSONSerialization.jsonObject(with: Data(TrackBinary.run(["schema", "--format", "json"]).stdout.utf8)) as? [[String: Any]])
        #expect(catalog.count >= 20)
        for object in catalog { #expect((object["description"] as? String)?.isEmpty == false, "\(object["name"] ?? "")") }
        // A table's columns with their notes; the key is run_id.
        let runs = try TrackBinary.run(["schema", "runs"])
        #expect(runs.stdout.contains("run_id") && runs.stdout.contains("never reused") && runs.stdout.contains("what users type"))
        // A view's columns are the ones SQLite reports for it in a real store.
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        #expect(try TrackBinary.run(["init", "--db", db]).status == 0)
        let view = try #require(try JSONSerialization.jsonObject(with: Data(TrackBinary.run(["schema", "run_calibration", "--format", "json"]).stdout.utf8)) as? [String: Any])
        let columns = (view["columns"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        let pragma = try TrackBinary.run(["sql", "SELECT name FROM pragma_table_info('run_calibration')", "--db", db, "--format", "csv"])
        #expect(columns == pragma.stdout.split(separator: "\n").dropFirst().map(String.init))
        #expect((view["columns"] as? [[String: Any]])?.first { $0["name"] as? String == "conf_ece" }?["note"] as? String == "top-label ECE, 10 equal-width bins")
        // A guessed column is answered with the real ones; a typo with a suggestion.
        let guessed = try TrackBinary.run(["schema", "runs.id"])
        #expect(guessed.status == 64 && guessed.stderr.contains("no column 'id'") && guessed.stderr.contains("run_id"), "\(guessed.stderr)")
        let typo = try TrackBinary.run(["schema", "run_calibraton"])
        #expect(typo.status == 64 && typo.stderr.contains("did you mean 'run_calibration'"), "\(typo.stderr)")
        #expect(try TrackBinary.run(["schema", "run_calibration.conf_ece"]).stdout.contains("top-label ECE"))
    }
}

/// Issue 28: `track runs` shows what it filtered and sorted by, chooses columns, and its JSON
/// carries every field, params and tags; a filter that differs only in case says so.
@Suite struct RunsColumnsTests {
    @Test func columnsFilterFieldsJSONAndCaseHints() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        for (name, method, lr, sharp) in [("a", "DPO", "5e-7", 2.0), ("b", "DPO", "1e-6", 3.0), ("c", "SFT", "5e-7", 1.0)] {
            let lines = (0..<30).map { i -> String in
                let p = i % 3 == 0 ? [0.9, 0.1] : [1 / (1 + sharp), sharp / (1 + sharp)]
                return #"{"id": "q\#(i)", "label": \#(i % 2), "probs": [\#(p[0]), \#(p[1])]}"#
            }.joined(separator: "\n") + "\n"
            let result = try TrackBinary.run(["log", "--run", name, "--method", method, "--param", "lr=\(lr)", "--tag", "seed=\(name)",
                                              "--dataset", "d", "--db", db], input: lines)
            #expect(result.status == 0, "\(result.stderr)")
        }
        // Filtered and sorted by fields the default table lacks: they are shown.
        let filtered = try TrackBinary.run(["runs", "--where", "params.lr = 5e-7 and conf_ece >= 0", "--sort", "brier", "--db", db])
        let header = filtered.stdout.split(separator: "\n").first.map { $0.split(separator: " ").map(String.init) } ?? []
        #expect(header.suffix(3) == ["params.lr", "conf_ece", "brier"], "\(header)")
        // --columns chooses; CSV has exactly those.
        let csv = try TrackBinary.run(["runs", "--columns", "run,params.lr,tags.seed,cw_ece", "--format", "csv", "--db", db])
        let rows = csv.stdout.split(separator: "\n").map(String.init)
        #expect(rows.first == "run,params.lr,tags.seed,cw_ece" && rows.count == 4 && rows[1].hasPrefix("a,5e-7,a,"), "\(rows)")
        let unknown = try TrackBinary.run(["runs", "--columns", "run,conf_ec", "--db", db])
        #expect(unknown.status == 64 && unknown.stderr.contains("did you mean 'conf_ece'"))
        // JSON: every field, the stored metrics, params and tags; conf_ece equals track metrics'.
        let json = try #require(try JSONSerialization.jsonObject(with: Data(TrackBinary.run(["runs", "--format", "json", "--db", db]).stdout.utf8)) as? [[String: Any]])
        let first = try #require(json.first)
        for key in ["run", "model", "method", "dataset", "split", "step", "epoch", "status", "n", "accuracy", "conf_ece", "cw_ece", "brier", "nll", "params", "tags"] {
            #expect(first.keys.contains(key), "JSON lacks \(key)")
        }
        #expect((first["params"] as? [String: String])?["lr"] == "5e-7" && (first["tags"] as? [String: String])?["seed"] == "a")
        let metrics = try #require(try JSONSerialization.jsonObject(with: Data(TrackBinary.run(["metrics", "a", "--format", "json", "--db", db]).stdout.utf8)) as? [[String: Any]])
        #expect(abs((first["conf_ece"] as? Double ?? -1) - (metrics[0]["conf_ece"] as? Double ?? -2)) < 1e-12)
        // A filter that matches only in another case says so.
        let cased = try TrackBinary.run(["runs", "--method", "dpo", "--db", db])
        #expect(cased.status == 0 && cased.stderr.contains("did you mean 'DPO'"), "\(cased.stderr)")
    }
}

/// Issue 28: where a command writes, said; a failed first write leaves no file; messages that
/// name the delimiter or the format; numbers from SQL as they are.
@Suite struct WhereAmIWritingTests {
    @Test func storesAreNamedAndAFailedFirstIngestLeavesNoFile() throws {
        let scratch = Scratch()
        let fixture = StoreFixtures.path("synthetic-seed0-n1000.csv")
        // Named, and said to come from $TRACK_DB when it does.
        let viaEnvironment = try TrackBinary.run(["ingest", fixture, "--run", "syn"], environment: ["TRACK_DB": "env.sqlite"], directory: scratch.url)
        #expect(viaEnvironment.status == 0 && viaEnvironment.stdout.contains("in ./env.sqlite (from $TRACK_DB)"), "\(viaEnvironment.stdout)")
        let given = try TrackBinary.run(["ingest", fixture, "--run", "syn", "--db", scratch.path("given.sqlite")])
        #expect(given.stdout.contains("in \(scratch.path("given.sqlite"))") && !given.stdout.contains("TRACK_DB"))
        // A missing store named by $TRACK_DB says so.
        let missing = try TrackBinary.run(["runs"], environment: ["TRACK_DB": scratch.path("missing.sqlite")])
        #expect(missing.status == 1 && missing.stderr.contains("$TRACK_DB"), "\(missing.stderr)")
        // A semicolon-separated file: the delimiter is named, and the new store is not left behind.
        let semicolons = scratch.write("semi.csv", "id;p0;p1;label\nq1;0.2;0.8;1\n")
        let fresh = scratch.path("fresh.sqlite")
        let failed = try TrackBinary.run(["ingest", semicolons, "--db", fresh])
        #expect(failed.status == 1 && failed.stderr.contains("separated by ';'"), "\(failed.stderr)")
        for suffix in ["", "-wal", "-shm"] { #expect(!FileManager.default.fileExists(atPath: fresh + suffix), "\(fresh + suffix) left behind") }
        // Into an existing store, the same failure changes nothing and removes nothing.
        let kept = try TrackBinary.run(["ingest", semicolons, "--db", scratch.path("given.sqlite")])
        #expect(kept.status == 1 && kept.stderr.contains("the database is unchanged") && FileManager.default.fileExists(atPath: scratch.path("given.sqlite")))
        // JSON lines read as CSV: the format is named, not the first line echoed.
        let jsonl = scratch.write("rows.jsonl", #"{"id": "q1", "label": 0, "probs": [0.7, 0.3]}"# + "\n")
        let asCSV = try TrackBinary.run(["ingest", jsonl, "--format", "csv", "--db", scratch.path("x.sqlite")])
        #expect(asCSV.status == 1 && asCSV.stderr.contains("JSON-lines file") && !asCSV.stderr.contains("\"probs\""), "\(asCSV.stderr)")
        // SQL numbers as SQLite returns them: round(x, 3) is 0.123, not 0.123000.
        let sql = try TrackBinary.run(["sql", "SELECT round(0.123456, 3) AS r, 2.0 AS two", "--db", scratch.path("given.sqlite")])
        #expect(sql.stdout.contains("0.123") && !sql.stdout.contains("0.123000") && sql.stdout.contains("2.0"), "\(sql.stdout)")
    }
}

/// Issue 28: logging a run again: --append never logs a metric row twice; --replace starts over;
/// the refusal names both and `track rm`.
@Suite struct RelogTests {
    @Test func appendKeepsMetricsOnceAndReplaceStartsOver() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        func stream(_ ids: Range<Int>) -> String {
            (0..<10).map { #"{"metric": "train/loss", "value": \#(1.0 / Double($0 + 1)), "step": \#($0)}"# }.joined(separator: "\n") + "\n"
                + ids.map { #"{"id": "q\#($0)", "label": 0, "probs": [0.6, 0.4]}"# }.joined(separator: "\n") + "\n"
        }
        #expect(try TrackBinary.run(["log", "--run", "r", "--dataset", "d", "--db", db], input: stream(0..<5)).status == 0)
        let refused = try TrackBinary.run(["log", "--run", "r", "--dataset", "d", "--db", db], input: stream(5..<10))
        #expect(refused.status != 0 && refused.stderr.contains("--append") && refused.stderr.contains("--replace") && refused.stderr.contains("track rm r"), "\(refused.stderr)")
        // The stream sends its metric history again: still 10 rows, and the new questions are added.
        let appended = try TrackBinary.run(["log", "--run", "r", "--dataset", "d", "--append", "--db", db], input: stream(5..<10))
        #expect(appended.status == 0, "\(appended.stderr)")
        func count(_ sql: String) throws -> String {
            try TrackBinary.run(["sql", sql, "--db", db, "--format", "csv"]).stdout.split(separator: "\n").last.map(String.init) ?? ""
        }
        #expect(try count("SELECT count(*) FROM metrics") == "10")
        #expect(try count("SELECT n FROM run_summary WHERE run = 'r'") == "10")
        // --replace: the run holds only what the new stream sends.
        let replaced = try TrackBinary.run(["log", "--run", "r", "--dataset", "d", "--replace", "--db", db], input: stream(20..<23))
        #expect(replaced.status == 0, "\(replaced.stderr)")
        #expect(try count("SELECT n FROM run_summary WHERE run = 'r'") == "3" && count("SELECT count(*) FROM metrics") == "10")
        #expect(try count("SELECT count(*) FROM runs") == "1")
        #expect(try TrackBinary.run(["log", "--run", "r", "--append", "--replace", "--db", db], input: "").status == 64)
    }
}

/// Issue 28: every CSV output is one table (pandas.read_csv loads it): compare's parts by --table.
@Suite struct OneTablePerCSVTests {
    /// Runs `base` and `other` over the same 60 questions of subjects s0 and s1.
    static func twoRuns(_ scratch: Scratch) throws -> String {
        let db = scratch.path("t.sqlite")
        for (name, sharp) in [("base", 1.0), ("other", 3.0)] {
            let lines = (0..<60).map { i -> String in
                let p = 1 / (1 + sharp * Double(i % 4 + 1) / 4)
                return #"{"id": "q\#(i)", "label": \#(i % 3 == 0 ? 1 : 0), "probs": [\#(p), \#(1 - p)], "subject": "s\#(i % 2)"}"#
            }.joined(separator: "\n") + "\n"
            #expect(try TrackBinary.run(["log", "--run", name, "--dataset", "d", "--db", db], input: lines).status == 0)
        }
        return db
    }

    @Test func compareCSVIsOneTableEachPart() throws {
        let scratch = Scratch()
        let db = try Self.twoRuns(scratch)
        for (part, header) in [("metrics", "run,metric,base,other,delta,CR %"), ("tests", "run,metric,base,other,delta,delta_lo,delta_hi,p,significant"),
                               ("paired", nil), ("groups", nil)] as [(String, String?)] {
            let result = try TrackBinary.run(["compare", "base", "other", "--format", "csv", "--table", part, "--resamples", "50", "--db", db])
            #expect(result.status == 0, "\(result.stderr)")
            let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            // One header, every row the header's width, no caption or blank line in between.
            let width = lines.first.map { CSVWidth.fields($0) } ?? 0
            #expect(width >= 3 && lines.count >= 2 && lines.allSatisfy { CSVWidth.fields($0) == width }, "\(part): \(result.stdout)")
            if let header { #expect(lines.first.map(String.init) == header) }
            if part == "tests" {
                // p is a number in CSV (the table prints `< 0.001`).
                let p = lines.dropFirst().compactMap { CSVWidth.split($0).dropLast().last }.first ?? ""
                #expect(Double(p) != nil, "p is '\(p)'")
            }
        }
        let noTable = try TrackBinary.run(["compare", "base", "other", "--format", "csv", "--resamples", "50", "--db", db])
        #expect(noTable.stdout.hasPrefix("run,metric,base,other,delta,CR %\n") && !noTable.stdout.contains("delta_lo") && noTable.stderr.contains("--table"))
    }
}

/// Splits one CSV line (quotes respected), for the tests' checks of widths.
enum CSVWidth {
    static func split(_ line: Substring) -> [String] {
        var fields: [String] = [], current = "", quoted = false
        for character in line {
            if character == "\"" { quoted.toggle(); continue }
            if character == ",", !quoted { fields.append(current); current = ""; continue }
            current.append(character)
        }
        return fields + [current]
    }
    static func fields(_ line: Substring) -> Int { split(line).count }
}

/// Issue 28: per-group outputs sort and cut: the worst subjects first.
@Suite struct GroupSortTests {
    @Test func metricsBySubjectSortsAndLimits() throws {
        let scratch = Scratch()
        let db = scratch.path("t.sqlite")
        let lines = (0..<90).map { i -> String in
            let p = [0.55, 0.75, 0.95][i % 3]
            return #"{"id": "q\#(i)", "label": \#(i % 2), "probs": [\#(p), \#(1 - p)], "subject": "s\#(i % 3)"}"#
        }.joined(separator: "\n") + "\n"
        #expect(try TrackBinary.run(["log", "--run", "r", "--dataset", "d", "--db", db], input: lines).status == 0)
        let all = try #require(try JSONSerialization.jsonObject(with: Data(TrackBinary.run(["metrics", "r", "--by", "subject", "--format", "json", "--db", db]).stdout.utf8)) as? [[String: Any]])
        let worst = all.max { ($0["conf_ece"] as? Double ?? 0) < ($1["conf_ece"] as? Double ?? 0) }?["subject"] as? String
        let top = try #require(try JSONSerialization.jsonObject(with: Data(TrackBinary.run(["metrics", "r", "--by", "subject", "--sort", "conf_ece", "--desc", "--limit", "1",
                                                                                                "--format", "json", "--db", db]).stdout.utf8)) as? [[String: Any]])
        #expect(top.count == 1 && top[0]["subject"] as? String == worst)
        let ascending = try #require(try JSONSerialization.jsonObject(with: Data(TrackBinary.run(["metrics", "r", "--by", "subject", "--sort", "conf_ece",
                                                                                                      "--format", "json", "--db", db]).stdout.utf8)) as? [[String: Any]])
        let values = ascending.compactMap { $0["conf_ece"] as? Double }
        #expect(values == values.sorted() && values.count == 3)
        #expect(try TrackBinary.run(["metrics", "r", "--sort", "conf_ece", "--db", db]).status == 64)
        #expect(try TrackBinary.run(["metrics", "r", "--by", "subject", "--sort", "conf_ec", "--db", db]).stderr.contains("did you mean 'conf_ece'"))
    }
}

/// Issue 28: one exit-code rule: an output the command cannot write in the form asked (an image name
/// for a table, a report that is not .html, a figure that is not .png/.pdf/.svg) is a usage error.
@Suite struct OutputFormatExitTests {
    @Test func unsupportedOutputNamesExit64BeforeAnyWork() throws {
        let scratch = Scratch()
        let db = scratch.path("never.sqlite")
        for arguments in [["plot", "reliability", "r", "--out", scratch.path("f.jpg")], ["table", "--out", scratch.path("t.jpg")],
                          ["metrics", "r", "--out", scratch.path("m.png")], ["compare", "a", "b", "--out", scratch.path("c.pdf")],
                          ["report", "--out", scratch.path("r.jpg")]] {
            let result = try TrackBinary.run(arguments + ["--db", db])
            #expect(result.status == 64 && result.stderr.contains("--out"), "\(arguments): \(result.status) \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: db), "refused before the store was opened")
    }
}

/// Issue 28: compare --by gives every metric's change by group, equal to each run's own
/// `metrics --by` when they share every question.
@Suite struct CompareByGroupTests {
    @Test func everyMetricsDeltaByGroup() throws {
        let scratch = Scratch()
        let db = try OneTablePerCSVTests.twoRuns(scratch)
        let compared = try #require(try JSONSerialization.jsonObject(with: Data(TrackBinary.run(["compare", "base", "other", "--no-tests", "--format", "json", "--db", db]).stdout.utf8)) as? [[String: Any]])
        let bySubject = try #require(compared.first?["metrics_by_subject"] as? [String: [String: [String: Any]]])
        #expect(Set(bySubject.keys) == ["s0", "s1"])
        for (run, field) in [("base", "base"), ("other", "other")] {
            let own = try #require(try JSONSerialization.jsonObject(with: Data(TrackBinary.run(["metrics", run, "--by", "subject", "--format", "json", "--db", db]).stdout.utf8)) as? [[String: Any]])
            for row in own {
                let subject = try #require(row["subject"] as? String)
                for key in ["conf_ece", "cw_ece", "brier", "nll", "accuracy"] {
                    let want = row[key] as? Double, got = bySubject[subject]?[key]?[field] as? Double
                    #expect(want != nil && got != nil && abs(want! - got!) < 1e-12, "\(run) \(subject) \(key)")
                }
            }
        }
        let table = try TrackBinary.run(["compare", "base", "other", "--no-tests", "--table", "group_metrics", "--format", "csv", "--db", db])
        #expect(table.stdout.hasPrefix("run,subject,metric,base,other,delta\n") && table.stdout.contains("other,s0,conf_ece,"))
    }
}
