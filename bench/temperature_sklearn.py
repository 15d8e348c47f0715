#!/usr/bin/env python3
"""The baseline for `make bench`'s calibration section: scikit-learn's temperature
scaling (CalibratedClassifierCV(method="temperature"), scikit-learn >= 1.8) fitted on
the same logits as `track calibrate temperature`, through a frozen estimator whose
decision function is the logits themselves. Times the fit only (median of repeats).

Usage: temperature_sklearn.py LOGITS.npy LABELS.npy [--repeat N]; prints JSON.
"""
import argparse
import json
import statistics
import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator


class Logits(ClassifierMixin, BaseEstimator):
    """A fitted "classifier" whose decision function is its input: the stored logits."""

    def __init__(self, classes):
        self.classes = classes

    def fit(self, X, y=None):
        self.classes_ = np.asarray(self.classes)
        return self

    def decision_function(self, X):
        return np.asarray(X)

    def predict(self, X):
        return self.classes_[np.argmax(X, axis=1)]

    def predict_proba(self, X):
        z = np.asarray(X) - np.max(X, axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("logits")
    parser.add_argument("labels")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logits, labels = np.load(args.logits), np.load(args.labels)
    estimator = FrozenEstimator(Logits(list(range(logits.shape[1]))).fit(logits, labels))
    times, model = [], None
    for _ in range(args.repeat):
        start = time.perf_counter()
        model = CalibratedClassifierCV(estimator, method="temperature").fit(logits, labels)
        times.append(time.perf_counter() - start)
    calibrator = model.calibrated_classifiers_[0].calibrators[0]
    beta = float(np.ravel(getattr(calibrator, "beta_", np.nan))[0])
    print(json.dumps({"seconds": statistics.median(times), "temperature": 1 / beta if beta == beta else None}))


if __name__ == "__main__":
    main()
