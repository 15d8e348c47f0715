#!/usr/bin/env python3
"""The baseline for `make bench`: every metric of `track metrics`, computed by a
plain Python + numpy script from the same SQLite file (SPEC §2-3 rules:
bin(p) = min(floor(p*B), B-1); equal-mass bins by stable rank, floor(j*B/N)).

Usage: metrics_numpy.py DB RUN [--bins 10] [--epsilon 0.01]; prints JSON with
the metrics and the seconds it took (reading included).
"""
import argparse
import json
import sqlite3
import time

import numpy as np


def load(db, run):
    con = sqlite3.connect(db)
    run_id = con.execute("SELECT run_id FROM runs WHERE name = ?", (run,)).fetchone()[0]
    # Two queries, as track reads them: the option rows in key order, and the
    # labels of the run's questions (no per-row join). Assumes one K per run.
    rows = con.execute(
        "SELECT prob, score FROM option_scores WHERE run_id = ? ORDER BY question_id, option", (run_id,)).fetchall()
    labels, k = zip(*con.execute(
        "SELECT label, n_options FROM questions WHERE question_id IN "
        "(SELECT question_id FROM option_scores WHERE run_id = ? AND option = 0) ORDER BY question_id",
        (run_id,)).fetchall())
    k = k[0]
    prob = np.fromiter((r[0] for r in rows), dtype=np.float64, count=len(rows))
    scored = all(r[1] is not None for r in rows)
    score = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows)) if scored else None
    n = len(rows) // k
    labels = np.asarray(labels, dtype=np.int64)
    return prob.reshape(n, k), (score.reshape(n, k) if scored else None), labels


def binned_gap_sum(values, hits, bins, weighted, n_total):
    """Sum over equal-width bins of (n_m/N)|acc - conf| (weighted) plus the max gap and squared sum."""
    b = np.minimum(np.floor(values * bins).astype(np.int64), bins - 1)
    count = np.bincount(b, minlength=bins).astype(np.float64)
    s_v = np.bincount(b, weights=values, minlength=bins)
    s_y = np.bincount(b, weights=hits, minlength=bins)
    nz = count > 0
    gap = np.abs(s_y[nz] / count[nz] - s_v[nz] / count[nz])
    return float(np.sum(count[nz] / n_total * gap)), float(gap.max()), float(np.sum(count[nz] / n_total * gap * gap))


def equal_mass(values, hits, bins, weighted):
    n = len(values)
    if n == 0:
        return 0.0
    order = np.argsort(values, kind="stable")
    v, y = values[order], hits[order]
    b = (np.arange(n) * bins) // n
    count = np.bincount(b, minlength=bins).astype(np.float64)
    s_v = np.bincount(b, weights=v, minlength=bins)
    s_y = np.bincount(b, weights=y, minlength=bins)
    nz = count > 0
    gap = np.abs(s_y[nz] / count[nz] - s_v[nz] / count[nz])
    return float(np.sum(count[nz] / n * gap)) if weighted else float(np.sum(gap))


def metrics(p, s, y, bins, eps):
    n, k = p.shape
    pred = np.argmax(p, axis=1)          # ties: the first (lowest) index
    conf = p[np.arange(n), pred]
    correct = (pred == y).astype(np.float64)
    onehot = np.zeros_like(p)
    onehot[np.arange(n), y] = 1.0
    ece, mce, sq = binned_gap_sum(conf, correct, bins, True, n)
    cw = sum(binned_gap_sum(p[:, c], onehot[:, c], bins, True, n)[0] for c in range(k)) / k
    ace = sum(equal_mass(p[:, c], onehot[:, c], bins, False) for c in range(k)) / (k * bins)
    tace = 0.0
    for c in range(k):
        keep = p[:, c] > eps
        tace += equal_mass(p[keep, c], onehot[keep, c], bins, False)
    tace /= k * bins
    if s is not None:
        m = s.max(axis=1, keepdims=True)
        logsm = s - m - np.log(np.exp(s - m).sum(axis=1, keepdims=True))
        nll = float(-logsm[np.arange(n), y].mean())
    else:
        nll = float(-np.log(np.maximum(p[np.arange(n), y], 1e-15)).mean())
    return {
        "accuracy": float(correct.mean()), "mean_confidence": float(conf.mean()),
        "overconfidence": float(conf.mean() - correct.mean()), "conf_ece": ece, "mce": mce,
        "rmsce": float(np.sqrt(sq)), "cw_ece": float(cw), "eq_mass_ece": equal_mass(conf, correct, bins, True),
        "ace": float(ace), "tace": float(tace), "brier": float(((p - onehot) ** 2).sum(axis=1).mean()), "nll": nll,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("run")
    parser.add_argument("--bins", type=int, default=10)
    parser.add_argument("--epsilon", type=float, default=0.01)
    args = parser.parse_args()
    start = time.perf_counter()
    p, s, y = load(args.db, args.run)
    result = metrics(p, s, y, args.bins, args.epsilon)
    result["seconds"] = time.perf_counter() - start
    print(json.dumps(result))


if __name__ == "__main__":
    main()
