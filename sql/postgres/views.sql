-- track: SQL views and triggers over the run store, PostgreSQL dialect.
--
-- The same view names, columns and binning rule as sql/views.sql (SQLite), so
-- that an ad-hoc query gives the same numbers on either store. Embedded in the
-- `track` binary and re-created whenever they change.
-- Top-label rule (METHODS §1): pred = argmax_k p_k, ties to the lowest index;
-- conf = max_k p_k; correct = [pred = label]. Bin rule: LEAST(FLOOR(p * 10), 9)
-- (SQLite's CAST(p * 10 AS INTEGER) truncates; PostgreSQL's cast rounds, so FLOOR).

DROP VIEW IF EXISTS category_calibration, subject_calibration, judged_winrate, preference_winrate, run_calibration,
    classwise_bins, reliability_bins, run_summary, predictions, _track_run_bin_gaps, _track_run_bin_totals,
    _track_stale_run_bins, _track_run_totals, _track_stale_question_terms, _track_stale_run_ids CASCADE;
DROP TRIGGER IF EXISTS option_scores_inserted ON option_scores;
DROP TRIGGER IF EXISTS option_scores_updated ON option_scores;
DROP TRIGGER IF EXISTS option_scores_deleted ON option_scores;
DROP TRIGGER IF EXISTS questions_changed ON questions;
DROP TRIGGER IF EXISTS questions_deleted ON questions;
DROP TRIGGER IF EXISTS runs_deleted ON runs;

-- MARK: plain-SQL writers (triggers)
--
-- track writes summaries itself and sets track.writer = 'on' in its transactions;
-- for any other client (psql, Python) these fire, row by row as in SQLite: _track_top_labels
-- stays exact and the run is listed in _track_stale_runs, whose numbers the views compute
-- from the rows.

-- Row triggers whose WHEN skips track's own writes: a COPY by track pays one cheap test per row
-- and keeps no transition table.
CREATE OR REPLACE FUNCTION track_option_scores_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r BIGINT;
    q BIGINT;
BEGIN
    FOR r, q IN SELECT * FROM (VALUES (CASE WHEN TG_OP <> 'INSERT' THEN OLD.run_id END, CASE WHEN TG_OP <> 'INSERT' THEN OLD.question_id END),
                                      (CASE WHEN TG_OP <> 'DELETE' THEN NEW.run_id END, CASE WHEN TG_OP <> 'DELETE' THEN NEW.question_id END)) AS v(r, q)
                 WHERE v.r IS NOT NULL LOOP
        DELETE FROM _track_top_labels WHERE run_id = r AND question_id = q;
        INSERT INTO _track_top_labels(run_id, question_id, pred)
            SELECT o.run_id, o.question_id, o.option FROM option_scores o
            WHERE o.run_id = r AND o.question_id = q ORDER BY o.prob DESC, o.option LIMIT 1;
        INSERT INTO _track_stale_runs(run_id) VALUES (r) ON CONFLICT DO NOTHING;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER option_scores_inserted AFTER INSERT ON option_scores FOR EACH ROW
    WHEN (current_setting('track.writer', true) IS DISTINCT FROM 'on') EXECUTE FUNCTION track_option_scores_changed();
CREATE TRIGGER option_scores_updated AFTER UPDATE ON option_scores FOR EACH ROW
    WHEN (current_setting('track.writer', true) IS DISTINCT FROM 'on') EXECUTE FUNCTION track_option_scores_changed();
CREATE TRIGGER option_scores_deleted AFTER DELETE ON option_scores FOR EACH ROW
    WHEN (current_setting('track.writer', true) IS DISTINCT FROM 'on') EXECUTE FUNCTION track_option_scores_changed();

-- A changed label or option count, or a deleted question, can change any run's numbers.
CREATE OR REPLACE FUNCTION track_questions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('track.writer', true) = 'on' THEN RETURN NULL; END IF;
    INSERT INTO _track_stale_runs(run_id) VALUES (0) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER questions_changed AFTER UPDATE OF label, n_options ON questions
    FOR EACH ROW WHEN (OLD.label IS DISTINCT FROM NEW.label OR OLD.n_options IS DISTINCT FROM NEW.n_options)
    EXECUTE FUNCTION track_questions_changed();
CREATE TRIGGER questions_deleted AFTER DELETE ON questions
    FOR EACH STATEMENT EXECUTE FUNCTION track_questions_changed();

-- A deleted run takes its per-question rows along (they have no foreign keys; see schema.sql).
CREATE OR REPLACE FUNCTION track_runs_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM option_scores o USING gone g WHERE o.run_id = g.run_id;
    DELETE FROM _track_top_labels t USING gone g WHERE t.run_id = g.run_id;
    DELETE FROM em_targets e USING gone g WHERE e.run_id = g.run_id;
    DELETE FROM calibration_folds f USING gone g WHERE f.run_id = g.run_id;
    DELETE FROM _track_stale_runs s USING gone g WHERE s.run_id = g.run_id;
    RETURN NULL;
END $$;
CREATE TRIGGER runs_deleted AFTER DELETE ON runs
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION track_runs_deleted();

-- MARK: summaries, stored or computed for stale runs

CREATE VIEW _track_stale_run_ids AS
SELECT run_id FROM runs
WHERE EXISTS (SELECT 1 FROM _track_stale_runs AS x WHERE x.run_id IN (runs.run_id, 0));

CREATE VIEW _track_stale_question_terms AS
SELECT run_id, question_id, label, COUNT(*) AS k,
       SUM((prob - (option = label)::int) * (prob - (option = label)::int)) AS brier,
       MAX(CASE WHEN option = label THEN prob END) AS p_label,
       COUNT(score) AS n_scores,
       MAX(CASE WHEN option = label THEN score END) - MAX(score_max) - ln(SUM(exp(score - score_max))) AS log_softmax_label
FROM (SELECT o.run_id, o.question_id, o.option, o.prob, o.score, q.label,
             MAX(o.score) OVER (PARTITION BY o.run_id, o.question_id) AS score_max
      FROM option_scores AS o JOIN questions AS q ON q.question_id = o.question_id
      WHERE o.run_id IN (SELECT run_id FROM _track_stale_run_ids)
        -- Uncorrelated: one check when the query starts; with no stale run, this branch (whose
        -- run filter PostgreSQL does not push through the aggregate) is never executed.
        AND EXISTS (SELECT 1 FROM _track_stale_runs)) AS rows
GROUP BY run_id, question_id, label;

CREATE VIEW _track_run_totals AS
SELECT s.run_id, s.n, s.n_correct, s.sum_conf, s.sum_brier, s.sum_nll, s.sum_nll_scores, s.n_scored,
       s.min_options, s.max_options
FROM _track_run_stats AS s
WHERE NOT EXISTS (SELECT 1 FROM _track_stale_runs AS x WHERE x.run_id IN (s.run_id, 0))
UNION ALL
SELECT t.run_id, COUNT(*), SUM((tl.pred = t.label)::int), SUM(o.prob), SUM(t.brier),
       SUM(-ln(GREATEST(t.p_label, 1e-15))),
       SUM(CASE WHEN t.n_scores = t.k THEN -t.log_softmax_label ELSE 0 END),
       SUM((t.n_scores = t.k)::int), MIN(t.k), MAX(t.k)
FROM _track_stale_question_terms AS t
JOIN _track_top_labels AS tl ON tl.run_id = t.run_id AND tl.question_id = t.question_id
JOIN option_scores AS o ON o.run_id = tl.run_id AND o.question_id = tl.question_id AND o.option = tl.pred
WHERE EXISTS (SELECT 1 FROM _track_stale_runs)   -- a gate above the joins: none of them runs without a stale run
GROUP BY t.run_id;

CREATE VIEW _track_stale_run_bins AS
SELECT t.run_id, -1 AS class, LEAST(FLOOR(o.prob * 10), 9)::bigint AS bin, COUNT(*) AS n,
       SUM((t.pred = q.label)::int) AS hits, SUM(o.prob) AS sum_p
FROM _track_top_labels AS t JOIN questions AS q ON q.question_id = t.question_id
JOIN option_scores AS o ON o.run_id = t.run_id AND o.question_id = t.question_id AND o.option = t.pred
WHERE t.run_id IN (SELECT run_id FROM _track_stale_run_ids) AND EXISTS (SELECT 1 FROM _track_stale_runs)
GROUP BY t.run_id, 3
UNION ALL
SELECT o.run_id, o.option, LEAST(FLOOR(o.prob * 10), 9)::bigint AS bin, COUNT(*), SUM((o.option = q.label)::int), SUM(o.prob)
FROM option_scores AS o JOIN questions AS q ON q.question_id = o.question_id
WHERE o.run_id IN (SELECT run_id FROM _track_stale_run_ids) AND EXISTS (SELECT 1 FROM _track_stale_runs)
GROUP BY o.run_id, o.option, 3;

CREATE VIEW _track_run_bin_totals AS
SELECT b.run_id, b.class, b.bin, b.n, b.hits, b.sum_p
FROM _track_run_bins AS b
WHERE NOT EXISTS (SELECT 1 FROM _track_stale_runs AS x WHERE x.run_id IN (b.run_id, 0))
UNION ALL
SELECT run_id, class, bin, n, hits, sum_p FROM _track_stale_run_bins;

CREATE VIEW _track_run_bin_gaps AS
SELECT b.run_id, r.name AS run,
       SUM(CASE WHEN b.class = -1 THEN ABS(b.hits - b.sum_p) END) AS top_gap,
       MAX(CASE WHEN b.class = -1 THEN ABS(b.hits::float8 / b.n - b.sum_p / b.n) END) AS mce,
       SUM(CASE WHEN b.class >= 0 THEN ABS(b.hits - b.sum_p) END) AS classwise_gap,
       (ABS(SUM(CASE WHEN b.class >= 0 AND b.bin = 0 THEN b.hits - b.sum_p ELSE 0 END)) +
        ABS(SUM(CASE WHEN b.class >= 0 AND b.bin = 1 THEN b.hits - b.sum_p ELSE 0 END)) +
        ABS(SUM(CASE WHEN b.class >= 0 AND b.bin = 2 THEN b.hits - b.sum_p ELSE 0 END)) +
        ABS(SUM(CASE WHEN b.class >= 0 AND b.bin = 3 THEN b.hits - b.sum_p ELSE 0 END)) +
        ABS(SUM(CASE WHEN b.class >= 0 AND b.bin = 4 THEN b.hits - b.sum_p ELSE 0 END)) +
        ABS(SUM(CASE WHEN b.class >= 0 AND b.bin = 5 THEN b.hits - b.sum_p ELSE 0 END)) +
        ABS(SUM(CASE WHEN b.class >= 0 AND b.bin = 6 THEN b.hits - b.sum_p ELSE 0 END)) +
        ABS(SUM(CASE WHEN b.class >= 0 AND b.bin = 7 THEN b.hits - b.sum_p ELSE 0 END)) +
        ABS(SUM(CASE WHEN b.class >= 0 AND b.bin = 8 THEN b.hits - b.sum_p ELSE 0 END)) +
        ABS(SUM(CASE WHEN b.class >= 0 AND b.bin = 9 THEN b.hits - b.sum_p ELSE 0 END))) AS pooled_gap,
       SUM(CASE WHEN b.class >= 0 THEN b.n END) AS predictions
FROM runs AS r JOIN _track_run_bin_totals AS b ON b.run_id = r.run_id
GROUP BY b.run_id, r.name;

-- MARK: the views users query

CREATE VIEW predictions AS
SELECT t.run_id, t.question_id, q.external_id, q.dataset, q.subject, q.n_options, q.label,
       t.pred, o.prob AS conf, (t.pred = q.label)::int AS correct, r.name AS run, q.category
FROM runs AS r
JOIN _track_top_labels AS t ON t.run_id = r.run_id
JOIN option_scores AS o ON o.run_id = t.run_id AND o.question_id = t.question_id AND o.option = t.pred
JOIN questions AS q ON q.question_id = t.question_id;

CREATE VIEW run_summary AS
SELECT r.run_id, r.name AS run, r.model, r.method, r.dataset, r.split,
       r.step, r.epoch, r.extraction, r.status,
       COALESCE(s.n, 0) AS n,
       s.n_correct::float8 / s.n AS accuracy,
       s.sum_conf / s.n AS mean_confidence,
       s.sum_conf / s.n - s.n_correct::float8 / s.n AS overconfidence
FROM runs AS r
LEFT JOIN _track_run_totals AS s ON s.run_id = r.run_id;

CREATE VIEW reliability_bins AS
SELECT b.run_id, b.bin, b.n,
       b.hits::float8 / b.n AS accuracy,
       b.sum_p / b.n AS confidence,
       b.hits::float8 / b.n - b.sum_p / b.n AS gap,
       r.name AS run
FROM runs AS r JOIN _track_run_bin_totals AS b ON b.run_id = r.run_id
WHERE b.class = -1;

CREATE VIEW classwise_bins AS
SELECT b.run_id, b.class, b.bin, b.n,
       b.hits::float8 / b.n AS frequency,
       b.sum_p / b.n AS mean_prob,
       b.hits::float8 / b.n - b.sum_p / b.n AS gap,
       r.name AS run
FROM runs AS r JOIN _track_run_bin_totals AS b ON b.run_id = r.run_id
WHERE b.class >= 0;

CREATE VIEW run_calibration AS
SELECT r.run_id, g.run, r.model, r.method, r.dataset, r.split, r.step, r.epoch,
       r.extraction, r.status,
       s.n,
       s.n_correct::float8 / s.n AS accuracy,
       s.sum_conf / s.n AS mean_confidence,
       s.sum_conf / s.n - s.n_correct::float8 / s.n AS overconfidence,
       g.top_gap / s.n AS conf_ece,
       g.mce,
       CASE WHEN s.min_options = s.max_options THEN g.classwise_gap / s.n / s.max_options END AS cw_ece,
       s.sum_brier / s.n AS brier,
       (CASE WHEN s.n_scored = s.n THEN s.sum_nll_scores ELSE s.sum_nll END) / s.n AS nll,
       g.pooled_gap / g.predictions AS pooled_ece
FROM _track_run_bin_gaps AS g
JOIN runs AS r ON r.run_id = g.run_id
JOIN _track_run_totals AS s ON s.run_id = g.run_id
WHERE s.n > 0;

CREATE VIEW subject_calibration AS
SELECT run_id, run, subject, COUNT(*) AS n,
       AVG(correct::float8) AS accuracy,
       AVG(conf) AS mean_confidence,
       (ABS(SUM(CASE WHEN bin = 0 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 1 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 2 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 3 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 4 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 5 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 6 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 7 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 8 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 9 THEN correct - conf ELSE 0 END))) / COUNT(*) AS conf_ece
FROM (SELECT run_id, run, subject, correct, conf, LEAST(FLOOR(conf * 10), 9) AS bin FROM predictions) AS p
GROUP BY run_id, run, subject;

-- (Two views of one shape rather than one view over a UNION of both groupings: SQLite
-- pushes a filter on the run into a plain aggregate, not through a UNION under one.)
CREATE VIEW category_calibration AS
SELECT run_id, run, category, COUNT(*) AS n,
       AVG(correct::float8) AS accuracy,
       AVG(conf) AS mean_confidence,
       (ABS(SUM(CASE WHEN bin = 0 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 1 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 2 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 3 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 4 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 5 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 6 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 7 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 8 THEN correct - conf ELSE 0 END)) +
        ABS(SUM(CASE WHEN bin = 9 THEN correct - conf ELSE 0 END))) / COUNT(*) AS conf_ece
FROM (SELECT run_id, run, category, correct, conf, LEAST(FLOOR(conf * 10), 9) AS bin FROM predictions) AS p
GROUP BY run_id, run, category;

CREATE VIEW preference_winrate AS
SELECT r.run_id, r.name AS run, r.model, r.method,
       COUNT(*) AS n,
       SUM((p.chosen_logprob > p.rejected_logprob)::int) AS wins,
       SUM((p.chosen_logprob = p.rejected_logprob)::int) AS ties,
       AVG((p.chosen_logprob > p.rejected_logprob)::int::float8) AS win_rate,
       (SUM((p.chosen_logprob > p.rejected_logprob)::int) + 0.5 * SUM((p.chosen_logprob = p.rejected_logprob)::int))::float8 / COUNT(*) AS win_rate_half_ties
FROM runs AS r JOIN preference_pairs AS p ON p.run_id = r.run_id
GROUP BY r.run_id;

CREATE VIEW judged_winrate AS
SELECT r.run_id, r.name AS run, j.opponent,
       COUNT(*) AS n,
       SUM((j.verdict = 'A')::int) AS a_wins, SUM((j.verdict = 'B')::int) AS b_wins, SUM((j.verdict = 'tie')::int) AS ties,
       100.0::float8 * (SUM((j.verdict = 'A')::int) + 0.5 * SUM((j.verdict = 'tie')::int))::float8 / COUNT(*) AS a_share,
       100.0::float8 * (SUM((j.verdict = 'B')::int) + 0.5 * SUM((j.verdict = 'tie')::int))::float8 / COUNT(*) AS b_share
FROM runs AS r JOIN judgments AS j ON j.run_id = r.run_id
GROUP BY r.run_id, j.opponent;
