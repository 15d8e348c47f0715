"""The baselines of bench.py's science section, on the same data track-bench wrote:
relplot 1.0.3's smECE (with its bandwidth search) and its smooth diagram's kernel
regression on the 200-point mesh, and scikit-learn's isotonic fit of one class.
Prints seconds (median of 3) and the values, as JSON."""
import json
import statistics
import sys
import time

import numpy as np
import relplot
from relplot.kernels import ReflectedGaussianKernel
from sklearn.isotonic import IsotonicRegression

directory = sys.argv[1]
f = np.load(f"{directory}/conf.npy").reshape(-1)
y = np.load(f"{directory}/correct.npy").reshape(-1)
p0 = np.load(f"{directory}/p0.npy").reshape(-1)
y0 = np.load(f"{directory}/y0.npy").reshape(-1)


def median_time(body):
    times = []
    for _ in range(3):
        start = time.perf_counter()
        result = body()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


smece_seconds, (value, sigma) = median_time(lambda: relplot.smECE(f, y, return_width=True))
t = np.linspace(0, 1, 200)
curve_seconds, _ = median_time(lambda: ReflectedGaussianKernel(sigma).smooth(f, y, t))
iso_seconds, iso = median_time(lambda: IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(p0, y0))
print(json.dumps({"smece": float(value), "sigma": float(sigma), "smece_seconds": smece_seconds, "curve_seconds": curve_seconds,
                  "isotonic_seconds": iso_seconds, "isotonic_at_half": float(iso.predict([0.5])[0])}))
