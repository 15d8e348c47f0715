-- Schema version 3 -> 4: EM targets of the ECE regulariser (Algorithm 1),
-- kept with the run they came from so that the next epoch can be held to them.
CREATE TABLE em_targets (
    run_id      INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    question_id INTEGER NOT NULL REFERENCES questions(question_id),
    option      INTEGER NOT NULL,
    bin         INTEGER NOT NULL,            -- the question's confidence bin in that run
    target      REAL NOT NULL,
    PRIMARY KEY (run_id, question_id, option)
) WITHOUT ROWID;
