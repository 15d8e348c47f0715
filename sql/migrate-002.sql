-- Schema version 1 -> 2: rows skipped by `track ingest --skip-invalid` are
-- kept with the run, so that what was left out stays queryable.
CREATE TABLE ingest_rejects (
    run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    line   INTEGER,
    reason TEXT NOT NULL
);
CREATE INDEX ingest_rejects_by_run ON ingest_rejects(run_id);
