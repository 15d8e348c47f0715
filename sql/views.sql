-- track: SQL views over the run store.
--
-- Embedded in the `track` binary and re-created on every open, so they always
-- match the binary; `sqlite3 my.sqlite < sql/views.sql` installs them by hand.
-- Top-label rule (SPEC §1): pred = argmax_k p_k, ties to the lowest index;
-- conf = max_k p_k; correct = [pred = label].

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
