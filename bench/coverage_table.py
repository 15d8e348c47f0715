"""Turns `track-bench coverage` JSON lines into the coverage tables of README and METHODS §3.

    python3 bench/coverage_table.py coverage.jsonl

One row per scenario: the true conf-ECE, then per binned error the share of 95% intervals that
contain the true value (and, in brackets, the share lying entirely above it), accuracy's
percentile interval, and the calibration test's rejection rate (statistic conf-ECE).
"""
import json
import sys

KEYS = ["conf_ece", "cw_ece", "pooled_ece", "eq_mass_ece", "ace", "tace", "rmsce", "mce"]


def table(lines):
    rows = [json.loads(line) for line in lines if line.strip()]
    head = ["curve", "conf", "K", "n", "true conf_ece"] + KEYS + ["accuracy", "test rejects"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for d in rows:
        cells = [d["curve"], d["shape"], str(int(d["k"])), f"{int(d['n']):,}", f"{d['conf_ece']['truth']:.3f}"]
        cells += [f"{100 * d[k]['covered']:.0f}%" + (f" ({100 * d[k]['above']:.0f}%)" if d[k]["above"] > 0 else "") for k in KEYS]
        cells += [f"{100 * d['accuracy_covered']:.0f}%", f"{100 * d['rejected_conf_ece']:.0f}%"]
        out.append("| " + " | ".join(cells) + " |")
    reps = {int(d["replicates"]) for d in rows}
    out.append("")
    out.append(f"{'/'.join(map(str, sorted(reps)))} replicate runs per row; 95% intervals from 1,000 resamples; in brackets: "
               "intervals entirely above the truth. 'test rejects': the calibration test at 0.05 (its size on calibrated rows, its power elsewhere).")
    return "\n".join(out)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(table(f.readlines()))
