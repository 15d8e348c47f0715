#!/usr/bin/env python3
"""Reference values of the pooled ECE, computed independently with numpy.

Every question x option is one binary prediction (p_ik against [y_i = k]);
equal-width bins bin(p) = min(floor(p * B), B - 1); ECE = sum over bins of
(n_m / (N K)) |freq_m - meanp_m|. Writes the K = 10 fixture (seeded) and
Tests/TrackStoreTests/Fixtures/pooled-ece-numpy.json, which PooledECETests
holds track's analyzer to (1e-12). Run from the repository root:

    bench/.venv/bin/python Tests/reference/pooled_ece_numpy.py
"""
import json
import pathlib
import random

import numpy as np

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "TrackStoreTests" / "Fixtures"


def write_k10(path, n=500, k=10, seed=10):
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write(",".join(f"p{j}" for j in range(k)) + ",label\n")
        for _ in range(n):
            w = [rng.random() ** 3 for _ in range(k)]
            s = sum(w)
            p = [x / s for x in w]
            f.write(",".join(repr(x) for x in p) + f",{rng.randrange(k)}\n")


def load(path):
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    return data[:, :-1], data[:, -1].astype(int)


def pooled_ece(p, y, bins):
    n, k = p.shape
    hits = np.zeros_like(p)
    hits[np.arange(n), y] = 1.0
    values, outcomes = p.ravel(), hits.ravel()
    index = np.minimum(np.floor(values * bins).astype(int), bins - 1)
    ece = 0.0
    for m in range(bins):
        mask = index == m
        count = mask.sum()
        if count:
            ece += count / values.size * abs(outcomes[mask].mean() - values[mask].mean())
    return ece


def main():
    k10 = FIXTURES / "k10-seed10-n500.csv"
    write_k10(k10)
    reference = {}
    for name in ["synthetic-seed0-n1000.csv", k10.name]:
        p, y = load(FIXTURES / name)
        reference[name] = {str(b): pooled_ece(p, y, b) for b in (10, 15)}
    (FIXTURES / "pooled-ece-numpy.json").write_text(json.dumps(reference, indent=2) + "\n")
    print(json.dumps(reference, indent=2))


if __name__ == "__main__":
    main()
