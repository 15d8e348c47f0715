-- track: SQL views and triggers over the run store.
--
-- Embedded in the `track` binary and re-created on open whenever they change,
-- so they always match the binary; `sqlite3 my.sqlite < sql/views.sql`
-- installs them by hand.
-- Top-label rule (METHODS §1): pred = argmax_k p_k, ties to the lowest index;
-- conf = max_k p_k; correct = [pred = label].
--
-- Every view carries the run's name (`run`) and reads the summaries kept as
-- data (_track_top_labels, _track_run_stats, _track_run_bins; see schema.sql), so a filter on a run
-- -- `WHERE run = 'x'`, or on model, method, dataset or split -- applies before
-- any per-question work, and listing every run reads a few rows per run.

DROP VIEW IF EXISTS category_calibration;
DROP VIEW IF EXISTS subject_calibration;
DROP VIEW IF EXISTS judged_winrate;
DROP VIEW IF EXISTS preference_winrate;
DROP VIEW IF EXISTS run_calibration;
DROP VIEW IF EXISTS classwise_bins;
DROP VIEW IF EXISTS reliability_bins;
DROP VIEW IF EXISTS run_summary;
DROP VIEW IF EXISTS predictions;
DROP VIEW IF EXISTS _track_run_bin_gaps;
DROP VIEW IF EXISTS _track_run_bin_totals;
DROP VIEW IF EXISTS _track_stale_run_bins;
DROP VIEW IF EXISTS _track_run_totals;
DROP VIEW IF EXISTS _track_stale_question_terms;
DROP VIEW IF EXISTS _track_stale_run_ids;
DROP TRIGGER IF EXISTS option_scores_inserted;
DROP TRIGGER IF EXISTS option_scores_updated;
DROP TRIGGER IF EXISTS option_scores_deleted;
DROP TRIGGER IF EXISTS questions_changed;
DROP TRIGGER IF EXISTS questions_deleted;
DROP TRIGGER IF EXISTS runs_deleted;

-- MARK: plain-SQL writers (triggers)
--
-- track maintains the summaries itself and writes with these triggers turned
-- off on its own connections; any other client (sqlite3, Python, Datasette)
-- fires them. They keep _track_top_labels exact row by row and list the run in
-- _track_stale_runs, which the views below honour (a stale run's numbers are computed
-- from its rows) until a writing track command recomputes its summaries.

CREATE TRIGGER option_scores_inserted AFTER INSERT ON option_scores BEGIN
    INSERT OR REPLACE INTO _track_top_labels(run_id, question_id, pred)
        SELECT run_id, question_id, option FROM option_scores
        WHERE run_id = NEW.run_id AND question_id = NEW.question_id
        ORDER BY prob DESC, option LIMIT 1;
    INSERT OR IGNORE INTO _track_stale_runs(run_id) VALUES (NEW.run_id);
END;

CREATE TRIGGER option_scores_updated AFTER UPDATE ON option_scores BEGIN
    DELETE FROM _track_top_labels WHERE run_id = OLD.run_id AND question_id = OLD.question_id;
    INSERT OR REPLACE INTO _track_top_labels(run_id, question_id, pred)
        SELECT run_id, question_id, option FROM option_scores
        WHERE run_id = OLD.run_id AND question_id = OLD.question_id
        ORDER BY prob DESC, option LIMIT 1;
    INSERT OR REPLACE INTO _track_top_labels(run_id, question_id, pred)
        SELECT run_id, question_id, option FROM option_scores
        WHERE run_id = NEW.run_id AND question_id = NEW.question_id
        ORDER BY prob DESC, option LIMIT 1;
    INSERT OR IGNORE INTO _track_stale_runs(run_id) VALUES (OLD.run_id), (NEW.run_id);
END;

CREATE TRIGGER option_scores_deleted AFTER DELETE ON option_scores BEGIN
    DELETE FROM _track_top_labels WHERE run_id = OLD.run_id AND question_id = OLD.question_id;
    INSERT OR REPLACE INTO _track_top_labels(run_id, question_id, pred)
        SELECT run_id, question_id, option FROM option_scores
        WHERE run_id = OLD.run_id AND question_id = OLD.question_id
        ORDER BY prob DESC, option LIMIT 1;
    INSERT OR IGNORE INTO _track_stale_runs(run_id) VALUES (OLD.run_id);
END;

-- A changed label or option count can change any run's numbers: all are stale.
CREATE TRIGGER questions_changed AFTER UPDATE OF label, n_options ON questions
WHEN OLD.label IS NOT NEW.label OR OLD.n_options IS NOT NEW.n_options BEGIN
    INSERT OR IGNORE INTO _track_stale_runs(run_id) VALUES (0);
END;

CREATE TRIGGER questions_deleted AFTER DELETE ON questions BEGIN
    INSERT OR IGNORE INTO _track_stale_runs(run_id) VALUES (0);
END;

-- A deleted run takes its rows and summaries along, whether or not the
-- client has foreign keys on (the sqlite3 shell has them off by default).
CREATE TRIGGER runs_deleted AFTER DELETE ON runs BEGIN
    DELETE FROM option_scores WHERE run_id = OLD.run_id;
    DELETE FROM _track_top_labels WHERE run_id = OLD.run_id;
    DELETE FROM _track_run_bins WHERE run_id = OLD.run_id;
    DELETE FROM _track_run_stats WHERE run_id = OLD.run_id;
    DELETE FROM _track_stale_runs WHERE run_id = OLD.run_id;
END;

-- MARK: summaries, stored or computed for stale runs

-- Runs whose stored summaries are stale (see _track_stale_runs).
CREATE VIEW _track_stale_run_ids AS
SELECT run_id FROM runs
WHERE EXISTS (SELECT 1 FROM _track_stale_runs AS x WHERE x.run_id IN (runs.run_id, 0));

-- Per stale run x question: the terms the totals add up, from the option rows.
CREATE VIEW _track_stale_question_terms AS
SELECT run_id, question_id, label, COUNT(*) AS k,
       SUM((prob - (option = label)) * (prob - (option = label))) AS brier,
       MAX(CASE WHEN option = label THEN prob END) AS p_label,
       COUNT(score) AS n_scores,
       MAX(CASE WHEN option = label THEN score END) - MAX(score_max) - ln(SUM(exp(score - score_max))) AS log_softmax_label
FROM (SELECT o.run_id, o.question_id, o.option, o.prob, o.score, q.label,
             MAX(o.score) OVER (PARTITION BY o.run_id, o.question_id) AS score_max
      FROM option_scores AS o JOIN questions AS q ON q.question_id = o.question_id
      WHERE o.run_id IN (SELECT run_id FROM _track_stale_run_ids))
GROUP BY run_id, question_id;

-- Per run: the additive totals of _track_run_stats (stored, or from the rows when stale).
CREATE VIEW _track_run_totals AS
SELECT s.run_id, s.n, s.n_correct, s.sum_conf, s.sum_brier, s.sum_nll, s.sum_nll_scores, s.n_scored,
       s.min_options, s.max_options
FROM _track_run_stats AS s
WHERE NOT EXISTS (SELECT 1 FROM _track_stale_runs AS x WHERE x.run_id IN (s.run_id, 0))
UNION ALL
SELECT t.run_id, COUNT(*), SUM(tl.pred = t.label), SUM(o.prob), SUM(t.brier),
       SUM(-ln(MAX(t.p_label, 1e-15))),
       SUM(CASE WHEN t.n_scores = t.k THEN -t.log_softmax_label ELSE 0 END),
       SUM(t.n_scores = t.k), MIN(t.k), MAX(t.k)
FROM _track_stale_question_terms AS t
JOIN _track_top_labels AS tl ON tl.run_id = t.run_id AND tl.question_id = t.question_id
JOIN option_scores AS o ON o.run_id = tl.run_id AND o.question_id = tl.question_id AND o.option = tl.pred
GROUP BY t.run_id;

-- Per run x class x bin (class -1: top label): the sums of _track_run_bins (stored, or from the rows when stale).
-- Per stale run x class x bin (class -1: top label): the sums _track_run_bins holds, from the rows.
CREATE VIEW _track_stale_run_bins AS
SELECT t.run_id, -1 AS class, MIN(CAST(o.prob * 10 AS INTEGER), 9) AS bin, COUNT(*) AS n,
       SUM(t.pred = q.label) AS hits, SUM(o.prob) AS sum_p
FROM _track_top_labels AS t JOIN questions AS q ON q.question_id = t.question_id
JOIN option_scores AS o ON o.run_id = t.run_id AND o.question_id = t.question_id AND o.option = t.pred
WHERE t.run_id IN (SELECT run_id FROM _track_stale_run_ids)
GROUP BY t.run_id, bin
UNION ALL
SELECT o.run_id, o.option, MIN(CAST(o.prob * 10 AS INTEGER), 9) AS bin, COUNT(*), SUM(o.option = q.label), SUM(o.prob)
FROM option_scores AS o JOIN questions AS q ON q.question_id = o.question_id
WHERE o.run_id IN (SELECT run_id FROM _track_stale_run_ids)
GROUP BY o.run_id, o.option, bin;

-- Per run x class x bin (class -1: top label): the sums of _track_run_bins (stored, or from the rows when stale).
CREATE VIEW _track_run_bin_totals AS
SELECT b.run_id, b.class, b.bin, b.n, b.hits, b.sum_p
FROM _track_run_bins AS b
WHERE NOT EXISTS (SELECT 1 FROM _track_stale_runs AS x WHERE x.run_id IN (b.run_id, 0))
UNION ALL
SELECT run_id, class, bin, n, hits, sum_p FROM _track_stale_run_bins;

-- Per run (with its name, so that a filter on it reaches _track_run_bins first): the sums the
-- binned ECEs are made of, 10 bins. Top-label and class rows are one per bin, so their
-- gaps add directly; the pooled bins add the classes of a bin first (one term per bin).
-- The stored and the stale arm repeat their sums on purpose: SQLite 3.40 pushes a filter on
-- `run` into each arm of a UNION ALL of aggregates, not through an aggregate over a UNION ALL.
CREATE VIEW _track_run_bin_gaps AS
SELECT b.run_id, r.name AS run,
       SUM(CASE WHEN b.class = -1 THEN ABS(b.hits - b.sum_p) END) AS top_gap,
       MAX(CASE WHEN b.class = -1 THEN ABS(1.0 * b.hits / b.n - b.sum_p / b.n) END) AS mce,
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
FROM runs AS r JOIN _track_run_bins AS b ON b.run_id = r.run_id
WHERE NOT EXISTS (SELECT 1 FROM _track_stale_runs AS x WHERE x.run_id IN (b.run_id, 0))
GROUP BY b.run_id, r.name
UNION ALL
SELECT b.run_id, r.name AS run,
       SUM(CASE WHEN b.class = -1 THEN ABS(b.hits - b.sum_p) END) AS top_gap,
       MAX(CASE WHEN b.class = -1 THEN ABS(1.0 * b.hits / b.n - b.sum_p / b.n) END) AS mce,
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
FROM runs AS r JOIN _track_stale_run_bins AS b ON b.run_id = r.run_id
GROUP BY b.run_id, r.name;

-- MARK: the views users query

-- One row per run x question: the top-label prediction.
CREATE VIEW predictions AS
SELECT t.run_id, t.question_id, q.external_id, q.dataset, q.subject, q.n_options, q.label,
       t.pred, o.prob AS conf, CAST(t.pred = q.label AS INTEGER) AS correct, r.name AS run, q.category
FROM runs AS r
JOIN _track_top_labels AS t ON t.run_id = r.run_id
JOIN option_scores AS o ON o.run_id = t.run_id AND o.question_id = t.question_id AND o.option = t.pred
JOIN questions AS q ON q.question_id = t.question_id;

-- One row per run: its metadata with n, accuracy and mean confidence.
CREATE VIEW run_summary AS
SELECT r.run_id, r.name AS run, r.model, r.method, r.dataset, r.split,
       r.step, r.epoch, r.extraction, r.status,
       COALESCE(s.n, 0) AS n,
       1.0 * s.n_correct / s.n AS accuracy,
       s.sum_conf / s.n AS mean_confidence,
       s.sum_conf / s.n - 1.0 * s.n_correct / s.n AS overconfidence   -- mean confidence minus accuracy
FROM runs AS r
LEFT JOIN _track_run_totals AS s ON s.run_id = r.run_id;

-- MARK: calibration, 10 equal-width bins (METHODS §2, §3)
--
-- One binning rule everywhere: bin(p) = MIN(CAST(p * 10 AS INTEGER), 9), so
-- [m/10, (m+1)/10) with the last bin closed at 1.0. The Swift analyzers
-- (`track metrics`) bin identically and compute every bin count; these views
-- serve ad-hoc SQL with the default 10 bins. Empty bins have no row.

-- Top-label reliability table: per run and confidence bin.
CREATE VIEW reliability_bins AS
SELECT b.run_id, b.bin, b.n,
       1.0 * b.hits / b.n AS accuracy,
       b.sum_p / b.n AS confidence,
       1.0 * b.hits / b.n - b.sum_p / b.n AS gap,          -- negative: overconfident
       r.name AS run
FROM runs AS r JOIN _track_run_bin_totals AS b ON b.run_id = r.run_id
WHERE b.class = -1;

-- Classwise reliability tables: per run, option (class) and bin of p_ik over all questions.
CREATE VIEW classwise_bins AS
SELECT b.run_id, b.class, b.bin, b.n,
       1.0 * b.hits / b.n AS frequency,
       b.sum_p / b.n AS mean_prob,
       1.0 * b.hits / b.n - b.sum_p / b.n AS gap,
       r.name AS run
FROM runs AS r JOIN _track_run_bin_totals AS b ON b.run_id = r.run_id
WHERE b.class >= 0;

-- One row per run: metadata with n, accuracy, mean confidence,
-- overconfidence, conf-ECE, MCE, cw-ECE (= SCE; NULL when questions differ in
-- option count), Brier, NLL (exact from raw scores when every question has
-- them) and the pooled ECE (every question x option one prediction), all with
-- 10 bins. E.g.
--   SELECT run, conf_ece, cw_ece FROM run_calibration WHERE method = 'DPO';
CREATE VIEW run_calibration AS
SELECT r.run_id, g.run, r.model, r.method, r.dataset, r.split, r.step, r.epoch,
       r.extraction, r.status,
       s.n,
       1.0 * s.n_correct / s.n AS accuracy,
       s.sum_conf / s.n AS mean_confidence,
       s.sum_conf / s.n - 1.0 * s.n_correct / s.n AS overconfidence,
       g.top_gap / s.n AS conf_ece,                  -- top-label ECE, 10 equal-width bins
       g.mce,
       CASE WHEN s.min_options = s.max_options THEN g.classwise_gap / s.n / s.max_options END AS cw_ece,   -- mean of the K class ECEs (SCE)
       s.sum_brier / s.n AS brier,                   -- mean over questions of sum_k (p_k - [y = k])^2
       (CASE WHEN s.n_scored = s.n THEN s.sum_nll_scores ELSE s.sum_nll END) / s.n AS nll,   -- from raw scores when every question has them
       g.pooled_gap / g.predictions AS pooled_ece    -- every question x option one prediction
FROM _track_run_bin_gaps AS g
JOIN runs AS r ON r.run_id = g.run_id
JOIN _track_run_totals AS s ON s.run_id = g.run_id
WHERE s.n > 0;

-- Per run x subject, and per run x category: n, accuracy, mean confidence and conf-ECE
-- (10 bins; the sum over bins of |hits - sum of confidences|, over n, in one level of
-- aggregation so that a filter on the run reaches _track_top_labels first), e.g. the worst subjects:
--   SELECT subject, n, accuracy, conf_ece FROM subject_calibration WHERE run = 'x' ORDER BY conf_ece DESC;
CREATE VIEW subject_calibration AS
SELECT run_id, run, subject, COUNT(*) AS n,
       AVG(correct) AS accuracy,
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
FROM (SELECT run_id, run, subject, correct, conf, MIN(CAST(conf * 10 AS INTEGER), 9) AS bin FROM predictions)
GROUP BY run_id, run, subject;

-- Per run x category (e.g. MMLU's stem, humanities): as subject_calibration. (Two views of one
-- shape rather than one view over a UNION of both groupings: SQLite pushes a filter on the run
-- into a plain aggregate, not through a UNION under one.)
CREATE VIEW category_calibration AS
SELECT run_id, run, category, COUNT(*) AS n,
       AVG(correct) AS accuracy,
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
FROM (SELECT run_id, run, category, correct, conf, MIN(CAST(conf * 10 AS INTEGER), 9) AS bin FROM predictions)
GROUP BY run_id, run, category;

-- MARK: win rate (METHODS §7)

-- Sequence likelihood of preference pairs: a win when the chosen response is
-- more likely than the rejected one; ties count as losses in win_rate (the
-- paper's convention) and as half in win_rate_half_ties.
CREATE VIEW preference_winrate AS
SELECT r.run_id, r.name AS run, r.model, r.method,
       COUNT(*) AS n,
       SUM(p.chosen_logprob > p.rejected_logprob) AS wins,
       SUM(p.chosen_logprob = p.rejected_logprob) AS ties,
       AVG(p.chosen_logprob > p.rejected_logprob) AS win_rate,
       (SUM(p.chosen_logprob > p.rejected_logprob) + 0.5 * SUM(p.chosen_logprob = p.rejected_logprob)) / COUNT(*) AS win_rate_half_ties
FROM runs AS r JOIN preference_pairs AS p ON p.run_id = r.run_id
GROUP BY r.run_id;

-- Judged head-to-head: the run's share (A) against each opponent, ties split.
CREATE VIEW judged_winrate AS
SELECT r.run_id, r.name AS run, j.opponent,
       COUNT(*) AS n,
       SUM(j.verdict = 'A') AS a_wins, SUM(j.verdict = 'B') AS b_wins, SUM(j.verdict = 'tie') AS ties,
       100.0 * (SUM(j.verdict = 'A') + 0.5 * SUM(j.verdict = 'tie')) / COUNT(*) AS a_share,
       100.0 * (SUM(j.verdict = 'B') + 0.5 * SUM(j.verdict = 'tie')) / COUNT(*) AS b_share
FROM runs AS r JOIN judgments AS j ON j.run_id = r.run_id
GROUP BY r.run_id, j.opponent;
