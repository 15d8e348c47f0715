-- Schema version 4 -> 5: summaries kept as data. The top label of each
-- run x question, and per run additive totals and 10-bin tables, so that views
-- and `track runs` read a few rows per run instead of recomputing every run.
-- The top labels are filled here; every run is listed as stale, so the views
-- compute their numbers from the rows until track (which runs this on open)
-- has recomputed the summaries, with progress on stderr. The triggers that keep
-- plain-SQL writes honest are in views.sql, installed after every migration.

-- The top label of each run x question (METHODS §1): pred = argmax_k p_k with
-- ties to the lowest index; its confidence is that option's row in option_scores
-- (the views read it from there, one primary-key step away).
CREATE TABLE top_labels (
    run_id      INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    question_id INTEGER NOT NULL REFERENCES questions(question_id),
    pred        INTEGER NOT NULL,
    PRIMARY KEY (run_id, question_id)
) WITHOUT ROWID;

-- Per run: additive totals (so appending rows only adds to them).
CREATE TABLE run_stats (
    run_id         INTEGER PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE,
    n              INTEGER NOT NULL,       -- questions
    n_correct      INTEGER NOT NULL,       -- questions whose top label is the gold one
    sum_conf       REAL NOT NULL,          -- sum of top-label confidences
    sum_brier      REAL NOT NULL,          -- sum over questions of sum_k (p_k - [y = k])^2
    sum_nll        REAL NOT NULL,          -- sum of -log max(p_y, 1e-15)
    sum_nll_scores REAL NOT NULL,          -- sum of -log_softmax(scores)_y over questions with raw scores
    n_scored       INTEGER NOT NULL,       -- questions with raw scores
    min_options    INTEGER,                -- smallest and largest option count K
    max_options    INTEGER
);

-- Per run x class x bin, 10 equal-width bins: class -1 is the top-label
-- table (values = confidences, hits = correct answers); class k >= 0 the
-- classwise table of option k (values = p_ik, hits = [y_i = k]).
CREATE TABLE run_bins (
    run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    class  INTEGER NOT NULL,
    bin    INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    hits   INTEGER NOT NULL,
    sum_p  REAL NOT NULL,
    PRIMARY KEY (run_id, class, bin)
) WITHOUT ROWID;

-- Runs whose run_stats/run_bins do not yet reflect rows written with plain
-- SQL; run_id 0 stands for every run (a question's label was changed).
CREATE TABLE stale_runs (
    run_id INTEGER PRIMARY KEY
);

INSERT INTO top_labels(run_id, question_id, pred)
SELECT run_id, question_id, option FROM (
    SELECT run_id, question_id, option, prob,
           ROW_NUMBER() OVER (PARTITION BY run_id, question_id ORDER BY prob DESC, option) AS position
    FROM option_scores)
WHERE position = 1;

INSERT INTO stale_runs(run_id) SELECT run_id FROM runs;
