-- Schema version 5 -> 6: a question's category (a grouping coarser than its
-- subject, e.g. MMLU's 'stem' for 'abstract_algebra', from lm-evaluation-harness
-- task groups); the folds of recalibrated runs (`track calibrate --holdout /
-- --folds`), so that SQL can select the questions a map was fitted on; and run
-- ids that are never reused (AUTOINCREMENT), so that a writer still holding a
-- deleted run's id can never write into another run. track runs this with
-- foreign keys off and the views and triggers dropped (views.sql reinstalls them).
ALTER TABLE questions ADD COLUMN category TEXT;

CREATE TABLE calibration_folds (
    run_id      INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,   -- the derived run
    question_id INTEGER NOT NULL REFERENCES questions(question_id),
    fold        INTEGER NOT NULL CHECK (fold >= 0),
    PRIMARY KEY (run_id, question_id)
) WITHOUT ROWID;

CREATE TABLE runs_autoincrement (
    run_id        INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid          TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL UNIQUE,
    experiment_id INTEGER REFERENCES experiments(experiment_id) ON DELETE SET NULL,
    model         TEXT,
    method        TEXT,
    dataset       TEXT,
    split         TEXT,
    step          INTEGER,
    epoch         REAL,
    extraction    TEXT,
    parent_run_id INTEGER REFERENCES runs(run_id) ON DELETE SET NULL,
    status        TEXT NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'finished', 'failed')),
    started_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at   TEXT,
    source_file   TEXT,
    source_sha256 TEXT,
    source_format TEXT
);
INSERT INTO runs_autoincrement(run_id, uuid, name, experiment_id, model, method, dataset, split, step, epoch, extraction,
                               parent_run_id, status, started_at, finished_at, source_file, source_sha256, source_format)
    SELECT run_id, uuid, name, experiment_id, model, method, dataset, split, step, epoch, extraction,
           parent_run_id, status, started_at, finished_at, source_file, source_sha256, source_format FROM runs;
DROP TABLE runs;
ALTER TABLE runs_autoincrement RENAME TO runs;
CREATE INDEX runs_by_source ON runs(source_sha256) WHERE source_sha256 IS NOT NULL;
CREATE INDEX runs_by_model_method ON runs(model, method);
CREATE INDEX runs_by_parent ON runs(parent_run_id) WHERE parent_run_id IS NOT NULL;
