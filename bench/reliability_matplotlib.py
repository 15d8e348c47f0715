#!/usr/bin/env python3
"""The baseline for `make bench`'s figure section: matplotlib drawing the same
reliability diagram as `track plot reliability` (bars shaded by share, gap to
the mean confidence, diagonal, title with ECE and n, count strip), from the
bins CSV that track wrote, at the same size (260 x 300 pt) and 200 dpi.

Usage: reliability_matplotlib.py BINS.csv OUT.png [--repeat N]; prints JSON
with the median seconds of figure construction + savefig (imports excluded).
"""
import argparse
import csv
import json
import statistics
import time

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def draw(bins, out):
    n = sum(b["n"] for b in bins)
    ece = sum(abs(b["gap"]) * b["n"] for b in bins if b["n"]) / max(n, 1)
    top = max(b["n"] for b in bins) or 1
    fig, (ax, strip) = plt.subplots(2, 1, figsize=(260 / 72, 300 / 72), gridspec_kw={"height_ratios": [4, 1]})
    for b in bins:
        if not b["n"]:
            continue
        width = b["upper"] - b["lower"]
        shade = 0.2 + 0.8 * b["n"] / top
        ax.bar(b["lower"], b["accuracy"], width=width, align="edge", color=(1 - shade * 0.88, 1 - shade * 0.53, 1 - shade * 0.29),
               edgecolor="#1f77b4", linewidth=0.6)
        low, high = sorted((b["accuracy"], b["confidence"]))
        ax.bar(b["lower"], high - low, bottom=low, width=width, align="edge", color=(0.84, 0.15, 0.16, 0.3),
               edgecolor=(0.84, 0.15, 0.16), linewidth=0.6)
        strip.bar(b["lower"], b["n"], width=width, align="edge", color="0.55")
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.35", linewidth=1.2)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("Accuracy")
    ax.set_title(f"reliability\nECE = {ece:.4f}   n = {n}", fontsize=9)
    ax.grid(color="0.88", linewidth=0.5)
    strip.set_xlim(0, 1)
    strip.set_xlabel("Confidence")
    strip.set_ylabel("count")
    fig.savefig(out, dpi=200)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bins")
    parser.add_argument("out")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with open(args.bins) as f:
        bins = [{"lower": float(r["lower"]), "upper": float(r["upper"]), "n": int(r["n"]),
                 "accuracy": float(r["accuracy"] or 0), "confidence": float(r["confidence"] or 0),
                 "gap": float(r["gap"] or 0)} for r in csv.DictReader(f)]
    draw(bins, args.out)  # warm-up: font cache, first-figure setup
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        draw(bins, args.out)
        times.append(time.perf_counter() - start)
    print(json.dumps({"seconds": statistics.median(times)}))


if __name__ == "__main__":
    main()
