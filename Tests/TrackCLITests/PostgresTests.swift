import Foundation
import Synchronization
import Testing
import TrackStore

/// The same store on PostgreSQL (issue 15), against a real server started by the tests.
@Suite struct PostgresTests {
    /// `track …` with the server's password in the environment; fails the test on a non-zero exit.
    @discardableResult
    static func track(_ arguments: [String], _ server: PostgresServer, input: String? = nil, expect status: Int32 = 0,
                      sourceLocation: SourceLocation = #_sourceLocation) throws -> TrackBinary.Result {
        let result = try TrackBinary.run(arguments, input: input, environment: server.environment)
        #expect(result.status == status, "track \(arguments.joined(separator: " ")): \(result.stderr)", sourceLocation: sourceLocation)
        #expect(!result.stdout.contains(PostgresServer.password) && !result.stderr.contains(PostgresServer.password), sourceLocation: sourceLocation)
        return result
    }

    /// Row counts of every table of the server's store: what "nothing changed" compares.
    static func counts(_ server: PostgresServer, _ database: String) throws -> String {
        let tables = ["runs", "params", "tags", "metrics", "questions", "option_scores", "_track_top_labels", "_track_run_stats", "_track_run_bins",
                      "preference_pairs", "judgments", "em_targets", "exports", "export_runs", "experiments", "_track_stale_runs", "calibration_folds"]
        return try server.psql("SELECT " + tables.map { "(SELECT count(*) FROM \($0))" }.joined(separator: " || ',' || "), database: database)
    }

    /// A demo store (simulated runs of every method, preference pairs, judgments, logged
    /// metrics) plus a temperature-scaled derived run, pushed; pushed again changes nothing;
    /// every read command prints the same from both stores; the views agree to 1e-12.
    @Test func pushTwiceChangesNothingAndReadsMatchSQLite() throws {
        let server = try PostgresServer.shared()
        let scratch = Scratch()
        let db = scratch.path("demo.sqlite")
        try Self.track(["demo", "--db", db, "--out", scratch.path("exports"), "--questions", "120"], server)
        let llama = "Llama-3.1-8B-Tulu-sim"
        try Self.track(["calibrate", "temperature", "--db", db, "--fit", "\(llama)/SFT/in-domain", "--apply", "\(llama)/DPO/in-domain"], server)
        try Self.track(["log", "--db", db, "--run", "curve", "--dataset", "c"],
                       server, input: #"{"metric": "train/loss", "value": 0.9, "step": 1}"# + "\n" + #"{"metric": "train/loss", "value": 0.5, "step": 2}"# + "\n"
                        + #"{"id": "a", "label": 0, "probs": [0.7, 0.3]}"# + "\n")
        let uri = try server.createDatabase("team")
        let first = try Self.track(["push", "--all", "--db", db, "--to", uri], server)
        let runCount = try Int(Self.track(["sql", "SELECT count(*) AS n FROM runs", "--db", db, "--format", "csv"], server).stdout.split(separator: "\n")[1])!
        #expect(first.stdout.components(separatedBy: "pushed '").count - 1 == runCount)
        let before = try Self.counts(server, "team")
        let again = try Self.track(["push", "--all", "--db", db, "--to", uri], server)
        #expect(again.stdout.components(separatedBy: "is already on the server").count - 1 == runCount)
        #expect(try Self.counts(server, "team") == before)
        // The demo's cross-fitted TS runs keep their folds, on the server's question ids.
        let folds = "SELECT r.name, f.fold, count(*) AS n FROM calibration_folds f JOIN runs r USING (run_id) JOIN questions q USING (question_id) GROUP BY r.name, f.fold ORDER BY r.name, f.fold"
        let localFolds = try Self.track(["sql", folds, "--db", db, "--format", "csv"], server).stdout
        #expect(localFolds.split(separator: "\n").count > 5)
        #expect(try Self.track(["sql", folds, "--db", uri, "--format", "csv"], server).stdout == localFolds)
        // The derived run keeps its link; the logged curve its points.
        #expect(try server.psql("SELECT p.name FROM runs r JOIN runs p ON p.run_id = r.parent_run_id WHERE r.name = '\(llama)/DPO/in-domain+TS'", database: "team") == "\(llama)/DPO/in-domain\n")
        #expect(try server.psql("SELECT string_agg(m.value::text, ',' ORDER BY m.step) FROM metrics m JOIN runs USING (run_id) WHERE key = 'train/loss' AND name = 'curve'", database: "team") == "0.9,0.5\n")

        // Read commands: the same output from either store.
        let dpo = "\(llama)/DPO/in-domain", sft = "\(llama)/SFT/in-domain"
        let commands: [[String]] = [
            ["runs", "--where", "method = 'DPO' and conf_ece > 0.05", "--sort", "conf_ece", "--desc"],
            // LIKE is case-insensitive on both; a parameter compared as a number (text that is not one never matches).
            ["runs", "--where", "run like 'llama%in-domain' and params.noise > 0.5", "--sort", "params.noise"],
            ["runs", "--where", "params.seed in (42, 7) or tags.simulated = 'true'", "--format", "csv"],
            ["runs", "--format", "json"],
            ["show", dpo, "--format", "json"],
            ["metrics", dpo, sft, "--ci", "--resamples", "40", "--format", "csv"],
            ["metrics", dpo, "--metrics", "smece,ace,l2_ece", "--by", "subject"],
            ["compare", sft, dpo, "\(dpo)+TS", "--resamples", "40"],
            ["table", "--format", "csv", "--out-dir", scratch.path("exports")],
            ["table", "--significance", "DPO", "--resamples", "30", "--format", "markdown", "--out-dir", scratch.path("exports")],
            ["tce", dpo, sft, "\(dpo)+TS", "--target", sft],
            ["winrate", dpo, sft],
            ["em", dpo, "--out", scratch.path("targets.csv")],
        ]
        for command in commands {
            let local = try Self.track(command + ["--db", db], server)
            let remote = try Self.track(command + ["--db", uri], server)
            #expect(local.stdout == remote.stdout, "track \(command.joined(separator: " ")) differs")
        }
        // A figure's numbers.
        try Self.track(["plot", "grid", dpo, sft, "--db", db, "--out", scratch.path("a.png")], server)
        try Self.track(["plot", "grid", dpo, sft, "--db", uri, "--out", scratch.path("b.png")], server)
        #expect(try String(contentsOfFile: scratch.path("a.png.csv"), encoding: .utf8) == String(contentsOfFile: scratch.path("b.png.csv"), encoding: .utf8))

        // Ad-hoc SQL: the views, run_calibration filters and notebook 02's queries (in SQL both
        // dialects read) give the same rows, numbers to 1e-12.
        let queries = [
            "SELECT * FROM run_calibration ORDER BY run",
            "SELECT run, conf_ece, cw_ece FROM run_calibration WHERE method = 'DPO' AND split = 'out-domain' ORDER BY conf_ece DESC",
            "SELECT * FROM run_summary ORDER BY run_id",
            "SELECT * FROM reliability_bins ORDER BY run_id, bin",
            "SELECT * FROM classwise_bins WHERE run = '\(dpo)' ORDER BY class, bin",
            "SELECT * FROM subject_calibration ORDER BY run_id, subject",
            "SELECT * FROM preference_winrate ORDER BY run_id",
            "SELECT run_id, question_id, pred, conf, correct FROM predictions WHERE run = '\(sft)' ORDER BY question_id",
            """
            WITH binned AS (
                SELECT p.run_id, p.subject, CASE WHEN FLOOR(p.conf * 10) > 9 THEN 9 ELSE FLOOR(p.conf * 10) END AS bin,
                       COUNT(*) AS n, AVG(p.correct) AS acc, AVG(p.conf) AS conf
                FROM predictions p JOIN runs r USING (run_id)
                WHERE r.method = 'DPO' AND r.split = 'out-domain'
                GROUP BY p.run_id, p.subject, 3)
            SELECT subject, SUM(n) AS n, SUM(n * ABS(acc - conf)) / SUM(n) AS conf_ece
            FROM binned GROUP BY subject ORDER BY conf_ece DESC, subject
            """,
            """
            SELECT r.name AS run, p.external_id, p.subject, p.conf, p.pred, p.label
            FROM predictions p JOIN runs r USING (run_id)
            WHERE p.correct = 0 AND r.method = 'DPO'
            ORDER BY p.conf DESC, run, p.external_id LIMIT 8
            """,
            """
            SELECT SUM(CASE WHEN a.correct = 1 AND b.correct = 0 THEN 1 ELSE 0 END) AS right_to_wrong,
                   SUM(CASE WHEN a.correct = 0 AND b.correct = 1 THEN 1 ELSE 0 END) AS wrong_to_right,
                   AVG(b.conf - a.conf) AS mean_delta_conf, AVG(ABS(b.conf - a.conf)) AS mean_abs_delta_conf
            FROM predictions a JOIN predictions b ON b.question_id = a.question_id
            WHERE a.run_id = (SELECT run_id FROM runs WHERE name = '\(llama)/SFT/out-domain')
              AND b.run_id = (SELECT run_id FROM runs WHERE name = '\(llama)/DPO/out-domain')
            """,
        ]
        for query in queries {
            let local = try JSONParser.parse(try Self.track(["sql", query, "--db", db, "--format", "json"], server).stdout)
            let remote = try JSONParser.parse(try Self.track(["sql", query, "--db", uri, "--format", "json"], server).stdout)
            let a = local.arrayValue ?? [], b = remote.arrayValue ?? []
            #expect(a.count == b.count && !a.isEmpty, "\(query): \(a.count) rows vs \(b.count)")
            for (x, y) in zip(a, b) { #expect(Self.same(x, y), "\(query): \(x) vs \(y)") }
        }
    }

    /// Equal JSON values, numbers to 1e-12 (relative for large ones).
    static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.number(let x), .number(let y)): return abs(x - y) <= 1e-12 * max(1, abs(x))
        case (.object(let x), .object(let y)):
            let keys = x.entries.map(\.key)
            return keys == y.entries.map(\.key) && keys.allSatisfy { same(x[$0]!, y[$0]!) }
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        default: return a == b
        }
    }

    static func line(_ id: Int, k: Int = 4) -> String {
        let probs = (0..<k).map { $0 == id % k ? "0.4" : String(format: "%.6f", 0.6 / Double(k - 1)) }
        return #"{"id": "q\#(id)", "label": \#((id / 3) % k), "probs": [\#(probs.joined(separator: ", "))]}"#
    }

    /// Eight writers log at once into one PostgreSQL store, over the same questions: nothing is lost.
    /// Version 7 renames track's own tables with a `_track_` prefix: a store left at version 6
    /// (the old names, its views gone) is migrated on open and reads as before.
    @Test func aVersion6StoreIsMigratedToPrefixedTables() throws {
        let server = try PostgresServer.shared()
        let uri = try server.createDatabase("v6")
        let lines = (0..<20).map { #"{"id": "q\#($0)", "label": \#($0 % 2), "probs": [0.7, 0.3]}"# }.joined(separator: "\n") + "\n"
        try Self.track(["log", "--run", "r", "--dataset", "d", "--db", uri], server, input: lines)
        let before = try Self.track(["metrics", "r", "--db", uri, "--format", "json"], server).stdout
        // Back to version 6's shape: views dropped, tables under their old names.
        _ = try server.psql("""
            DROP VIEW IF EXISTS judged_winrate, preference_winrate, category_calibration, subject_calibration, run_calibration,
                classwise_bins, reliability_bins, run_summary, predictions, _track_run_bin_gaps, _track_run_bin_totals,
                _track_stale_run_bins, _track_run_totals, _track_stale_question_terms, _track_stale_run_ids CASCADE;
            ALTER TABLE _track_top_labels RENAME TO top_labels; ALTER TABLE _track_run_stats RENAME TO run_stats;
            ALTER TABLE _track_run_bins RENAME TO run_bins; ALTER TABLE _track_stale_runs RENAME TO stale_runs;
            UPDATE track_meta SET value = '6' WHERE key = 'schema_version'; DELETE FROM track_meta WHERE key = 'views_sha256';
            """, database: "v6")
        #expect(try Self.track(["metrics", "r", "--db", uri, "--format", "json"], server).stdout == before)
        #expect(try server.psql("SELECT value FROM track_meta WHERE key = 'schema_version'", database: "v6").trimmingCharacters(in: .whitespacesAndNewlines) == "7")
        let tables = try server.psql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'", database: "v6")
        #expect(tables.contains("_track_top_labels") && !tables.contains(",top_labels") && !tables.contains(",run_stats"), "\(tables)")
    }

    @Test func eightConcurrentWritersLoseNothing() throws {
        let server = try PostgresServer.shared()
        let uri = try server.createDatabase("gpus")
        try Self.track(["init", "--db", uri], server)
        let perWriter = 600
        let input = (0..<perWriter).map { Self.line($0) }.joined(separator: "\n") + "\n"
        let results = Mutex<[Int32]>(Array(repeating: -1, count: 8))
        let environment = server.environment
        DispatchQueue.concurrentPerform(iterations: 8) { writer in
            let result = try? TrackBinary.run(["log", "--run", "gpu\(writer)", "--db", uri, "--dataset", "shared"],
                                              input: input, environment: environment)
            results.withLock { $0[writer] = result?.status ?? -1 }
        }
        #expect(results.withLock { $0 } == Array(repeating: 0, count: 8))
        #expect(try server.psql("SELECT count(*) FROM option_scores", database: "gpus") == "\(8 * perWriter * 4)\n")
        #expect(try server.psql("SELECT count(*) FROM questions", database: "gpus") == "\(perWriter)\n")
        #expect(try server.psql("SELECT string_agg(DISTINCT n::text || ' ' || status, ',') FROM run_calibration", database: "gpus") == "\(perWriter) finished\n")
        // The stored summaries equal what the views compute from the rows (marking every run stale).
        let stored = try server.psql("SELECT string_agg(run || ':' || round(conf_ece::numeric, 12), ',' ORDER BY run) FROM run_calibration", database: "gpus")
        _ = try server.psql("INSERT INTO _track_stale_runs(run_id) VALUES (0)", database: "gpus")
        #expect(try server.psql("SELECT string_agg(run || ':' || round(conf_ece::numeric, 12), ',' ORDER BY run) FROM run_calibration", database: "gpus") == stored)
    }

    /// Four writers appending to one run on the server at once (each GPU its shard): every row
    /// arrives and the run's stored summaries add up — equal to what the views compute from its
    /// rows and to the same appends into a SQLite store.
    @Test func concurrentAppendsToOneRunAddUp() throws {
        let server = try PostgresServer.shared()
        let uri = try server.createDatabase("appends")
        let scratch = Scratch()
        let local = scratch.path("same.sqlite")
        let first = (0..<10).map { Self.line($0) }.joined(separator: "\n") + "\n"
        for db in [uri, local] { try Self.track(["log", "--run", "shared", "--db", db, "--dataset", "d"], server, input: first) }
        let shards = (0..<4).map { shard in (0..<60).map { Self.line(10 + shard * 60 + $0) }.joined(separator: "\n") + "\n" }
        let results = Mutex<[Int32]>(Array(repeating: -1, count: 4))
        let environment = server.environment
        DispatchQueue.concurrentPerform(iterations: 4) { shard in
            let result = try? TrackBinary.run(["log", "--run", "shared", "--append", "--db", uri, "--dataset", "d"],
                                              input: shards[shard], environment: environment)
            results.withLock { $0[shard] = result?.status ?? -1 }
        }
        #expect(results.withLock { $0 } == Array(repeating: 0, count: 4))
        for shard in shards { try Self.track(["log", "--run", "shared", "--append", "--db", local, "--dataset", "d"], server, input: shard) }
        #expect(try server.psql("SELECT n FROM _track_run_stats", database: "appends") == "250\n")
        #expect(try server.psql("SELECT count(*) FROM _track_top_labels", database: "appends") == "250\n")
        let server_ = try JSONParser.parse(try Self.track(["metrics", "shared", "--db", uri, "--format", "json"], server).stdout)
        let sqlite = try JSONParser.parse(try Self.track(["metrics", "shared", "--db", local, "--format", "json"], server).stdout)
        #expect(Self.same(server_, sqlite), "\(server_) vs \(sqlite)")
        let stored = try server.psql("SELECT round(conf_ece::numeric, 12) || ' ' || round(cw_ece::numeric, 12) FROM run_calibration", database: "appends")
        _ = try server.psql("INSERT INTO _track_stale_runs(run_id) VALUES (0)", database: "appends")
        #expect(try server.psql("SELECT round(conf_ece::numeric, 12) || ' ' || round(cw_ece::numeric, 12) FROM run_calibration", database: "appends") == stored)
    }

    /// A run over a dataset the server holds no question of is copied straight into `questions`
    /// (ids drawn from its sequence); one whose dataset the server already knows goes through the
    /// staging table. Both keep the local question order in the server's ids and read back alike.
    @Test func newAndKnownDatasetsPushAlike() throws {
        let server = try PostgresServer.shared()
        let scratch = Scratch()
        let local = scratch.path("local.sqlite")
        // Ids chosen so that local order differs from text order (q10 before q2 in text).
        let ids = [7, 2, 10, 0, 31, 5, 12, 1]
        let input = ids.map { Self.line($0) }.joined(separator: "\n") + "\n"
        try Self.track(["log", "--run", "r", "--db", local, "--dataset", "fresh"], server, input: input)
        let order = "SELECT string_agg(external_id, ',' ORDER BY question_id) FROM questions WHERE dataset = 'fresh'"
        let expected = ids.map { "q\($0)" }.joined(separator: ",") + "\n"
        let new = try server.createDatabase("pushnew")
        try Self.track(["push", "--all", "--db", local, "--to", new], server)
        #expect(try server.psql(order, database: "pushnew") == expected)
        // The same push to a server that already holds one question of the dataset: the general path.
        let known = try server.createDatabase("pushknown")
        try Self.track(["log", "--run", "other", "--db", known, "--dataset", "fresh"], server, input: Self.line(10) + "\n")
        try Self.track(["push", "--all", "--db", local, "--to", known], server)
        #expect(try server.psql(order, database: "pushknown") == "q10," + ids.filter { $0 != 10 }.map { "q\($0)" }.joined(separator: ",") + "\n")
        #expect(try server.psql("SELECT count(*) FROM questions", database: "pushknown") == "\(ids.count)\n")
        let metrics = ["metrics", "r", "--format", "json"]
        let reference = try JSONParser.parse(try Self.track(metrics + ["--db", local], server).stdout)
        for uri in [new, known] {
            #expect(Self.same(try JSONParser.parse(try Self.track(metrics + ["--db", uri], server).stdout), reference), "\(uri)")
        }
    }

    /// A bad file, or a contradiction with the server's questions, changes nothing on the server.
    @Test func badInputLeavesTheServerAsItWas() throws {
        let server = try PostgresServer.shared()
        let scratch = Scratch()
        let uri = try server.createDatabase("bad")
        let good = scratch.write("good.jsonl", (0..<50).map { Self.line($0) }.joined(separator: "\n") + "\n")
        try Self.track(["ingest", good, "--db", uri, "--run", "good", "--dataset", "d"], server)
        let beforeBad = try Self.counts(server, "bad")
        // Line 4 does not sum to 1.
        let bad = scratch.write("bad.jsonl", (0..<3).map { Self.line($0) }.joined(separator: "\n")
                                    + "\n" + #"{"id": "x", "label": 0, "probs": [0.9, 0.9, 0.1, 0.1]}"# + "\n")
        let refused = try Self.track(["ingest", bad, "--db", uri, "--run", "bad", "--dataset", "d"], server, expect: 1)
        #expect(refused.stderr.contains("bad.jsonl:4:"))
        #expect(try Self.counts(server, "bad") == beforeBad)
        // A task group (MMLU's layout) ingested into the server: one run, its categories there too.
        let groups = StoreFixtures.path("lm-eval-harness/lm-eval-0.4.2/groups")
        let local = scratch.path("groups.sqlite")
        try Self.track(["ingest", groups, "--db", local], server)
        let groupRun = try Self.track(["ingest", groups, "--db", uri], server)
        #expect(groupRun.stdout.contains("60 questions -> run 'tiny-gpt2/synth_mmlu'"), "\(groupRun.stdout)")
        let byCategory = ["metrics", "tiny-gpt2/synth_mmlu", "--by", "category", "--format", "csv"]
        let there = try Self.track(byCategory + ["--db", uri], server).stdout
        #expect(there.contains("stem") && there.contains("humanities"))
        #expect(try Self.track(byCategory + ["--db", local], server).stdout == there)
        let before = try Self.counts(server, "bad")
        // Re-ingesting the same file is noticed as on SQLite.
        let twice = try Self.track(["ingest", good, "--db", uri, "--run", "good", "--dataset", "d"], server)
        #expect(twice.stdout.contains("already ingested as 'good'; nothing changed"))
        #expect(try Self.counts(server, "bad") == before)
        // A local run whose question q1 has another label: refused whole by push; another run is pushed.
        let clashing = scratch.path("local.sqlite")
        try Self.track(["log", "--run", "clash", "--db", clashing, "--dataset", "d"], server,
                       input: #"{"id": "q0", "label": 0, "probs": [0.4, 0.2, 0.2, 0.2]}"# + "\n" + #"{"id": "q1", "label": 3, "probs": [0.4, 0.2, 0.2, 0.2]}"# + "\n")
        try Self.track(["log", "--run", "fine", "--db", clashing, "--dataset", "e"], server, input: Self.line(1) + "\n")
        let push = try Self.track(["push", "--all", "--db", clashing, "--to", uri], server, expect: 1)
        #expect(push.stderr.contains("question d/q1 has 4 options and label 0 on the server but 4 options and label 3 here; nothing was pushed for this run")
                && push.stdout.contains("pushed 'fine'"), "\(push.stderr)")
        #expect(try server.psql("SELECT count(*) FROM runs WHERE name = 'clash'", database: "bad") == "0\n")
        #expect(try server.psql("SELECT count(*) FROM questions WHERE dataset = 'd'", database: "bad") == "50\n")
        let afterPush = try Self.counts(server, "bad")
        // Read-only SQL cannot end its read-only transaction (issue 23.2): every escape refused, nothing changed.
        let escapes = ["COMMIT; UPDATE runs SET name = 'x'", "ROLLBACK; DELETE FROM metrics", "END; DELETE FROM tags",
                       "SET TRANSACTION READ WRITE; DELETE FROM params", "SELECT 1; COMMIT; DELETE FROM metrics",
                       "SELECT 1; /* c */ commit; DROP VIEW run_calibration CASCADE", "start transaction; DELETE FROM runs",
                       "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "RESET ALL; DELETE FROM runs",
                       "DO $$ BEGIN DELETE FROM runs; END $$", "COPY runs TO '/tmp/track-escape.csv'",
                       "DELETE FROM runs", "SELECT set_config('transaction_read_only', 'off', true); DELETE FROM runs"]
        let unchanged = try Self.counts(server, "bad")
        for escape in escapes {
            let result = try TrackBinary.run(["sql", escape, "--db", uri], environment: server.environment)
            #expect(result.status != 0, "\(escape) ran")
            #expect(try Self.counts(server, "bad") == unchanged, "\(escape) changed the server")
        }
        #expect(try server.psql("SELECT count(*) FROM pg_views WHERE viewname = 'run_calibration'", database: "bad") == "1\n")
        // Strings, identifiers and comments holding keywords are not statements.
        #expect(try Self.track(["sql", "SELECT 'COMMIT; DELETE FROM runs' AS \"END;\" -- ; ROLLBACK", "--db", uri, "--format", "csv"], server).stdout.contains("COMMIT; DELETE FROM runs"))
        // Appending to a run on the server (issue 24): the same run, rows and summaries as the same
        // append to a SQLite copy of it; a contradicting question refuses the append, nothing changed.
        let copy = scratch.path("copy.sqlite")
        try Self.track(["pull", "good", "--from", uri, "--db", copy], server)
        let more = (99..<104).map { Self.line($0) }.joined(separator: "\n") + "\n"
        try Self.track(["log", "--run", "good", "--append", "--dataset", "d", "--db", copy], server, input: more)
        try Self.track(["log", "--run", "good", "--append", "--dataset", "d", "--db", uri], server, input: more)
        #expect(try server.psql("SELECT n FROM _track_run_stats JOIN runs USING (run_id) WHERE name = 'good'", database: "bad")
                == Self.track(["sql", "SELECT n FROM _track_run_stats JOIN runs USING (run_id) WHERE name = 'good'", "--db", copy, "--format", "csv"], server).stdout.split(separator: "\n")[1] + "\n")
        for command in [["metrics", "good", "--format", "csv"], ["runs", "--where", "run = 'good'"]] {
            #expect(try Self.track(command + ["--db", uri], server).stdout.replacingOccurrences(of: uri, with: "")
                    == Self.track(command + ["--db", copy], server).stdout.replacingOccurrences(of: copy, with: ""), "\(command[0]) after --append")
        }
        let appended = try Self.counts(server, "bad")
        #expect(appended != afterPush)
        _ = try Self.track(["log", "--run", "good", "--append", "--dataset", "d", "--db", uri], server,
                           input: #"{"id": "q99", "label": 3, "probs": [0.4, 0.2, 0.2, 0.2]}"# + "\n", expect: 1)
        #expect(try Self.counts(server, "bad") == appended)
    }

    /// SIGKILL during a push leaves every run on the server either absent or whole.
    @Test func killedPushLeavesEachRunAbsentOrWhole() throws {
        let server = try PostgresServer.shared()
        let scratch = Scratch()
        let local = scratch.path("big.sqlite")
        let input = (0..<20_000).map { Self.line($0) }.joined(separator: "\n") + "\n"
        for run in 0..<4 { try Self.track(["log", "--run", "r\(run)", "--db", local, "--dataset", "d"], server, input: input) }
        let uri = try server.createDatabase("killed")
        try Self.track(["init", "--db", uri], server)
        for delay in [150_000, 400_000, 800_000] as [useconds_t] {
            let process = Process()
            process.executableURL = TrackBinary.url
            process.arguments = ["push", "--all", "--db", local, "--to", uri]
            var env = ProcessInfo.processInfo.environment
            env["PGPASSWORD"] = PostgresServer.password
            process.environment = env
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            usleep(delay)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let rows = try server.psql("SELECT r.name || ':' || (SELECT count(*) FROM option_scores o WHERE o.run_id = r.run_id) || ':' || COALESCE((SELECT n FROM _track_run_stats s WHERE s.run_id = r.run_id), -1) FROM runs r ORDER BY r.name", database: "killed")
            for line in rows.split(separator: "\n") {
                #expect(line.hasSuffix(":80000:20000"), "a run is on the server but not whole: \(line)")
            }
        }
        // Pushing once more completes the set.
        try Self.track(["push", "--all", "--db", local, "--to", uri], server)
        #expect(try server.psql("SELECT count(*) FROM option_scores", database: "killed") == "320000\n")
    }

    /// A `track log` stream into PostgreSQL sends each commit on: a writer killed mid-stream leaves
    /// on the server every row it had committed, its run marked running, as on SQLite.
    @Test func writerKilledMidStreamKeepsCommittedRowsOnTheServer() throws {
        let server = try PostgresServer.shared()
        let uri = try server.createDatabase("stream")
        try Self.track(["init", "--db", uri], server)
        let withPassword = uri.replacingOccurrences(of: "track@", with: "track:\(PostgresServer.password)@")
        let (process, stdin) = try TrackBinary.start(["log", "--run", "killed", "--db", withPassword, "--dataset", "d"])
        let sent = 300
        stdin.write(Data(((0..<sent).map { Self.line($0) }.joined(separator: "\n") + "\n").utf8))
        // The writer commits at least every second while its producer is quiet: wait for the rows on the server.
        var committed = 0
        for _ in 0..<100 {
            usleep(100_000)
            committed = Int(try server.psql("SELECT count(*) FROM option_scores", database: "stream").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            if committed == sent * 4 { break }
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(committed == sent * 4)
        #expect(try server.psql("SELECT r.status || ' ' || s.n FROM runs r JOIN _track_run_stats s USING (run_id) WHERE r.name = 'killed'", database: "stream") == "running \(sent)\n")
        // The stored summaries match the rows the server holds.
        let stored = try server.psql("SELECT round(conf_ece::numeric, 12) FROM run_calibration WHERE run = 'killed'", database: "stream")
        _ = try server.psql("INSERT INTO _track_stale_runs(run_id) VALUES (0)", database: "stream")
        #expect(try server.psql("SELECT round(conf_ece::numeric, 12) FROM run_calibration WHERE run = 'killed'", database: "stream") == stored)
    }

    /// A wrong password or an unreachable server is a clear error, never a hang; no password is shown.
    @Test func connectionFailuresAreClearErrors() throws {
        let server = try PostgresServer.shared()
        let wrong = try TrackBinary.run(["runs", "--db", server.uri()], environment: ["PGPASSWORD": "not-the-password"])
        #expect(wrong.status == 1 && wrong.stderr.contains("password authentication failed"))
        let inURI = server.uri().replacingOccurrences(of: "track@", with: "track:hunter2-wrong@")
        let shown = try TrackBinary.run(["runs", "--db", inURI])
        #expect(shown.status == 1 && !shown.stderr.contains("hunter2-wrong") && shown.stderr.contains("track:***@"))
        let refused = try TrackBinary.run(["runs", "--db", "postgresql://track@127.0.0.1:1/postgres"])
        #expect(refused.status == 1 && refused.stderr.contains("cannot connect to postgresql://track@127.0.0.1:1/postgres"))
        // A socket that accepts connections but never answers: the connect timeout ends the wait.
        let socket = server.directory.appendingPathComponent("hung")
        try FileManager.default.createDirectory(at: socket, withIntermediateDirectories: true)
        let listener = Process()
        listener.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        listener.arguments = ["python3", "-c", "import socket,time; s=socket.socket(socket.AF_UNIX); s.bind('\(socket.path)/.s.PGSQL.5432'); s.listen(8); time.sleep(60)"]
        try listener.run()
        defer { listener.terminate() }
        for _ in 0..<50 where !FileManager.default.fileExists(atPath: socket.path + "/.s.PGSQL.5432") { usleep(100_000) }
        let start = Date()
        let hung = try TrackBinary.run(["runs", "--db", "postgresql://track@/postgres?host=\(socket.path)&port=5432", "--busy-timeout", "2"])
        #expect(hung.status == 1 && hung.stderr.contains("timeout"), "\(hung.stderr)")
        #expect(Date().timeIntervalSince(start) < 30)
        // connect_timeout=0 in the URI (libpq: wait forever) does not override --busy-timeout (issue 23.6).
        let zero = try TrackBinary.run(["runs", "--db", "postgresql://track@/postgres?host=\(socket.path)&port=5432&connect_timeout=0", "--busy-timeout", "2"])
        #expect(zero.status == 1 && zero.stderr.contains("timeout"), "\(zero.stderr)")
        // Upper-case schemes and libpq keyword strings are connections, never file paths; no password shown (23.9).
        let keyword = "host=\(server.directory.path) port=\(server.port) user=track password=hunter2-wrong dbname=postgres"
        for db in [inURI.replacingOccurrences(of: "postgresql://", with: "POSTGRESQL://"), keyword] {
            for command in [["runs"], ["check"], ["init"], ["demo", "--out", server.directory.appendingPathComponent("x").path], ["merge", "none.sqlite", "--into", db]] {
                let result = try TrackBinary.run(command + (command[0] == "merge" ? [] : ["--db", db]), directory: server.directory)
                #expect(result.status != 0 && !result.stdout.contains("hunter2") && !result.stderr.contains("hunter2"), "\(command): \(result.stderr)")
            }
        }
        #expect(try !FileManager.default.contentsOfDirectory(atPath: server.directory.path).contains { $0.contains("hunter2") })
    }

    /// A lock another session holds is waited for as long as --busy-timeout says, then an error (issue 23.6).
    @Test func aHeldLockIsAnErrorAfterTheBusyTimeout() throws {
        let server = try PostgresServer.shared()
        let uri = try server.createDatabase("locked")
        try Self.track(["init", "--db", uri], server)
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = ["psql", uri, "-XAtq", "-c", "BEGIN; LOCK TABLE runs IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60);"]
        holder.environment = ProcessInfo.processInfo.environment.merging(server.environment) { $1 }
        holder.standardOutput = FileHandle.nullDevice
        try holder.run()
        defer { holder.terminate() }
        for _ in 0..<100 {
            if try server.psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'runs' AND l.mode = 'AccessExclusiveLock'", database: "locked") == "1\n" { break }
            usleep(100_000)
        }
        let waited = try TrackBinary.run(["runs", "--db", uri, "--busy-timeout", "2"], environment: server.environment)
        #expect(waited.status == 1 && waited.stderr.contains("lock"), "\(waited.stderr)")
    }
}

/// Issue 24: PostgreSQL is a store, not a copy. Commands read and write the server directly — no
/// temporary file at all (they run with TMPDIR pointing nowhere) — and what they write (EM targets,
/// export records, derived runs) lands on the server in one transaction.
@Suite struct PostgresDirectStoreTests {
    @Test func commandsRunOnTheServerWithoutACopy() throws {
        let server = try PostgresServer.shared()
        let scratch = Scratch()
        let db = scratch.path("demo.sqlite")
        try PostgresTests.track(["demo", "--db", db, "--out", scratch.path("exports"), "--questions", "60"], server)
        let uri = try server.createDatabase("direct")
        try PostgresTests.track(["push", "--all", "--db", db, "--to", uri], server)
        let dpo = "Llama-3.1-8B-Tulu-sim/DPO/in-domain", sft = "Llama-3.1-8B-Tulu-sim/SFT/in-domain"
        let runID = try server.psql("SELECT run_id FROM runs WHERE name = '\(dpo)'", database: "direct").trimmingCharacters(in: .whitespacesAndNewlines)
        let exportsBefore = try server.psql("SELECT count(*) FROM exports", database: "direct")
        // The views' stale branches (a run's numbers from its rows, when a plain-SQL write made its
        // summaries stale) are gated: with no stale run, a query by run reads no option row or
        // top label at all (at 1,000 runs the ungated plan read all 56 million rows: 17 s).
        for query in ["SELECT * FROM run_summary WHERE run = '\(dpo)'", "SELECT * FROM run_calibration WHERE run = '\(dpo)'",
                      "SELECT * FROM _track_run_totals", "SELECT * FROM _track_run_bin_totals WHERE run_id = \(runID)"] {
            let plan = try server.psql("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) \(query)", database: "direct")
            let executed = plan.split(separator: "\n").filter { ($0.contains("on option_scores") || $0.contains("on _track_top_labels")) && !$0.contains("never executed") }
            #expect(executed.isEmpty, "\(query): \(executed)")
        }
        // A stale run (a plain-SQL write) is computed from its rows, the others still from their summaries.
        _ = try server.psql("UPDATE option_scores SET prob = prob WHERE run_id = \(runID) AND question_id = (SELECT MIN(question_id) FROM option_scores WHERE run_id = \(runID))", database: "direct")
        #expect(try server.psql("SELECT count(*) FROM _track_stale_runs", database: "direct") == "1\n")
        #expect(try PostgresTests.track(["metrics", dpo, "--db", uri], server).stdout == PostgresTests.track(["metrics", dpo, "--db", db], server).stdout)
        // No temporary folder can be made: every reading command, and em and plot, still run
        // (the report draws its figures in one, for embedding).
        var environment = server.environment
        environment["TMPDIR"] = scratch.path("no-such-folder")
        for command in [["runs"], ["show", dpo], ["metrics", dpo, sft, "--ci", "--resamples", "20"], ["compare", sft, dpo, "--resamples", "20"],
                        ["table", "--out-dir", scratch.path("t")], ["tce", dpo, sft, "--target", sft], ["winrate", dpo, sft],
                        ["em", dpo], ["plot", "reliability", dpo, "--out", scratch.path("d.png")]] {
            let result = try TrackBinary.run(command + ["--db", uri], environment: environment)
            #expect(result.status == 0, "track \(command[0]) with no temporary folder: \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.path("no-such-folder")))
        // em stored its targets on the server (one per option row of the run), plot its record.
        #expect(try server.psql("SELECT count(*) FROM em_targets WHERE run_id = \(runID)", database: "direct")
                == server.psql("SELECT count(*) FROM option_scores WHERE run_id = \(runID)", database: "direct"))
        #expect(try Int(server.psql("SELECT count(*) FROM exports", database: "direct").trimmingCharacters(in: .whitespacesAndNewlines))!
                > Int(exportsBefore.trimmingCharacters(in: .whitespacesAndNewlines))!)
        #expect(try server.psql("SELECT count(*) FROM export_runs x JOIN exports e USING (export_id) WHERE e.path = '\(scratch.path("d.png"))' AND x.run_id = \(runID)", database: "direct") == "1\n")
        // A derived run is written on the server whole, linked to its parent there; a second
        // without --replace is refused and changes nothing; with it, replaces the first.
        try PostgresTests.track(["calibrate", "temperature", "--fit", sft, "--apply", dpo, "--suffix", "+T2", "--db", uri], server)
        #expect(try server.psql("SELECT p.name FROM runs r JOIN runs p ON p.run_id = r.parent_run_id WHERE r.name = '\(dpo)+T2'", database: "direct") == "\(dpo)\n")
        let before = try PostgresTests.counts(server, "direct")
        let refused = try PostgresTests.track(["calibrate", "temperature", "--fit", sft, "--apply", dpo, "--suffix", "+T2", "--db", uri], server, expect: 1)
        #expect(refused.stderr.contains("already exists"), "\(refused.stderr)")
        #expect(try PostgresTests.counts(server, "direct") == before)
        try PostgresTests.track(["calibrate", "temperature", "--fit", sft, "--apply", dpo, "--suffix", "+T2", "--replace", "--db", uri], server)
        #expect(try server.psql("SELECT count(*) FROM runs WHERE name = '\(dpo)+T2'", database: "direct") == "1\n")
        #expect(try PostgresTests.counts(server, "direct") == before)
    }
}

/// A parameter compared or sorted as a number when it is one, on both stores alike: text that
/// is not a number never matches a numeric comparison and sorts after the numbers.
@Suite struct PostgresWhereTests {
    @Test func parametersCompareAndSortAlikeOnBothStores() throws {
        let server = try PostgresServer.shared()
        let uri = try server.createDatabase("where")
        let scratch = Scratch()
        let local = scratch.path("where.sqlite")
        for db in [uri, local] {
            for (name, lr) in [("a", "1e-6"), ("b", "5e-7"), ("c", "abc"), ("d", "1e-6x"), ("e", " 2 "), ("f", nil)] as [(String, String?)] {
                try PostgresTests.track(["log", "--run", name, "--db", db, "--dataset", "d", "--method", "M"] + (lr.map { ["--param", "lr=\($0)"] } ?? []),
                                        server, input: PostgresTests.line(1) + "\n")
            }
        }
        let names = { (output: String) in output.split(separator: "\n").dropFirst().map { String($0.prefix(while: { $0 != "," })) } }
        for (arguments, expected) in [(["--where", "params.lr < 1"], ["a", "b"]), (["--where", "params.lr > 0.000001"], ["e"]),
                                      (["--sort", "params.lr"], ["b", "a", "e", "d", "c", "f"]),
                                      (["--sort", "params.lr", "--desc"], ["e", "a", "b", "c", "d", "f"]),
                                      (["--where", "run like 'A%' or run like 'b'"], ["a", "b"])] as [([String], [String])] {
            let onServer = try PostgresTests.track(["runs", "--db", uri, "--format", "csv"] + arguments, server).stdout
            let onFile = try PostgresTests.track(["runs", "--db", local, "--format", "csv"] + arguments, server).stdout
            #expect(names(onServer) == expected, "PostgreSQL \(arguments): \(names(onServer))")
            #expect(names(onFile) == expected, "SQLite \(arguments): \(names(onFile))")
        }
    }
}

/// Issue 23.10: the staging files of PostgreSQL writers live in private folders that no exit leaves behind.
@Suite struct PostgresTemporaryFolderTests {
    static func folders(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("track-pgstage-") }
    }

    @Test func privateFoldersRemovedOnSignalsAndSweptAfterAKill() throws {
        let server = try PostgresServer.shared()
        let uri = try server.createDatabase("folders")
        try PostgresTests.track(["init", "--db", uri], server)
        // A temporary directory of this test's own (TMPDIR): the track processes other tests run
        // at the same time sweep their own, so a killed writer's folder stays until this test's
        // next track sweeps it.
        let scratch = Scratch()
        let directory = scratch.path("tmp")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let environment = ProcessInfo.processInfo.environment.merging(server.environment) { $1 }.merging(["TMPDIR": directory]) { $1 }
        for (sig, swept) in [(SIGTERM, false), (SIGINT, false), (SIGKILL, true)] {
            let before = Set(Self.folders(in: directory))
            let process = Process()
            process.executableURL = TrackBinary.url
            process.arguments = ["log", "--run", "stream-\(sig)", "--db", uri, "--dataset", "d"]
            process.environment = environment
            let input = Pipe()
            process.standardInput = input
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            var mine: [String] = []
            for _ in 0..<100 {
                mine = Self.folders(in: directory).filter { !before.contains($0) && $0.hasPrefix("track-pgstage-\(process.processIdentifier)-") }
                if !mine.isEmpty { break }
                usleep(100_000)
            }
            #expect(mine.count == 1)
            let path = URL(fileURLWithPath: directory).appendingPathComponent(mine.first ?? "none").path
            let mode = (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int
            #expect(mode == 0o700, "mode \(String(mode ?? 0, radix: 8))")
            kill(process.processIdentifier, sig)
            process.waitUntilExit()
            if swept {
                #expect(FileManager.default.fileExists(atPath: path))   // SIGKILL: nothing could run
                let sweep = try TrackBinary.run(["runs", "--db", uri], environment: environment)   // the next track sweeps it
                #expect(sweep.status == 0, "\(sweep.stderr)")
            }
            #expect(!FileManager.default.fileExists(atPath: path), "signal \(sig): \(path) left behind")
            try? input.fileHandleForWriting.close()
        }
    }
}

/// Issue 24 (in part): rm, rename, tag and set change runs on the server itself, each in one
/// transaction with the checks they make on SQLite; a refusal changes nothing.
@Suite struct PostgresRunManagementTests {
    @Test func runsAreManagedOnTheServer() throws {
        let server = try PostgresServer.shared()
        let uri = try server.createDatabase("manage")
        for name in ["a", "b"] {
            try PostgresTests.track(["log", "--run", name, "--db", uri, "--dataset", "d", "--method", "DPO"], server,
                                    input: (0..<30).map { PostgresTests.line($0) }.joined(separator: "\n") + "\n")
        }
        try PostgresTests.track(["calibrate", "temperature", "--fit", "a", "--apply", "a", "--folds", "3", "--db", uri], server)
        let before = try PostgresTests.counts(server, "manage")
        // Refusals: nothing changes.
        for (command, status) in [(["rename", "a", "b"], Int32(1)), (["rename", "nope", "c"], 1), (["rm", "a"], 1), (["rm", "nope"], 1),
                                  (["set", "a+TS", "--split", "x"], 1), (["set", "a", "--model", " "], 1), (["tag", "nope", "k=v"], 1),
                                  (["set", "a", "--epoch", "-1"], 64)] {
            let result = try PostgresTests.track(command + ["--db", uri], server, expect: status)
            #expect(!result.stderr.isEmpty)
            #expect(try PostgresTests.counts(server, "manage") == before, "\(command) changed the server")
        }
        // Changes, on the server.
        try PostgresTests.track(["set", "a", "--model", "Llama", "--method", "DPO-b", "--epoch", "2", "--db", uri], server)
        #expect(try server.psql("SELECT name || ' ' || model || ' ' || method || ' ' || epoch FROM runs WHERE name LIKE 'a%' ORDER BY name", database: "manage")
                == "a Llama DPO-b 2\na+TS Llama TS 2\n")
        #expect(try server.psql("SELECT value FROM params p JOIN runs r USING (run_id) WHERE r.name = 'a+TS' AND key = 'ts.parent_method'", database: "manage") == "DPO-b\n")
        try PostgresTests.track(["tag", "b", "seed=3", "gpu=1", "--db", uri], server)
        try PostgresTests.track(["tag", "b", "--untag", "gpu", "--db", uri], server)
        #expect(try server.psql("SELECT string_agg(key || '=' || value, ',') FROM tags JOIN runs USING (run_id) WHERE name = 'b'", database: "manage") == "seed=3\n")
        try PostgresTests.track(["rename", "b", "c", "--db", uri], server)
        #expect(try server.psql("SELECT string_agg(name, ',' ORDER BY name) FROM runs", database: "manage") == "a,a+TS,c\n")
        let removed = try PostgresTests.track(["rm", "a", "--recursive", "--db", uri], server)
        #expect(removed.stdout.contains("deleted run 'a+TS'") && removed.stdout.contains("deleted run 'a'"))
        #expect(try server.psql("SELECT (SELECT count(*) FROM runs) || ' ' || (SELECT count(*) FROM option_scores) || ' ' || (SELECT count(*) FROM calibration_folds) || ' ' || (SELECT count(*) FROM _track_top_labels)", database: "manage")
                == "1 120 0 30\n")
        // What track reads from the server agrees.
        #expect(try PostgresTests.track(["runs", "--db", uri, "--format", "csv"], server).stdout.contains("c,"))
    }
}

/// Issue 24 (in part): `track pull` brings runs of the server into a SQLite file, whole and idempotently.
@Suite struct PostgresPullTests {
    @Test func pulledRunsReadAsOnTheServer() throws {
        let server = try PostgresServer.shared()
        let scratch = Scratch()
        let uri = try server.createDatabase("pull")
        try PostgresTests.track(["demo", "--db", scratch.path("demo.sqlite"), "--out", scratch.path("exports"), "--questions", "60"], server)
        try PostgresTests.track(["push", "--all", "--db", scratch.path("demo.sqlite"), "--to", uri], server)
        let local = scratch.path("offline.sqlite")
        let first = try PostgresTests.track(["pull", "--all", "--from", uri, "--db", local], server)
        let pulled = first.stdout.components(separatedBy: "pulled '").count - 1
        #expect(pulled > 20, "\(first.stdout.suffix(300))")
        // The same runs, numbers and folds as the server (and as the pushed store).
        for command in [["runs", "--format", "csv"], ["table", "--format", "csv", "--out-dir", scratch.path("t")],
                        ["metrics", "Llama-3.1-8B-Tulu-sim/TS/in-domain", "--format", "csv"]] {
            let there = try PostgresTests.track(command + ["--db", uri], server).stdout
            #expect(try PostgresTests.track(command + ["--db", local], server).stdout == there, "\(command[0])")
        }
        let folds = "SELECT count(*) FROM calibration_folds"
        #expect(try PostgresTests.track(["sql", folds, "--db", local, "--format", "csv"], server).stdout
                == PostgresTests.track(["sql", folds, "--db", scratch.path("demo.sqlite"), "--format", "csv"], server).stdout)
        #expect(try TrackBinary.run(["check", "--db", local]).status == 0)
        // Again: nothing changes; one run by name into another file.
        let again = try PostgresTests.track(["pull", "--all", "--from", uri, "--db", local], server)
        #expect(again.stdout.contains("0 new runs"), "\(again.stdout.suffix(200))")
        let one = try PostgresTests.track(["pull", "Llama-3.1-8B-Tulu-sim/DPO/in-domain", "--from", uri, "--db", scratch.path("one.sqlite")], server)
        #expect(one.stdout.contains("1 new run,"), "\(one.stdout)")
        #expect(try PostgresTests.track(["pull", "nope", "--from", uri, "--db", scratch.path("one.sqlite")], server, expect: 1).stderr.contains("no run named 'nope'"))
    }
}

/// Issue 24 (in part): `track merge --into postgresql://…` — each shard in one transaction, keyed by
/// uuid, names kept apart, a contradiction refusing the whole shard.
@Suite struct PostgresMergeTests {
    @Test func shardsMergeIntoTheServer() throws {
        let server = try PostgresServer.shared()
        let scratch = Scratch()
        let uri = try server.createDatabase("merged")
        let lines = (0..<40).map { PostgresTests.line($0) }.joined(separator: "\n") + "\n"
        let first = scratch.path("first.sqlite"), second = scratch.path("second.sqlite"), bad = scratch.path("bad.sqlite")
        try PostgresTests.track(["log", "--run", "a", "--db", first, "--dataset", "d"], server, input: lines)
        try PostgresTests.track(["calibrate", "temperature", "--fit", "a", "--apply", "a", "--folds", "4", "--db", first], server)
        try PostgresTests.track(["log", "--run", "a", "--db", second, "--dataset", "d"], server, input: lines)   // same name, another run
        try PostgresTests.track(["log", "--run", "fine", "--db", bad, "--dataset", "e"], server, input: lines)
        try PostgresTests.track(["log", "--run", "clash", "--db", bad, "--dataset", "d"], server,
                                input: #"{"id": "q1", "label": 3, "logits": [1, 2, 3, 4]}"# + "\n")   // q1 of d has label 1 there
        let merged = try PostgresTests.track(["merge", first, second, "--into", uri], server)
        #expect(merged.stdout.contains("2 new runs") && merged.stdout.contains("renamed 'a' -> 'a ["), "\(merged.stdout)")
        #expect(try server.psql("SELECT count(*) FROM runs", database: "merged") == "3\n")
        #expect(try server.psql("SELECT count(*) FROM calibration_folds", database: "merged") == "40\n")
        #expect(try server.psql("SELECT p.name FROM runs r JOIN runs p ON p.run_id = r.parent_run_id WHERE r.name = 'a+TS'", database: "merged") == "a\n")
        let before = try PostgresTests.counts(server, "merged")
        let again = try PostgresTests.track(["merge", first, second, "--into", uri], server)
        #expect(again.stdout.contains("0 new runs"))
        #expect(try PostgresTests.counts(server, "merged") == before)
        // The bad shard: its clash refuses it whole ('fine' is not merged either).
        let refused = try PostgresTests.track(["merge", bad, "--into", uri], server, expect: 1)
        #expect(refused.stderr.contains("nothing of it was merged"), "\(refused.stderr)")
        #expect(try PostgresTests.counts(server, "merged") == before)
    }
}

/// Issue 22 on PostgreSQL: cross-fitting and a holdout run against the server, their folds stored there.
@Suite struct PostgresCalibrationTests {
    @Test func crossFitAndHoldoutOnTheServer() throws {
        let server = try PostgresServer.shared()
        let uri = try server.createDatabase("calibrate")
        try PostgresTests.track(["log", "--run", "r", "--db", uri, "--dataset", "d"], server,
                                input: (0..<90).map { PostgresTests.line($0) }.joined(separator: "\n") + "\n")
        try PostgresTests.track(["calibrate", "temperature", "--fit", "r", "--apply", "r", "--folds", "3", "--db", uri], server)
        try PostgresTests.track(["calibrate", "temperature", "--fit", "r", "--apply", "r", "--holdout", "0.2", "--suffix", "+H", "--db", uri], server)
        #expect(try server.psql("SELECT r.name || ':' || count(*) FROM calibration_folds f JOIN runs r USING (run_id) GROUP BY r.name ORDER BY r.name", database: "calibrate")
                == "r+H:90\nr+TS:90\n")
        #expect(try server.psql("SELECT count(*) FROM _track_top_labels t JOIN runs r USING (run_id) WHERE r.name = 'r+H'", database: "calibrate") == "18\n")
        #expect(try server.psql("SELECT value FROM params p JOIN runs r USING (run_id) WHERE r.name = 'r+TS' AND key = 'ts.folds'", database: "calibrate") == "3\n")
    }
}

/// Issue 23.4 on PostgreSQL: NaN, Infinity or 1e308 written into option_scores by plain SQL make
/// that run an error naming it, never a crash of every command.
@Suite struct PostgresStoredValueTests {
    @Test func hostileValuesOnTheServerAreErrorsNotTraps() throws {
        let server = try PostgresServer.shared()
        let uri = try server.createDatabase("values")
        try PostgresTests.track(["log", "--run", "bad", "--db", uri, "--dataset", "d"], server,
                                input: (0..<30).map { PostgresTests.line($0) }.joined(separator: "\n") + "\n")
        try PostgresTests.track(["log", "--run", "fine", "--db", uri, "--dataset", "e"], server, input: PostgresTests.line(1) + "\n")
        for value in ["'NaN'", "'Infinity'", "1e308", "-5"] {
            _ = try server.psql("UPDATE option_scores SET prob = \(value) WHERE run_id = (SELECT run_id FROM runs WHERE name = 'bad') AND option = 1 AND question_id = (SELECT MIN(question_id) FROM option_scores WHERE run_id = (SELECT run_id FROM runs WHERE name = 'bad'))", database: "values")
            for command in [["runs"], ["show", "bad"], ["metrics", "bad"], ["table", "--out-dir", server.directory.appendingPathComponent("exports").path], ["report", "--out", server.directory.appendingPathComponent("r.html").path]] {
                let result = try TrackBinary.run(command + ["--db", uri], environment: server.environment)
                #expect(!result.signaled && result.status <= 1, "\(value): track \(command[0]) -> \(result.status): \(result.stderr.prefix(300))")
                if result.status == 1 { #expect(result.stderr.contains("'bad'"), "\(value): \(command[0]): \(result.stderr.prefix(300))") }
            }
            #expect(try TrackBinary.run(["metrics", "fine", "--db", uri], environment: server.environment).status == 0)
        }
    }
}
