-- A database written by track schema version 1 (made with sqlite3 from that version of sql/schema.sql and sql/views.sql).
PRAGMA user_version = 1;
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE track_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE experiments (
    experiment_id INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    description   TEXT,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE runs (
    run_id        INTEGER PRIMARY KEY,
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
INSERT INTO runs VALUES(1,'00000000-0000-4000-8000-000000000001','v1-run',NULL,'m','DPO','d',NULL,NULL,NULL,NULL,NULL,'finished','2026-11-22T08:30:37.695Z',NULL,NULL,NULL,NULL);
CREATE TABLE params (
    run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
INSERT INTO params VALUES(1,'lr','1e-5');
CREATE TABLE tags (
    run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE metrics (
    run_id    INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    value     REAL NOT NULL,
    step      INTEGER NOT NULL DEFAULT 0,
    timestamp INTEGER NOT NULL               -- milliseconds since 1970-01-01 UTC
);
CREATE TABLE questions (
    question_id INTEGER PRIMARY KEY,
    dataset     TEXT NOT NULL DEFAULT '',
    external_id TEXT NOT NULL,               -- stable id from the source (doc_id, row id, ...)
    subject     TEXT,                        -- e.g. MMLU subject
    n_options   INTEGER NOT NULL CHECK (n_options >= 2),
    label       INTEGER NOT NULL CHECK (label >= 0 AND label < n_options),
    UNIQUE (dataset, external_id)
);
INSERT INTO questions VALUES(1,'d','q0',NULL,2,0);
INSERT INTO questions VALUES(2,'d','q1',NULL,2,1);
INSERT INTO questions VALUES(3,'d','q2',NULL,2,1);
CREATE TABLE option_scores (
    run_id      INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    question_id INTEGER NOT NULL REFERENCES questions(question_id),
    option      INTEGER NOT NULL,            -- 0-based option index
    prob        REAL NOT NULL,
    score       REAL,
    PRIMARY KEY (run_id, question_id, option)
) WITHOUT ROWID;
INSERT INTO option_scores VALUES(1,1,0,0.9000000000000000222,NULL);
INSERT INTO option_scores VALUES(1,1,1,0.10000000000000000555,NULL);
INSERT INTO option_scores VALUES(1,2,0,0.69999999999999995559,NULL);
INSERT INTO option_scores VALUES(1,2,1,0.29999999999999998889,NULL);
INSERT INTO option_scores VALUES(1,3,0,0.2000000000000000111,NULL);
INSERT INTO option_scores VALUES(1,3,1,0.8000000000000000444,NULL);
CREATE TABLE preference_pairs (
    run_id           INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    prompt_id        TEXT NOT NULL,
    chosen_logprob   REAL NOT NULL,          -- sum over tokens of log p(y_t | x, y_<t)
    rejected_logprob REAL NOT NULL,
    chosen_tokens    INTEGER,
    rejected_tokens  INTEGER,
    PRIMARY KEY (run_id, prompt_id)
) WITHOUT ROWID;
CREATE INDEX runs_by_source ON runs(source_sha256) WHERE source_sha256 IS NOT NULL;
CREATE INDEX runs_by_model_method ON runs(model, method);
CREATE INDEX metrics_by_run_key ON metrics(run_id, key, step);
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
COMMIT;
