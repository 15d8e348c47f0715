-- Version 5 -> 6: questions.category and calibration_folds, as sql/migrate-006.sql.
ALTER TABLE questions ADD COLUMN category TEXT;

CREATE TABLE calibration_folds (
    run_id      BIGINT NOT NULL,
    question_id BIGINT NOT NULL,
    fold        BIGINT NOT NULL CHECK (fold >= 0),
    PRIMARY KEY (run_id, question_id)
);

CREATE INDEX runs_by_parent ON runs(parent_run_id) WHERE parent_run_id IS NOT NULL;
