-- track: SQL views over the run store.
--
-- Embedded in the `track` binary and re-created on every open, so they always
-- match the binary; `sqlite3 my.sqlite < sql/views.sql` installs them by hand.
-- Top-label rule (SPEC §1): pred = argmax_k p_k, ties to the lowest index;
-- conf = max_k p_k; correct = [pred = label].

DROP VIEW IF EXISTS judged_winrate;
DROP VIEW IF EXISTS preference_winrate;
DROP VIEW IF EXISTS run_calibration;
DROP VIEW IF EXISTS classwise_bins;
DROP VIEW IF EXISTS reliability_bins;
DROP VIEW IF EXISTS run_summary;
DROP VIEW IF EXISTS predictions;

-- One row per run x question: the top-label prediction.
CREATE VIEW predictions AS
SELECT run_id, question_id, external_id, dataset, subject, n_options, label,
       pred, conf, CAST(pred = label AS INTEGER) AS correct
FROM (
    SELECT t.run_id, t.question_id, q.external_id, q.dataset, q.subject,
           q.n_options, q.label, t.conf,
           (SELECT MIN(o.option) FROM option_scores AS o
             WHERE o.run_id = t.run_id AND o.question_id = t.question_id
               AND o.prob = t.conf) AS pred
    FROM (SELECT run_id, question_id, MAX(prob) AS conf
            FROM option_scores GROUP BY run_id, question_id) AS t
    JOIN questions AS q ON q.question_id = t.question_id
);

-- One row per run: its metadata with n, accuracy and mean confidence.
CREATE VIEW run_summary AS
SELECT r.run_id, r.name AS run, r.model, r.method, r.dataset, r.split,
       r.step, r.epoch, r.extraction, r.status,
       COUNT(p.question_id) AS n,
       AVG(p.correct) AS accuracy,
       AVG(p.conf) AS mean_confidence,
       AVG(p.conf) - AVG(p.correct) AS overconfidence
FROM runs AS r
LEFT JOIN predictions AS p ON p.run_id = r.run_id
GROUP BY r.run_id;

-- MARK: calibration, 10 equal-width bins (SPEC §2, §3)
--
-- One binning rule everywhere: bin(p) = MIN(CAST(p * 10 AS INTEGER), 9), so
-- [m/10, (m+1)/10) with the last bin closed at 1.0. The Swift analyzers
-- (`track metrics`) bin identically and compute every bin count; these views
-- serve ad-hoc SQL with the default 10 bins. Empty bins have no row.

-- Top-label reliability table: per run and confidence bin.
CREATE VIEW reliability_bins AS
SELECT run_id,
       MIN(CAST(conf * 10 AS INTEGER), 9) AS bin,
       COUNT(*) AS n,
       AVG(correct) AS accuracy,
       AVG(conf) AS confidence,
       AVG(correct) - AVG(conf) AS gap          -- negative: overconfident
FROM predictions
GROUP BY run_id, bin;

-- Classwise reliability tables: per run, option (class) and bin of p_ik over all questions.
CREATE VIEW classwise_bins AS
SELECT o.run_id,
       o.option AS class,
       MIN(CAST(o.prob * 10 AS INTEGER), 9) AS bin,
       COUNT(*) AS n,
       AVG(o.option = q.label) AS frequency,
       AVG(o.prob) AS mean_prob,
       AVG(o.option = q.label) - AVG(o.prob) AS gap
FROM option_scores AS o
JOIN questions AS q ON q.question_id = o.question_id
GROUP BY o.run_id, class, bin;

-- One row per run: metadata with n, accuracy, mean confidence,
-- overconfidence, conf-ECE, MCE, cw-ECE (= SCE; NULL when questions differ in
-- option count) and Brier, all with 10 bins. E.g.
--   SELECT run, conf_ece, cw_ece FROM run_calibration WHERE method = 'DPO';
CREATE VIEW run_calibration AS
WITH top AS (
    SELECT run_id,
           SUM(n) AS n,
           SUM(n * accuracy) / SUM(n) AS accuracy,
           SUM(n * confidence) / SUM(n) AS mean_confidence,
           SUM(n * ABS(gap)) / SUM(n) AS conf_ece,
           MAX(ABS(gap)) AS mce
    FROM reliability_bins GROUP BY run_id
), classwise AS (
    SELECT run_id,
           SUM(n * ABS(gap)) AS weighted_gap,
           SUM(n) AS option_rows,
           MAX(class) + 1 AS k
    FROM classwise_bins GROUP BY run_id
), squared AS (
    SELECT o.run_id,
           SUM((o.prob - (o.option = q.label)) * (o.prob - (o.option = q.label))) AS total
    FROM option_scores AS o
    JOIN questions AS q ON q.question_id = o.question_id
    GROUP BY o.run_id
)
SELECT r.run_id, r.name AS run, r.model, r.method, r.dataset, r.split, r.step, r.epoch,
       r.extraction, r.status,
       top.n,
       top.accuracy,
       top.mean_confidence,
       top.mean_confidence - top.accuracy AS overconfidence,
       top.conf_ece,
       top.mce,
       CASE WHEN c.option_rows = top.n * c.k THEN c.weighted_gap / top.n / c.k END AS cw_ece,
       s.total / top.n AS brier
FROM runs AS r
JOIN top ON top.run_id = r.run_id
JOIN classwise AS c ON c.run_id = r.run_id
JOIN squared AS s ON s.run_id = r.run_id;

-- MARK: win rate (SPEC §7)

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
FROM preference_pairs AS p JOIN runs AS r ON r.run_id = p.run_id
GROUP BY p.run_id;

-- Judged head-to-head: the run's share (A) against each opponent, ties split.
CREATE VIEW judged_winrate AS
SELECT r.run_id, r.name AS run, j.opponent,
       COUNT(*) AS n,
       SUM(j.verdict = 'A') AS a_wins, SUM(j.verdict = 'B') AS b_wins, SUM(j.verdict = 'tie') AS ties,
       100.0 * (SUM(j.verdict = 'A') + 0.5 * SUM(j.verdict = 'tie')) / COUNT(*) AS a_share,
       100.0 * (SUM(j.verdict = 'B') + 0.5 * SUM(j.verdict = 'tie')) / COUNT(*) AS b_share
FROM judgments AS j JOIN runs AS r ON r.run_id = j.run_id
GROUP BY j.run_id, j.opponent;
