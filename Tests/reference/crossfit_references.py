"""Reference temperatures of cross-fitted temperature scaling (`track calibrate temperature
--folds K --seed S`), computed independently with scipy: each fold's T minimises the NLL of
softmax(log p / T) over the questions of the *other* folds.

The folds are track's (METHODS §8): every question is keyed by FNV-1a (64-bit) of
"<dataset>\\x1f<id>" started from the offset basis XOR the seed and mixed by MurmurHash3's
64-bit finaliser; questions sorted by key,
the question of rank r is in fold r * K // n. Here the dataset is the fixture's file stem
and the ids its row numbers, as `track ingest` stores a CSV without an id column.

Usage: python3 Tests/reference/crossfit_references.py   (numpy, scipy)
Writes Tests/TrackStoreTests/Fixtures/crossfit-references.json.
"""
import json
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "TrackStoreTests" / "Fixtures"
MASK = (1 << 64) - 1


def fnv1a(seed, text):
    h = 0xCBF29CE484222325 ^ seed
    for byte in text.encode("utf-8"):
        h ^= byte
        h = (h * 0x100000001B3) & MASK
    # MurmurHash3's 64-bit finaliser.
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK
    h ^= h >> 33
    return h


def folds_of(dataset, ids, k, seed):
    keys = [fnv1a(seed, f"{dataset}\x1f{i}") for i in ids]
    order = sorted(range(len(ids)), key=lambda i: keys[i])
    folds = [0] * len(ids)
    for rank, i in enumerate(order):
        folds[i] = rank * k // len(ids)
    return folds


def fit_temperature(scores, labels):
    def nll(log_t):
        return -log_softmax(scores / np.exp(log_t), axis=1)[np.arange(len(labels)), labels].mean()
    result = minimize_scalar(nll, bounds=(-6, 6), method="bounded", options={"xatol": 1e-12})
    return float(np.exp(result.x))


def main():
    name = "synthetic-seed0-n1000"
    data = np.loadtxt(FIXTURES / f"{name}.csv", delimiter=",", skiprows=1)
    probs, labels = data[:, :4], data[:, 4].astype(int)
    scores = np.log(np.maximum(probs, np.finfo(float).tiny))
    cases = []
    for k, seed in [(5, 0), (3, 7)]:
        folds = np.array(folds_of(name, [str(i) for i in range(len(labels))], k, seed))
        temperatures = [fit_temperature(scores[folds != f], labels[folds != f]) for f in range(k)]
        # The cross-fitted NLL: every question scored with the T of the fit that did not see it.
        t = np.array(temperatures)[folds]
        nll = float(-log_softmax(scores / t[:, None], axis=1)[np.arange(len(labels)), labels].mean())
        cases.append({"file": f"{name}.csv", "dataset": name, "folds": k, "seed": seed,
                      "fold_sizes": [int((folds == f).sum()) for f in range(k)],
                      "first_ids_by_fold": [[int(i) for i in np.flatnonzero(folds == f)[:5]] for f in range(k)],
                      "temperatures": temperatures, "nll_after": nll})
    out = FIXTURES / "crossfit-references.json"
    out.write_text(json.dumps({"generator": "Tests/reference/crossfit_references.py (scipy minimize_scalar, bounded, on log T)",
                               "cases": cases}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
