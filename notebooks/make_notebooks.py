#!/usr/bin/env python3
"""Writes the notebooks of notebooks/ from the cells below (the source of truth for
their code); `run_notebooks.py` executes them. Standard library only."""
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent

SETUP = '''import json, os, pathlib, shutil, sqlite3, subprocess, tempfile

# The track binary and the demo database (made by `make demo`, or here if missing).
ROOT = pathlib.Path.cwd().parent if pathlib.Path.cwd().name == "notebooks" else pathlib.Path.cwd()
TRACK = os.environ.get("TRACK_BIN") or shutil.which("track") or next(
    str(p) for p in [ROOT / ".build/release/track", ROOT / ".build/debug/track"] if p.exists())
DEMO = pathlib.Path(os.environ.get("TRACK_DEMO_DB", ROOT / "demo.sqlite"))
if not DEMO.exists():
    subprocess.run([TRACK, "demo", "--db", str(DEMO), "--out", tempfile.mkdtemp()], check=True, capture_output=True)

def track(*args, db=DEMO, stdin=None):
    """Runs `track ARGS --db DB` and returns its standard output."""
    result = subprocess.run([TRACK, *args, "--db", str(db)], input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return result.stdout'''

NOTEBOOKS = {
    "01_logging_from_python.ipynb": [
        ("markdown", "# Logging from a Python evaluation loop\n\nA loop produces option scores per forward pass. No model can be downloaded here, so the scores are **simulated**; the logging is what a real loop does. Two ways: stream JSON lines through `track log`, or write rows with `sqlite3` following `sql/schema.sql`."),
        ("code", SETUP),
        ("code", '''import random

def forward_pass(batch, k=4, sharpness=2.5):
    """A simulated forward pass over 8 questions: ids, gold labels and option logits.
    The questions of a batch are the same for every model (seeded by the batch)."""
    rng = random.Random(batch)
    ids = [f"q{batch * 8 + i}" for i in range(8)]
    truth = [[rng.gauss(0, 1.5) for _ in range(k)] for _ in ids]
    labels = [max(range(k), key=lambda c: row[c] + rng.gauss(0, 1.5)) for row in truth]
    logits = [[sharpness * v for v in row] for row in truth]   # an overconfident, "aligned" model
    return ids, labels, logits

db = pathlib.Path(tempfile.mkdtemp()) / "loop.sqlite"
log = subprocess.Popen([TRACK, "log", "--run", "sim-dpo", "--model", "sim", "--method", "DPO",
                        "--dataset", "toy", "--db", str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
for batch in range(50):                       # one JSON line per forward pass
    ids, labels, logits = forward_pass(batch)
    log.stdin.write(json.dumps({"ids": ids, "labels": labels, "logits": logits}) + "\\n")
    log.stdin.write(json.dumps({"metric": "eval/batch", "value": batch, "step": batch}) + "\\n")
log.stdin.close()
print(log.stdout.read().strip(), "| exit", log.wait())'''),
        ("code", 'print(track("metrics", "sim-dpo", "--metrics", "accuracy,mean_confidence,conf_ece,cw_ece,nll", db=db))'),
        ("markdown", "## Writing rows directly with `sqlite3`\n\nAny client can write the store: a run, its questions (shared by runs, keyed by dataset and id), and one `option_scores` row per option. `track init` creates the schema (or `sqlite3 db < sql/schema.sql`)."),
        ("code", '''import math, uuid

con = sqlite3.connect(db)
with con:
    con.execute("INSERT INTO runs(uuid, name, model, method, dataset, status) VALUES (?, 'sim-sft', 'sim', 'SFT', 'toy', 'finished')",
                (str(uuid.uuid4()),))
    run_id = con.execute("SELECT run_id FROM runs WHERE name = 'sim-sft'").fetchone()[0]
    for batch in range(50):
        ids, labels, logits = forward_pass(batch, sharpness=1.0)   # a calibrated model, same questions
        for qid, label, row in zip(ids, labels, logits):
            con.execute("INSERT OR IGNORE INTO questions(dataset, external_id, n_options, label) VALUES ('toy', ?, 4, ?)", (qid, label))
            question_id = con.execute("SELECT question_id FROM questions WHERE dataset = 'toy' AND external_id = ?", (qid,)).fetchone()[0]
            z = [math.exp(v - max(row)) for v in row]
            for option, (score, weight) in enumerate(zip(row, z)):
                con.execute("INSERT INTO option_scores VALUES (?, ?, ?, ?, ?)", (run_id, question_id, option, weight / sum(z), score))
print(track("runs", db=db))'''),
        ("code", 'print(track("compare", "sim-sft", "sim-dpo", "--metrics", "accuracy,conf_ece,cw_ece", db=db))'),
    ],
    "02_adhoc_sql.ipynb": [
        ("markdown", "# Ad-hoc SQL over the confidence tables\n\nThe views of `sql/views.sql` work from any SQLite client. These queries run on the demo database (**simulated** runs)."),
        ("code", SETUP + "\ncon = sqlite3.connect(DEMO)\n\ndef show(sql, *args):\n    cursor = con.execute(sql, args)\n    names = [d[0] for d in cursor.description]\n    rows = cursor.fetchall()\n    widths = [max(len(n), *(len(f'{v:.4f}' if isinstance(v, float) else str(v)) for v in col)) for n, col in zip(names, zip(*rows))] if rows else [len(n) for n in names]\n    fmt = lambda v: f'{v:.4f}' if isinstance(v, float) else str(v)\n    print('  '.join(n.ljust(w) for n, w in zip(names, widths)))\n    for row in rows:\n        print('  '.join(fmt(v).ljust(w) for v, w in zip(row, widths)))"),
        ("markdown", "## Worst subjects by ECE\n\nconf-ECE per MMLU subject of the aligned runs, with the binning rule of METHODS §1 `MIN(CAST(conf * 10 AS INTEGER), 9)`."),
        ("code", '''show("""
WITH binned AS (
    SELECT p.run_id, p.subject, MIN(CAST(p.conf * 10 AS INTEGER), 9) AS bin,
           COUNT(*) AS n, AVG(p.correct) AS acc, AVG(p.conf) AS conf
    FROM predictions p JOIN runs r USING (run_id)
    WHERE r.method = 'DPO' AND r.split = 'out-domain'
    GROUP BY p.run_id, p.subject, bin)
SELECT subject, SUM(n) AS n, SUM(n * ABS(acc - conf)) / SUM(n) AS conf_ece
FROM binned GROUP BY subject ORDER BY conf_ece DESC""")'''),
        ("markdown", "## The most overconfident wrong answers"),
        ("code", '''show("""
SELECT r.name AS run, p.external_id, p.subject, p.conf, p.pred, p.label
FROM predictions p JOIN runs r USING (run_id)
WHERE p.correct = 0 AND r.method = 'DPO'
ORDER BY p.conf DESC LIMIT 8""")'''),
        ("markdown", "## A per-bin table"),
        ("code", '''show("""
SELECT bin, n, accuracy, confidence, gap FROM reliability_bins
WHERE run_id = (SELECT run_id FROM runs WHERE name = 'Llama-3.1-8B-Tulu-sim/DPO/in-domain') ORDER BY bin""")'''),
        ("markdown", "## Two runs, question by question\n\nQuestions are shared by runs, so the SFT and DPO runs pair on `question_id`."),
        ("code", '''show("""
SELECT SUM(a.correct = 1 AND b.correct = 0) AS right_to_wrong,
       SUM(a.correct = 0 AND b.correct = 1) AS wrong_to_right,
       AVG(b.conf - a.conf) AS mean_delta_conf,
       AVG(ABS(b.conf - a.conf)) AS mean_abs_delta_conf
FROM predictions a JOIN predictions b ON b.question_id = a.question_id
WHERE a.run_id = (SELECT run_id FROM runs WHERE name = 'Llama-3.1-8B-Tulu-sim/SFT/out-domain')
  AND b.run_id = (SELECT run_id FROM runs WHERE name = 'Llama-3.1-8B-Tulu-sim/DPO/out-domain')""")'''),
        ("code", 'show("SELECT run, method, split, conf_ece, cw_ece, brier FROM run_calibration WHERE model = ? ORDER BY conf_ece DESC LIMIT 6", "Vicuna-7B-sim")'),
    ],
    "03_paper_tables_and_figures.ipynb": [
        ("markdown", "# Reproducing a paper table and figure set\n\nFrom the demo database (**simulated** runs): the shape of Table 2, a bin-count sweep (Table 5), and reliability diagrams (Figure 3)."),
        ("code", SETUP + "\nOUT = pathlib.Path(tempfile.mkdtemp())"),
        ("code", 'print(track("table", "--percent", "--out-dir", str(OUT), "--name", "table2"))\nprint((OUT / "table2.tex").read_text())'),
        ("code", 'print(track("table", "--method", "DPO", "--bins-sweep", "10,14", "--metrics", "conf_ece", "--columns", "split", "--format", "markdown", "--out", str(OUT / "table5.md")))'),
        ("code", '''from IPython.display import Image, display

llama = "Llama-3.1-8B-Tulu-sim"
runs = [f"{llama}/{m}/in-domain" for m in ["DPO", "TS", "CFT/e3", "RCFT/e3"]]
print(track("plot", "grid", *runs, "--out", str(OUT / "grid.png"), "--dpi", "90"))
display(Image(filename=str(OUT / "grid.png")))'''),
        ("code", 'print((OUT / "grid.png.csv").read_text().splitlines()[0])\nprint(len((OUT / "grid.png.csv").read_text().splitlines()) - 1, "bins drawn")'),
    ],
}


def cell(kind, source):
    base = {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True)}
    if kind == "code":
        base.update({"execution_count": None, "outputs": []})
    return base


for name, cells in NOTEBOOKS.items():
    notebook = {
        "cells": [cell(kind, source) for kind, source in cells],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    (HERE / name).write_text(json.dumps(notebook, indent=1) + "\n")
    print("wrote", name)
