-- Schema version 5 -> 6: a question's category (a grouping coarser than its
-- subject, e.g. MMLU's 'stem' for 'abstract_algebra', from lm-evaluation-harness
-- task groups), and the folds of recalibrated runs (`track calibrate --holdout /
-- --folds`), so that SQL can select the questions a map was fitted on.
ALTER TABLE questions ADD COLUMN category TEXT;

CREATE TABLE calibration_folds (
    run_id      INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,   -- the derived run
    question_id INTEGER NOT NULL REFERENCES questions(question_id),
    fold        INTEGER NOT NULL CHECK (fold >= 0),
    PRIMARY KEY (run_id, question_id)
) WITHOUT ROWID;
