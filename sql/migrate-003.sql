-- Schema version 2 -> 3: every figure or table that track writes is recorded
-- with its SHA-256, the data file beside it, the command line and the runs it
-- shows, so that a figure in a paper can be traced back to its data.
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
CREATE TABLE export_runs (
    export_id INTEGER NOT NULL REFERENCES exports(export_id) ON DELETE CASCADE,
    run_id    INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    PRIMARY KEY (export_id, run_id)
) WITHOUT ROWID;
CREATE INDEX export_runs_by_run ON export_runs(run_id);
