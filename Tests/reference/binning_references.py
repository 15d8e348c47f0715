#!/usr/bin/env python3
"""Independent reference values (numpy, scipy) for what track computed differently from SPEC's
first rule: equal-mass bins that keep a tie group whole (eq-mass ECE, ACE, TACE, METHODS §2),
ACE averaged over each class's non-empty bins, and McNemar's exact p in log space where p
underflows. Reads the cases of calibration-references.json, adds the 20-row tie case of the
intervals issue (in file order and shuffled), writes binning-references.json beside it.

    python3 Tests/reference/binning_references.py      (numpy and scipy; make references runs it)
"""
import json
import math
import pathlib

import numpy as np
from scipy.special import logsumexp
from scipy.stats import binom

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "TrackStoreTests" / "Fixtures"


def equal_mass_gaps(values, hits, bins):
    """Per non-empty bin (count, |mean hit - mean value|): a tie group goes whole to the bin of
    its first rank j, floor(j * B / N), found with np.unique rather than by walking."""
    order = np.argsort(values, kind="stable")
    v, y = values[order], hits[order]
    n = len(v)
    if n == 0:
        return []
    _, first, inverse = np.unique(v, return_index=True, return_inverse=True)
    bin_of = (first[inverse] * bins) // n
    out = []
    for b in np.unique(bin_of):
        mask = bin_of == b
        out.append((mask.sum(), abs(y[mask].mean() - v[mask].mean())))
    return out


def metrics(probs, labels, bins, epsilon=0.01):
    n, k = probs.shape
    top = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    correct = (top == labels).astype(float)
    eq = sum(c / n * g for c, g in equal_mass_gaps(conf, correct, bins))
    ace, tace = [], []
    for c in range(k):
        values, hits = probs[:, c], (labels == c).astype(float)
        gaps = equal_mass_gaps(values, hits, bins)
        ace.append(np.mean([g for _, g in gaps]))
        kept = values > epsilon
        gaps = equal_mass_gaps(values[kept], hits[kept], bins)
        tace.append(np.mean([g for _, g in gaps]) if gaps else 0.0)
    return {"eq_mass_ece": float(eq), "ace": float(np.mean(ace)), "tace": float(np.mean(tace))}


def main():
    source = json.loads((FIXTURES / "calibration-references.json").read_text())
    cases = {name: (np.array(c["probs"]), np.array(c["labels"])) for name, c in source["cases"].items()}
    rows = np.array([[0.7, 0.1, 0.1, 0.1]] * 20)
    labels = np.array([0] * 13 + [1] * 7)
    cases["ties-issue-n20"] = (rows, labels)
    shuffle = np.random.default_rng(5).permutation(20)
    cases["ties-issue-n20-shuffled"] = (rows[shuffle], labels[shuffle])
    out = {"cases": {}}
    for name, (probs, labels) in sorted(cases.items()):
        out["cases"][name] = {"probs": probs.tolist(), "labels": labels.tolist(),
                              "bins10": metrics(probs, labels, 10), "bins15": metrics(probs, labels, 15)}
    # McNemar's exact two-sided p = min(1, 2 P(X <= min(b, c))), X ~ Bin(b + c, 1/2), as log10.
    # log P(X <= k) as the log-sum-exp of scipy's log pmf (its logcdf underflows to -inf here).
    def log_cdf(k, n):
        return float(logsumexp(binom.logpmf(np.arange(k + 1), n, 0.5)))
    out["mcnemar_log10"] = [{"b": b, "c": c, "log10_p": min(0.0, (math.log(2) + log_cdf(min(b, c), b + c)) / math.log(10))}
                            for b, c in [(0, 14042), (3, 2000), (120, 480), (1, 1100), (40, 60), (5, 5000)]]
    path = FIXTURES / "binning-references.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
