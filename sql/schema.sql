-- track: the run store schema.
--
-- This file is the single source of truth for the tables; the `track` binary
-- embeds it at build time. A fresh database can be made with either
--     track init --db my.sqlite
--     sqlite3 my.sqlite < sql/schema.sql && sqlite3 my.sqlite < sql/views.sql
-- Older databases are brought forward by sql/migrate-NNN.sql on open.
--
-- Layout: runs own predictions; a prediction is stored in long form, one row
-- per run x question x option (option_scores), so that any SQLite client can
-- aggregate it. Questions are shared between runs (keyed by dataset and a
-- stable external id), which is what makes two runs pairable.

PRAGMA foreign_keys = ON;

-- What the binary knows about this file (e.g. the hash of the views it installed).
CREATE TABLE track_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- MARK: experiments and runs

-- Groups of runs (`--experiment NAME`), with an optional description.
CREATE TABLE experiments (
    experiment_id INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    description   TEXT,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- One evaluation pass: model checkpoint x method x dataset x split x step.
CREATE TABLE runs (
    run_id        INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused (since version 6): a deleted run's id stays its own
    uuid          TEXT NOT NULL UNIQUE,          -- globally unique; what shards merge on
    name          TEXT NOT NULL UNIQUE,          -- what users type
    experiment_id INTEGER REFERENCES experiments(experiment_id) ON DELETE SET NULL,
    model         TEXT,                          -- e.g. 'Llama-3.1-8B-Tulu'
    method        TEXT,                          -- e.g. 'base', 'SFT', 'DPO', 'TS', 'CFT', 'RCFT'
    dataset       TEXT,                          -- e.g. 'mmlu', 'medmcqa'
    split         TEXT,                          -- e.g. 'in-domain', 'out-domain', 'test'
    step          INTEGER,                       -- training step, when the run is one of a series
    epoch         REAL,                          -- training epoch, likewise
    extraction    TEXT,                          -- 'choice', 'continuation-sum', 'continuation-min', 'continuation-mean', 'probability'
    parent_run_id INTEGER REFERENCES runs(run_id) ON DELETE SET NULL,
    status        TEXT NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'finished', 'failed')),
    started_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at   TEXT,
    source_file   TEXT,                          -- the file this run was ingested from
    source_sha256 TEXT,                          -- its SHA-256: re-ingesting it is detected
    source_format TEXT                           -- 'jsonl', 'csv', 'lm-eval', 'npy', 'stream', 'api'
);
CREATE INDEX runs_by_source ON runs(source_sha256) WHERE source_sha256 IS NOT NULL;
CREATE INDEX runs_by_model_method ON runs(model, method);
CREATE INDEX runs_by_parent ON runs(parent_run_id) WHERE parent_run_id IS NOT NULL;   -- since version 6

-- A run's parameters (key = value, as text): hyper-parameters, the fit of a derived run
-- (ts.temperature, ts.fold.K.temperature, ms.*, iso.*, hb.*), the harness's settings (lm_eval.*).
CREATE TABLE params (
    run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;

-- A run's free labels (key = value), set with `track tag` or `track log --tag`.
CREATE TABLE tags (
    run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;

-- Scalar metrics logged over steps, as MLflow keeps them: a key may be logged
-- many times; (step, timestamp) orders the history.
CREATE TABLE metrics (
    run_id    INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    value     REAL NOT NULL,
    step      INTEGER NOT NULL DEFAULT 0,
    timestamp INTEGER NOT NULL               -- milliseconds since 1970-01-01 UTC
);
CREATE INDEX metrics_by_run_key ON metrics(run_id, key, step);

-- MARK: questions and per-option scores

-- A multiple-choice question, shared by every run that answers it.
CREATE TABLE questions (
    question_id INTEGER PRIMARY KEY,
    dataset     TEXT NOT NULL DEFAULT '',
    external_id TEXT NOT NULL,               -- stable id from the source (doc_id, row id, ...)
    subject     TEXT,                        -- e.g. MMLU subject
    n_options   INTEGER NOT NULL CHECK (n_options >= 2),
    label       INTEGER NOT NULL CHECK (label >= 0 AND label < n_options),
    category    TEXT,                        -- a coarser grouping (since version 6), e.g. MMLU's 'stem'
    UNIQUE (dataset, external_id)
);

-- One row per run x question x option: the probability renormalised over the
-- K options (paper Eq. 1) and, when the input gave one, the raw score it came
-- from (a logit or log-probability), which makes NLL exact and temperature
-- scaling possible.
CREATE TABLE option_scores (
    run_id      INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    question_id INTEGER NOT NULL REFERENCES questions(question_id),
    option      INTEGER NOT NULL,            -- 0-based option index
    prob        REAL NOT NULL,
    score       REAL,
    PRIMARY KEY (run_id, question_id, option)
) WITHOUT ROWID;

-- Rows skipped by `track ingest --skip-invalid`, kept with the run (since version 2).
CREATE TABLE ingest_rejects (
    run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    line   INTEGER,
    reason TEXT NOT NULL
);
CREATE INDEX ingest_rejects_by_run ON ingest_rejects(run_id);

-- MARK: preference pairs (win rate, paper Eq. 21)

-- Per run and prompt: the sequence log-likelihoods of the chosen and the rejected response.
CREATE TABLE preference_pairs (
    run_id           INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    prompt_id        TEXT NOT NULL,
    chosen_logprob   REAL NOT NULL,          -- sum over tokens of log p(y_t | x, y_<t)
    rejected_logprob REAL NOT NULL,
    chosen_tokens    INTEGER,
    rejected_tokens  INTEGER,
    PRIMARY KEY (run_id, prompt_id)
) WITHOUT ROWID;

-- MARK: exports (since version 3)

-- Every figure or table track writes, with its SHA-256, the data file beside
-- it, the command line and the runs it shows: a figure traces back to its data.
CREATE TABLE exports (
    export_id   INTEGER PRIMARY KEY,
    path        TEXT NOT NULL,
    kind        TEXT NOT NULL,              -- e.g. 'reliability', 'classwise', 'grid', 'curve', 'table'
    format      TEXT NOT NULL,              -- 'png', 'pdf', 'svg', 'csv', 'tex', 'md'
    sha256      TEXT NOT NULL,
    data_path   TEXT,                       -- the CSV of the numbers drawn
    data_sha256 TEXT,
    command     TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
-- Which runs each export shows.
CREATE TABLE export_runs (
    export_id INTEGER NOT NULL REFERENCES exports(export_id) ON DELETE CASCADE,
    run_id    INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    PRIMARY KEY (export_id, run_id)
) WITHOUT ROWID;
CREATE INDEX export_runs_by_run ON export_runs(run_id);

-- MARK: EM targets (since version 4)

-- Targets of the ECE regulariser (Algorithm 1), kept with the run they came
-- from so that the next epoch can be held to them.
CREATE TABLE em_targets (
    run_id      INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    question_id INTEGER NOT NULL REFERENCES questions(question_id),
    option      INTEGER NOT NULL,
    bin         INTEGER NOT NULL,            -- the question's confidence bin in that run
    target      REAL NOT NULL,
    PRIMARY KEY (run_id, question_id, option)
) WITHOUT ROWID;

-- Judged head-to-head comparisons (AlpacaEval, Arena-Hard): per prompt, the
-- verdict of this run (A) against another run or a fixed reference (B).
CREATE TABLE judgments (
    run_id       INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    prompt_id    TEXT NOT NULL,
    opponent     TEXT NOT NULL,              -- the other run's name, or a reference such as 'gpt-4-turbo'
    verdict      TEXT NOT NULL CHECK (verdict IN ('A', 'B', 'tie')),
    PRIMARY KEY (run_id, opponent, prompt_id)
) WITHOUT ROWID;

-- MARK: summaries kept as data (since version 5)
--
-- What the views and `track runs` read instead of recomputing every stored
-- run: written by track in the same transaction as the option rows they
-- summarise (every writer: log, ingest, merge, derived runs, the Swift API).
-- Rows written with plain SQL are caught by the triggers of views.sql, which
-- keep `_track_top_labels` exact and list the run in `_track_stale_runs`; the views compute
-- a stale run's numbers from its rows, and the next writing track command
-- recomputes its summaries. So no view ever shows a stale number.

-- The top label of each run x question (METHODS §1): pred = argmax_k p_k with
-- ties to the lowest index; its confidence is that option's row in option_scores
-- (the views read it from there, one primary-key step away).
CREATE TABLE _track_top_labels (
    run_id      INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    question_id INTEGER NOT NULL REFERENCES questions(question_id),
    pred        INTEGER NOT NULL,
    PRIMARY KEY (run_id, question_id)
) WITHOUT ROWID;

-- Per run: additive totals (so appending rows only adds to them).
CREATE TABLE _track_run_stats (
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
CREATE TABLE _track_run_bins (
    run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    class  INTEGER NOT NULL,
    bin    INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    hits   INTEGER NOT NULL,
    sum_p  REAL NOT NULL,
    PRIMARY KEY (run_id, class, bin)
) WITHOUT ROWID;

-- Runs whose _track_run_stats/_track_run_bins do not yet reflect rows written with plain
-- SQL; run_id 0 stands for every run (a question's label was changed).
CREATE TABLE _track_stale_runs (
    run_id INTEGER PRIMARY KEY
);

-- MARK: recalibration folds (since version 6)

-- How `track calibrate --holdout F` / `--folds K` split the questions of a derived
-- run and of the run the map was fitted on, so that SQL can select either side:
-- with --folds K, `fold` is the question's fold (0..K-1), calibrated by the map
-- fitted on the other folds; with --holdout F, 0 = fitted on (not in the derived
-- run), 1 = held out (the derived run's questions).
CREATE TABLE calibration_folds (
    run_id      INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,   -- the derived run
    question_id INTEGER NOT NULL REFERENCES questions(question_id),
    fold        INTEGER NOT NULL CHECK (fold >= 0),
    PRIMARY KEY (run_id, question_id)
) WITHOUT ROWID;

PRAGMA user_version = 7;
