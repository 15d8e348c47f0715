#!/usr/bin/env python3
"""Reference values of the smooth ECE, the l2 calibration error, isotonic
regression and McNemar's exact test, computed by the libraries researchers use:
relplot 1.0.3, uncertainty-calibration 0.1.4, scikit-learn and scipy. Writes
Tests/TrackStoreTests/Fixtures/calibration-references.json (the cases' own
probabilities included), which CalibrationReferenceTests holds track to.
Run from the repository root (make references does, in its own venv):

    Tests/reference/.venv/bin/python Tests/reference/calibration_references.py
"""
import json
import pathlib

import numpy as np
import relplot
import calibration as uc
import scipy
import sklearn
from scipy.stats import binomtest
from sklearn.isotonic import IsotonicRegression

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "TrackStoreTests" / "Fixtures"


def load_csv(name):
    rows = [line.split(",") for line in (FIXTURES / name).read_text().splitlines()]
    header, rows = rows[0], rows[1:]
    cols = [i for i, h in enumerate(header) if h.startswith("p")]
    label = header.index("label")
    probs = np.array([[float(r[i]) for i in cols] for r in rows])
    return probs, np.array([int(r[label]) for r in rows])


def cases():
    rng = np.random.default_rng(20261123)
    out = {}
    out["synthetic-seed0-n1000"] = load_csv("synthetic-seed0-n1000.csv")
    out["bin-edges-n160"] = load_csv("bin-edges-n160.csv")
    out["k10-seed10-n500"] = load_csv("k10-seed10-n500.csv")
    logits = rng.normal(0, 2, size=(300, 2))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    out["k2-n300"] = (p, np.array([rng.choice(2, p=row) for row in p]))
    # Ties: probabilities on a coarse grid, many questions sharing each value.
    raw = rng.integers(1, 6, size=(200, 4)).astype(float)
    p = raw / raw.sum(1, keepdims=True)
    out["ties-n200"] = (p, rng.integers(0, 4, size=200))
    out["one-question"] = (np.array([[0.7, 0.2, 0.1]]), np.array([1]))
    # Every confidence equal (uniform rows), labels spread.
    out["all-equal-n50"] = (np.full((50, 4), 0.25), np.arange(50) % 4)
    return out


def references(probs, labels):
    k = probs.shape[1]
    conf = probs.max(1)
    correct = (probs.argmax(1) == labels).astype(float)
    result = {"probs": probs.tolist(), "labels": labels.tolist()}
    value, sigma = relplot.smECE(conf, correct, return_width=True)
    result["smece"] = float(value)
    result["smece_sigma"] = float(sigma)
    result["smece_at_0.05"] = float(relplot.smECE_sigma(conf, correct, 0.05))
    result["cw_smece"] = float(np.mean([relplot.smECE(probs[:, c], (labels == c).astype(float)) for c in range(k)]))
    for bins in (10, 15):
        result[f"l2_ece_{bins}"] = float(uc.lower_bound_scaling_ce(probs, labels, p=2, debias=False, num_bins=bins, mode="top-label"))
        result[f"debiased_l2_ece_{bins}"] = float(uc.lower_bound_scaling_ce(probs, labels, p=2, debias=True, num_bins=bins, mode="top-label"))
    # Isotonic regression per class, fitted and applied on the run's own probabilities.
    result["isotonic"] = [
        IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(probs[:, c], (labels == c).astype(float))
        .predict(probs[:, c]).tolist() for c in range(k)]
    return result


def main():
    out = {"versions": {"relplot": relplot.__version__ if hasattr(relplot, "__version__") else "1.0.3",
                        "uncertainty-calibration": "0.1.4", "scikit-learn": sklearn.__version__, "scipy": scipy.__version__,
                        "numpy": np.__version__},
           "cases": {name: references(*case) for name, case in cases().items()},
           "mcnemar": [{"b": b, "c": c, "p": float(binomtest(b, b + c, 0.5).pvalue)}
                       for b, c in [(1, 0), (0, 3), (5, 12), (30, 45), (100, 130), (7, 7), (400, 460), (2500, 2380)]]}
    path = FIXTURES / "calibration-references.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
