import Foundation

/// What merging one shard did.
public struct MergeReport: Sendable {
    public var shard: String
    public var newRuns: [String] = []
    public var renamedRuns: [(from: String, to: String)] = []
    public var skippedRuns = 0
    public var newQuestions = 0
}

extension RunStore {
    /// Merges the shard at `path` into this store, in one transaction: runs are keyed by
    /// uuid (a run already here is skipped, so merging again changes nothing), questions by
    /// (dataset, external id), experiments by name; everything a new run owns comes with it,
    /// re-keyed. A run whose name is taken by another run gets `name [uuid prefix]`.
    /// Refuses a shard of another schema version, or whose questions contradict ours.
    public func merge(shard path: String) throws -> MergeReport {
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError("\(path): no such file") }
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
        guard resolved != URL(fileURLWithPath: database.path).resolvingSymlinksInPath().standardizedFileURL.path else {
            throw StoreError("\(path) is the store being merged into; nothing to merge")
        }
        let version: Int
        do {
            version = try Database(path: path, readOnly: true).schemaVersion
        } catch let error as SQLiteError {
            throw RunStore.explain(error, path: path, busyTimeout: 10)
        }
        let current = try database.schemaVersion
        if version > current {
            throw StoreError("\(path) has schema version \(version), written by a newer track than this one (\(current)); upgrade track to merge it. Nothing was merged.")
        }
        if version == 0 {
            throw StoreError("\(path) is not a track store (no schema version). Nothing was merged.")
        }
        guard version == current else {
            throw StoreError("\(path) has schema version \(version) but \(database.path) has \(current); nothing was merged", kind: .conflict, remedy: .migrate(path: path))
        }
        var report = MergeReport(shard: path)
        try database.execute("ATTACH DATABASE ? AS shard", [.text(path)])
        defer { try? database.executeScript("DETACH DATABASE shard") }
        try database.transaction {
            // Questions must agree where both stores have them.
            if let conflict = try query("""
                SELECT s.dataset, s.external_id, s.n_options, s.label, m.n_options, m.label
                FROM shard.questions s JOIN main.questions m ON m.dataset = s.dataset AND m.external_id = s.external_id
                WHERE m.n_options != s.n_options OR m.label != s.label LIMIT 1
                """).rows.first {
                let v = conflict.map { value -> String in
                    switch value {
                    case .text(let text): return text
                    case .integer(let number): return String(number)
                    default: return "?"
                    }
                }
                throw StoreError("\(path): question '\(v[1])' of dataset '\(v[0])' has \(v[2]) options and label \(v[3]) there but \(v[4]) options and label \(v[5]) here. Nothing was merged.")
            }
            try database.executeScript("""
                CREATE TEMP TABLE merge_runs AS
                    SELECT s.run_id AS shard_run_id, s.uuid, s.name,
                           CASE WHEN EXISTS (SELECT 1 FROM main.runs m WHERE m.name = s.name)
                                THEN s.name || ' [' || substr(s.uuid, 1, 8) || ']' ELSE s.name END AS new_name
                    FROM shard.runs s WHERE s.uuid NOT IN (SELECT uuid FROM main.runs);
                """)
            defer { try? database.executeScript("DROP TABLE IF EXISTS temp.merge_runs") }
            report.skippedRuns = Int(try database.scalarInt("SELECT count(*) FROM shard.runs") ?? 0)
                - Int(try database.scalarInt("SELECT count(*) FROM temp.merge_runs") ?? 0)
            try database.forEachRow("SELECT name, new_name FROM temp.merge_runs ORDER BY shard_run_id") { row in
                let name = row.string(0) ?? "", newName = row.string(1) ?? ""
                report.newRuns.append(newName)
                if name != newName { report.renamedRuns.append((name, newName)) }
            }
            let before = try database.scalarInt("SELECT count(*) FROM main.questions") ?? 0
            try database.executeScript("""
                INSERT INTO main.experiments(name, description, created_at)
                    SELECT name, description, created_at FROM shard.experiments
                    WHERE name NOT IN (SELECT name FROM main.experiments);
                INSERT INTO main.questions(dataset, external_id, subject, n_options, label, category)
                    SELECT s.dataset, s.external_id, s.subject, s.n_options, s.label, s.category FROM shard.questions s
                    WHERE NOT EXISTS (SELECT 1 FROM main.questions m WHERE m.dataset = s.dataset AND m.external_id = s.external_id)
                    ORDER BY s.question_id;
                INSERT INTO main.runs(uuid, name, experiment_id, model, method, dataset, split, step, epoch, extraction,
                                      status, started_at, finished_at, source_file, source_sha256, source_format)
                    SELECT s.uuid, t.new_name, (SELECT e.experiment_id FROM main.experiments e JOIN shard.experiments se ON se.name = e.name
                                                WHERE se.experiment_id = s.experiment_id),
                           s.model, s.method, s.dataset, s.split, s.step, s.epoch, s.extraction,
                           s.status, s.started_at, s.finished_at, s.source_file, s.source_sha256, s.source_format
                    FROM shard.runs s JOIN temp.merge_runs t ON t.shard_run_id = s.run_id ORDER BY s.run_id;
                -- Parents, once every new run has an id here.
                UPDATE main.runs SET parent_run_id = (
                    SELECT mp.run_id FROM shard.runs s JOIN shard.runs sp ON sp.run_id = s.parent_run_id
                    JOIN main.runs mp ON mp.uuid = sp.uuid WHERE s.uuid = main.runs.uuid)
                WHERE uuid IN (SELECT uuid FROM temp.merge_runs);
                CREATE TEMP TABLE merge_run_map AS
                    SELECT t.shard_run_id, m.run_id FROM temp.merge_runs t JOIN main.runs m ON m.uuid = t.uuid;
                CREATE TEMP TABLE merge_question_map AS
                    SELECT s.question_id AS shard_question_id, m.question_id FROM shard.questions s
                    JOIN main.questions m ON m.dataset = s.dataset AND m.external_id = s.external_id;
                INSERT INTO main.option_scores(run_id, question_id, option, prob, score)
                    SELECT r.run_id, q.question_id, o.option, o.prob, o.score FROM shard.option_scores o
                    JOIN temp.merge_run_map r ON r.shard_run_id = o.run_id
                    JOIN temp.merge_question_map q ON q.shard_question_id = o.question_id
                    ORDER BY r.run_id, q.question_id, o.option;
                -- The summaries come along; a run stale in the shard is recomputed here.
                INSERT INTO main._track_top_labels(run_id, question_id, pred)
                    SELECT r.run_id, q.question_id, t.pred FROM shard._track_top_labels t
                    JOIN temp.merge_run_map r ON r.shard_run_id = t.run_id
                    JOIN temp.merge_question_map q ON q.shard_question_id = t.question_id
                    ORDER BY r.run_id, q.question_id;
                INSERT INTO main._track_run_stats(run_id, n, n_correct, sum_conf, sum_brier, sum_nll, sum_nll_scores, n_scored,
                                           min_options, max_options)
                    SELECT r.run_id, s.n, s.n_correct, s.sum_conf, s.sum_brier, s.sum_nll, s.sum_nll_scores, s.n_scored,
                           s.min_options, s.max_options
                    FROM shard._track_run_stats s JOIN temp.merge_run_map r ON r.shard_run_id = s.run_id;
                INSERT INTO main._track_run_bins(run_id, class, bin, n, hits, sum_p)
                    SELECT r.run_id, b.class, b.bin, b.n, b.hits, b.sum_p
                    FROM shard._track_run_bins b JOIN temp.merge_run_map r ON r.shard_run_id = b.run_id;
                INSERT OR IGNORE INTO main._track_stale_runs(run_id)
                    SELECT r.run_id FROM temp.merge_run_map r
                    WHERE EXISTS (SELECT 1 FROM shard._track_stale_runs x WHERE x.run_id IN (r.shard_run_id, 0));
                INSERT INTO main.params SELECT r.run_id, p.key, p.value FROM shard.params p JOIN temp.merge_run_map r ON r.shard_run_id = p.run_id;
                INSERT INTO main.tags SELECT r.run_id, t.key, t.value FROM shard.tags t JOIN temp.merge_run_map r ON r.shard_run_id = t.run_id;
                INSERT INTO main.metrics(run_id, key, value, step, timestamp)
                    SELECT r.run_id, m.key, m.value, m.step, m.timestamp FROM shard.metrics m JOIN temp.merge_run_map r ON r.shard_run_id = m.run_id;
                INSERT INTO main.preference_pairs SELECT r.run_id, p.prompt_id, p.chosen_logprob, p.rejected_logprob, p.chosen_tokens, p.rejected_tokens
                    FROM shard.preference_pairs p JOIN temp.merge_run_map r ON r.shard_run_id = p.run_id;
                INSERT INTO main.judgments SELECT r.run_id, j.prompt_id, j.opponent, j.verdict
                    FROM shard.judgments j JOIN temp.merge_run_map r ON r.shard_run_id = j.run_id;
                INSERT INTO main.ingest_rejects SELECT r.run_id, i.source, i.line, i.reason
                    FROM shard.ingest_rejects i JOIN temp.merge_run_map r ON r.shard_run_id = i.run_id;
                INSERT INTO main.em_targets SELECT r.run_id, q.question_id, e.option, e.bin, e.target FROM shard.em_targets e
                    JOIN temp.merge_run_map r ON r.shard_run_id = e.run_id JOIN temp.merge_question_map q ON q.shard_question_id = e.question_id;
                INSERT INTO main.calibration_folds SELECT r.run_id, q.question_id, f.fold FROM shard.calibration_folds f
                    JOIN temp.merge_run_map r ON r.shard_run_id = f.run_id JOIN temp.merge_question_map q ON q.shard_question_id = f.question_id;
                -- Exports: new ones (by file, hash and command), with the runs they show.
                CREATE TEMP TABLE merge_exports AS
                    SELECT s.* FROM shard.exports s WHERE NOT EXISTS (
                        SELECT 1 FROM main.exports m WHERE m.path = s.path AND m.sha256 = s.sha256 AND m.command = s.command);
                INSERT INTO main.exports(path, kind, format, sha256, data_path, data_sha256, command, created_at)
                    SELECT path, kind, format, sha256, data_path, data_sha256, command, created_at FROM temp.merge_exports ORDER BY export_id;
                INSERT OR IGNORE INTO main.export_runs(export_id, run_id)
                    SELECT me.export_id, mr.run_id FROM temp.merge_exports e
                    JOIN main.exports me ON me.path = e.path AND me.sha256 = e.sha256 AND me.command = e.command
                    JOIN shard.export_runs er ON er.export_id = e.export_id
                    JOIN shard.runs sr ON sr.run_id = er.run_id JOIN main.runs mr ON mr.uuid = sr.uuid;
                DROP TABLE temp.merge_run_map;
                DROP TABLE temp.merge_question_map;
                DROP TABLE temp.merge_exports;
                """)
            try refreshStaleSummaries()
            report.newQuestions = Int((try database.scalarInt("SELECT count(*) FROM main.questions") ?? 0) - before)
        }
        return report
    }
}
