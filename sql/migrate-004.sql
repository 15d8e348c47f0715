-- Schema version 3 -> 4: EM targets of the ECE regulariser (Algorithm 1),
-- kept with the run they came from so that the next epoch can be held to them;
-- and judged comparisons for win rates.
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
