#!/usr/bin/env python3
"""track benchmarks: `make bench`.

Prints figures, each beside a baseline run in the same script on the same data.
Timing thresholds never live in tests; this program is where speed is measured.

Section 2 - metrics: every metric of `track metrics` for a run of 1,000,000
questions x 4 options read from the store, beside a bare SELECT scan of the same
rows (same process, bench executable track-bench) and beside a plain
Python + numpy script computing the same metrics from the same SQLite file
(in its own venv, bench/.venv). The values are compared too.

Section 3 - figures: rendering one reliability diagram PNG (same bins, size and
dpi) in track, beside matplotlib drawing the same diagram (bench/.venv), both timed
in-process over repeated renders (median), imports and start-up excluded.

Section 4 - calibration: temperature scaling fitted on 1,000,000 x 4 logits by
track and by scikit-learn (>= 1.8, bench/.venv) on the same data; and matrix scaling (K x K weights + bias, L-BFGS) on 100,000
questions x 10 options, fitted with OpenBLAS and with plain loops in the same
process, same iterations.

Section 5 - scale: a store of 1,000 runs x 14,042 questions x 4 options over one
question set (as MMLU is used): 10 runs ingested by track, each copied 100 times
with its rows and summaries (track-bench replicate). Listing, filtering, the
views through the sqlite3 CLI and `track table` are timed beside one run's
`track metrics` in the same script. The metrics section also times 1,000
bootstrap resamples of every metric beside the point estimate of the same run.

Section 6 - science: smECE (with relplot's bandwidth search) and the smooth
reliability curve on 1,000,000 questions beside relplot 1.0.3, an isotonic fit
beside scikit-learn (bench/.venv), and a 1,000-resample paired comparison as a
ratio to one point estimate of every metric.

The scale section also writes `track report` over the 1,000 runs and times headless Chromium
(Tests/report/.venv, from `make report`) opening it and sorting its runs table once.

Section 9 - report: `track report` of the 54-run demo with its defaults (50 runs in detail,
1,000 resamples, up to 100 compared pairs): the time to write it, its size against the budget
(54 runs under 5 MB; the scale section's 1,000 runs under 20 MB), and headless Chromium's
time to open it and sort its runs table.

Section 8 - PostgreSQL at scale: the 1,000-run store pushed to a server; runs, show, metrics and
table on it beside SQLite and a bare SELECT; the peak memory of a PostgreSQL command with 10 runs
on the server and with 1,000 runs plus EM targets.

Section 7 - PostgreSQL: `track push` of a 1,000,000 x 4 run into a scratch PostgreSQL server
beside psql's \\copy of the same rows into a plain table, and `track metrics` of that run from
PostgreSQL beside the same from SQLite and beside a bare SELECT of its rows through libpq.

Section 1 - ingest: 1,000,000 questions x 4 options from CSV and from JSON lines
through `track ingest` (which validates every row), and streamed through
`track log` in forward-pass batches of 32, beside the sqlite3 CLI's `.import`
of the same CSV into a plain table (no validation, no index).
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")


def generate(n, k, seed=0):
    """Seeded probability rows, written once as CSV and as JSON lines."""
    csv_path = os.path.join(OUT, f"ingest-{n}x{k}.csv")
    jsonl_path = os.path.join(OUT, f"ingest-{n}x{k}.jsonl")
    if os.path.exists(csv_path) and os.path.exists(jsonl_path):
        return csv_path, jsonl_path
    rng = random.Random(seed)
    with open(csv_path + ".tmp", "w") as c, open(jsonl_path + ".tmp", "w") as j:
        c.write("id," + ",".join(f"p{i}" for i in range(k)) + ",label\n")
        for q in range(n):
            w = [rng.random() + 1e-3 for _ in range(k)]
            s = sum(w)
            p = [repr(x / s) for x in w]
            y = rng.randrange(k)
            c.write(f"q{q},{','.join(p)},{y}\n")
            j.write(f'{{"id": "q{q}", "label": {y}, "probs": [{", ".join(p)}]}}\n')
    os.replace(csv_path + ".tmp", csv_path)
    os.replace(jsonl_path + ".tmp", jsonl_path)
    return csv_path, jsonl_path


def batched(jsonl_path, size=32):
    """The same questions as forward-pass batch lines for `track log`."""
    path = jsonl_path.replace(".jsonl", f"-batches{size}.jsonl")
    if os.path.exists(path):
        return path
    with open(jsonl_path) as source, open(path + ".tmp", "w") as out:
        batch = []
        for line in source:
            batch.append(line.strip())
            if len(batch) == size:
                out.write('{"batch": [' + ", ".join(batch) + "]}\n")
                batch = []
        if batch:
            out.write('{"batch": [' + ", ".join(batch) + "]}\n")
    os.replace(path + ".tmp", path)
    return path


def timed_stream(command, db, input_path):
    remove_db(db)
    with open(input_path, "rb") as stdin:
        start = time.perf_counter()
        subprocess.run(command, check=True, stdin=stdin, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def remove_db(path):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


def timed(command, db):
    remove_db(db)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def median_time_keep(command, repeat, stdin=None):
    """Median wall time of a command run against an existing database."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stdin=stdin)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build_scale_store(track, track_bench, db, runs=1000, questions=14_042, k=4):
    """A store of `runs` runs x `questions` questions x `k` options over one question set: 10 runs
    ingested from CSV, copied (`track-bench replicate`) to `runs`. Returns the seconds it took."""
    remove_db(db)
    base = 10
    start = time.perf_counter()
    for r in range(base):
        path = os.path.join(OUT, f"scale-{r}.csv")
        if not os.path.exists(path):
            rng = random.Random(100 + r)
            with open(path, "w") as f:
                f.write("id,subject," + ",".join(f"p{i}" for i in range(k)) + ",label\n")
                for q in range(questions):
                    w = [rng.random() ** 3 + 1e-3 for _ in range(k)]
                    s = sum(w)
                    f.write(f"q{q},s{q % 57}," + ",".join(repr(x / s) for x in w) + f",{(q * 7) % k}\n")
        subprocess.run([track, "ingest", path, "--db", db, "--dataset", "mmlu", "--run", f"seed{r}"],
                       check=True, stdout=subprocess.DEVNULL)
    subprocess.run([track_bench, "replicate", "--db", db, "--copies", str(runs // base)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def scale_section(track, track_bench, repeat, runs=1000, questions=14_042, k=4):
    db = os.path.join(OUT, "scale.sqlite")
    base = 10   # runs ingested by build_scale_store, the rest copies
    build = build_scale_store(track, track_bench, db, runs, questions, k)
    size = sum(os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s))
    sqlite3 = shutil.which("sqlite3")
    owned = float(subprocess.run([sqlite3, db, "SELECT sum(pgsize) FROM dbstat WHERE name IN "
                                  "('option_scores', '_track_top_labels', '_track_run_stats', '_track_run_bins')"],
                                 check=True, capture_output=True, text=True).stdout)
    one = median_time_keep([track, "metrics", "r0005", "--db", db], repeat)
    rows = [
        ("track metrics r0005 (one run, reference)", one),
        ("track runs (all runs)", median_time_keep([track, "runs", "--db", db], repeat)),
        ("track runs --method M1", median_time_keep([track, "runs", "--db", db, "--method", "M1"], repeat)),
    ]
    for label, sql in [("run_calibration WHERE run = ?", "SELECT * FROM run_calibration WHERE run = 'r0005'"),
                       ("predictions WHERE run = ? LIMIT 10", "SELECT * FROM predictions WHERE run = 'r0005' LIMIT 10"),
                       ("run_summary WHERE run = ?", "SELECT * FROM run_summary WHERE run = 'r0005'"),
                       ("subject_calibration WHERE run = ?", "SELECT * FROM subject_calibration WHERE run = 'r0005'"),
                       ("run_calibration (all runs)", "SELECT * FROM run_calibration")]:
        rows.append((f"sqlite3: {label}", median_time_keep([sqlite3, db, sql], repeat)))
    rows.append(("track table (all runs)", median_time_keep([track, "table", "--db", db, "--out-dir", os.path.join(OUT, "scale-tables")], repeat)))
    report = os.path.join(OUT, "scale-report.html")
    rows.append(("track report (all runs, 50 in detail)", median_time_keep([track, "report", "--db", db, "--out", report], 1)))
    print(f"\n== scale: {runs:,} runs x {questions:,} questions x {k} options, one question set (median of {repeat}) ==")
    print(f"store built in {build:.1f} s ({base} runs ingested, copied to {runs}); {size / 1e6:,.0f} MB, "
          f"{size / (runs * questions):.1f} bytes per question per run in the file;\n"
          f"{owned / (runs * questions):.1f} of them in the run's own rows and summaries "
          f"(option_scores, _track_top_labels, _track_run_stats, _track_run_bins; dbstat), the rest shared (questions) or free")
    print(f"{'':46} {'seconds':>8} {'x one run':>10}")
    for label, t in rows:
        print(f"{label:46} {t:8.3f} {t / one:10.2f}")
    print(f"the report of {runs:,} runs: {os.path.getsize(report) / 1e6:.1f} MB (budget: under 20 MB)")
    opened = open_in_browser(report)
    if opened is not None:
        print(f"it opens in headless Chromium in {opened:.2f} s (file load to the runs table sorted once by a click)")
    remove_db(db)


def report_section(track, repeat):
    db, out = os.path.join(OUT, "report-demo.sqlite"), os.path.join(OUT, "report-demo.html")
    subprocess.run([track, "demo", "--db", db, "--out", os.path.join(OUT, "report-demo-exports")], check=True, stdout=subprocess.DEVNULL)
    seconds = median_time_keep([track, "report", "--db", db, "--out", out], repeat)
    size = os.path.getsize(out)
    print(f"\n== report: the 54-run demo (50 in detail, 1,000 resamples, up to 100 compared pairs; median of {repeat}) ==")
    print(f"written in {seconds:.2f} s; {size / 1e6:.2f} MB (budget: under 5 MB)")
    opened = open_in_browser(out)
    if opened is not None:
        print(f"opens in headless Chromium in {opened:.2f} s (file load to the runs table sorted once by a click)")


def open_in_browser(path):
    """Seconds for headless Chromium to load the report and sort its runs table once (None without a browser)."""
    python = os.path.join(HERE, "..", "Tests", "report", ".venv", "bin", "python")
    if not (os.path.exists(python) and os.path.exists("/usr/bin/chromedriver")):
        print("(no Chromium/Selenium: `make report` installs them; the report's opening time is not measured)")
        return None
    script = (
        "import sys, time\n"
        "from selenium import webdriver\n"
        "from selenium.webdriver.chrome.service import Service\n"
        "from selenium.webdriver.common.by import By\n"
        "o = webdriver.ChromeOptions()\n"
        "[o.add_argument(f) for f in ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage']]\n"
        "d = webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=o)\n"
        "start = time.perf_counter()\n"
        "d.get('file://' + sys.argv[1])\n"
        "[h for h in d.find_elements(By.CSS_SELECTOR, '#runs thead th') if h.text == 'conf_ece'][0].click()\n"
        "print(time.perf_counter() - start)\n"
        "d.quit()\n")
    result = subprocess.run([python, "-c", script, os.path.abspath(path)], capture_output=True, text=True)
    return float(result.stdout.strip()) if result.returncode == 0 else None


def median_time(command, db, repeat):
    return statistics.median(timed(command, db) for _ in range(repeat))


def ingest_section(track, n, k, repeat):
    csv_path, jsonl_path = generate(n, k)
    db = os.path.join(OUT, "bench.sqlite")
    rows = n * k
    results = []
    t = median_time([track, "ingest", csv_path, "--db", db], db, repeat)
    size = os.path.getsize(db)
    results.append(("track ingest CSV (validated)", t, n / t, rows / t))
    t = median_time([track, "ingest", jsonl_path, "--db", db], db, repeat)
    results.append(("track ingest JSONL (validated)", t, n / t, rows / t))
    stream = batched(jsonl_path)
    t = statistics.median(timed_stream([track, "log", "--run", "bench", "--db", db], db, stream) for _ in range(repeat))
    results.append(("track log, stdin, 32 per forward pass", t, n / t, rows / t))
    sqlite3 = shutil.which("sqlite3")
    cli = None
    if sqlite3:
        t = median_time([sqlite3, db, ".import --csv " + csv_path + " t"], db, repeat)
        cli = n / t
        results.append(("sqlite3 CLI .import CSV (baseline)", t, n / t, n / t))
    remove_db(db)
    print(f"\n== ingest: {n:,} questions x {k} options (median of {repeat}) ==")
    print(f"{'':38} {'seconds':>8} {'questions/s':>13} {'rows/s':>12}")
    for name, t, qps, rps in results:
        print(f"{name:38} {t:8.2f} {qps:13,.0f} {rps:12,.0f}")
    print("rows: track stores one row per question x option (plus one row per new question);")
    print("      the CLI stores one row per CSV line.")
    print(f"track log rows/s / track ingest JSONL rows/s (the same rows, 32 per line): "
          f"{results[2][3] / results[1][3]:.2f}x (aim >= 0.9x)")
    if cli:
        print(f"track CSV rows/s / CLI rows/s: {results[0][3] / cli:.2f}x   "
              f"JSONL: {results[1][3] / cli:.2f}x")
    print(f"store size: {size / n:.1f} bytes per question ({k} options, probabilities only)")
    ingest_memory(track, n, k)


def ingest_memory(track, n, k):
    """Peak memory of `track ingest` for a file of n and of 4n questions (CSV, JSONL and .npy)."""
    db = os.path.join(OUT, "memory.sqlite")
    rows, metrics_rows = [], []
    for size in (n, 4 * n):
        csv_path, jsonl_path = generate(size, k)
        npy_path, labels_path = generate_npy(size, k)
        for name, command in [("CSV", [csv_path]), ("JSONL", [jsonl_path]), (".npy", [npy_path, "--labels", labels_path])]:
            remove_db(db)
            seconds, rss = max_rss_mb([track, "ingest", *command, "--db", db, "--run", "memory"])
            rows.append((name, size, seconds, rss))
            if name == "CSV":
                # The same run read back: every metric of `track metrics` (point estimate).
                metrics_rows.append((size, *max_rss_mb([track, "metrics", "memory", "--db", db])))
    remove_db(db)
    print(f"\npeak memory of track ingest (getrusage of the child):")
    print(f"{'format':8} {'questions':>11} {'seconds':>8} {'peak MB':>8}")
    for name, size, seconds, rss in rows:
        print(f"{name:8} {size:11,} {seconds:8.2f} {rss:8.0f}")
    for name in ("CSV", "JSONL", ".npy"):
        small, large = [r[3] for r in rows if r[0] == name]
        print(f"{name}: {4 * n:,} questions / {n:,} questions: {large / small:.2f}x peak memory (aim: within 1.25x)")
    print(f"\npeak memory of track metrics (every metric of the run, point estimate; getrusage of the child):")
    print(f"{'questions':>11} {'seconds':>8} {'peak MB':>8} {'bytes/question':>15}")
    for size, seconds, rss in metrics_rows:
        print(f"{size:11,} {seconds:8.2f} {rss:8.0f} {rss * 1048576 / size:15.0f}")
    print(f"aim: {4 * n:,} x {k} within 400 MB")


def generate_npy(n, k, seed=1):
    """The same kind of rows as a float64 .npy of n x k and its int64 labels .npy (written without numpy)."""
    import struct
    probs, labels = os.path.join(OUT, f"ingest-{n}x{k}.npy"), os.path.join(OUT, f"ingest-{n}x{k}-labels.npy")
    if os.path.exists(probs) and os.path.exists(labels):
        return probs, labels

    def write(path, shape, descr, pack, values):
        header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
        header += " " * (63 - (10 + len(header)) % 64) + "\n"
        with open(path + ".tmp", "wb") as f:
            f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
            chunk = []
            for v in values:
                chunk.append(v)
                if len(chunk) == 65536:
                    f.write(struct.pack(f"<{len(chunk)}{pack}", *chunk))
                    chunk = []
            f.write(struct.pack(f"<{len(chunk)}{pack}", *chunk))
        os.replace(path + ".tmp", path)

    rng = random.Random(seed)

    def rows():
        for _ in range(n):
            w = [rng.random() + 1e-3 for _ in range(k)]
            s = sum(w)
            yield from (x / s for x in w)
    write(probs, f"({n}, {k})", "<f8", "d", rows())
    write(labels, f"({n},)", "<i8", "q", (rng.randrange(k) for _ in range(n)))
    return probs, labels


def venv_python():
    """bench/.venv with numpy (and, for later sections, what they need)."""
    venv = os.path.join(HERE, ".venv")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    if subprocess.run([python, "-c", "import numpy, matplotlib"], capture_output=True).returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "-q", "numpy", "matplotlib"], check=True)
    return python


def metrics_section(track, track_bench, n, k, repeat):
    csv_path, _ = generate(n, k)
    db = os.path.join(OUT, "metrics.sqlite")
    remove_db(db)
    subprocess.run([track, "ingest", csv_path, "--db", db, "--run", "big"], check=True, stdout=subprocess.DEVNULL)
    swift = json.loads(subprocess.run([track_bench, "metrics", "--db", db, "--run", "big", "--repeat", str(repeat)],
                                      check=True, capture_output=True, text=True).stdout)
    python = venv_python()
    runs = [json.loads(subprocess.run([python, os.path.join(HERE, "metrics_numpy.py"), db, "big"],
                                      check=True, capture_output=True, text=True).stdout) for _ in range(repeat)]
    numpy_seconds = statistics.median(r["seconds"] for r in runs)
    keys = ["accuracy", "mean_confidence", "overconfidence", "conf_ece", "mce", "rmsce", "cw_ece",
            "eq_mass_ece", "ace", "tace", "brier", "nll"]
    worst = max(abs(swift[key] - runs[0][key]) for key in keys)
    scan, full = swift["scan_seconds"], swift["metrics_seconds"]
    print(f"\n== metrics: {n:,} questions x {k} options from the store (median of {repeat}) ==")
    print(f"{'':46} {'seconds':>8}")
    print(f"{'bare SELECT scan of the option rows (baseline)':46} {scan:8.3f}")
    print(f"{'track: load + all 12 metrics':46} {full:8.3f}   {full / scan:.2f}x the scan")
    print(f"{'  of which the metric pass alone':46} {swift['metrics_pass_seconds']:8.3f}")
    print(f"{'Python + numpy, same file, same metrics':46} {numpy_seconds:8.3f}   track is {numpy_seconds / full:.1f}x faster")
    print(f"largest difference between track and numpy over the 12 metrics: {worst:.2e}")
    point = median_time_keep([track, "metrics", "big", "--db", db], repeat)
    ci = median_time_keep([track, "metrics", "big", "--db", db, "--ci", "--resamples", "1000"], repeat)
    print(f"{'track metrics big (point estimate, all metrics)':46} {point:8.3f}")
    print(f"{'track metrics big --ci (1,000 resamples)':46} {ci:8.3f}   {ci / point:.1f}x the point estimate")
    remove_db(db)


def figure_section(track, track_bench, repeat):
    db = os.path.join(OUT, "figure.sqlite")
    remove_db(db)
    subprocess.run([track, "demo", "--db", db, "--out", os.path.join(OUT, "figure-exports")], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bins = os.path.join(OUT, "figure-exports", "gallery_reliability_dpo.png.csv")
    runs = max(repeat * 7, 20)
    swift = json.loads(subprocess.run([track_bench, "figure", "--bins", bins, "--out", os.path.join(OUT, "track.png"),
                                       "--repeat", str(runs)], check=True, capture_output=True, text=True).stdout)
    python = venv_python()
    mpl = json.loads(subprocess.run([python, os.path.join(HERE, "reliability_matplotlib.py"), bins,
                                     os.path.join(OUT, "matplotlib.png"), "--repeat", str(runs)],
                                    check=True, capture_output=True, text=True).stdout)
    print(f"\n== figures: one reliability diagram PNG, 260 x 300 pt at 200 dpi (median of {runs}) ==")
    print(f"{'':36} {'milliseconds':>12}")
    print(f"{'track (Cairo)':36} {swift['seconds'] * 1000:12.1f}")
    print(f"{'matplotlib (Agg), same diagram':36} {mpl['seconds'] * 1000:12.1f}")
    print(f"track takes {swift['seconds'] / mpl['seconds']:.3f} of matplotlib's time (1/{mpl['seconds'] / swift['seconds']:.0f})")
    remove_db(db)


def calibration_section(track_bench):
    python = venv_python()
    if subprocess.run([python, "-c", "import sklearn.frozen"], capture_output=True).returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "-q", "scikit-learn>=1.8"], check=True)
    swift = json.loads(subprocess.run([track_bench, "temperature", "--out", OUT], check=True, capture_output=True, text=True).stdout)
    sk = json.loads(subprocess.run([python, os.path.join(HERE, "temperature_sklearn.py"), os.path.join(OUT, "logits.npy"),
                                    os.path.join(OUT, "labels.npy")], check=True, capture_output=True, text=True).stdout)
    print("\n== calibration: temperature scaling fit, 1,000,000 questions x 4 options (median of 3) ==")
    print(f"{'':44} {'seconds':>8} {'T':>10}")
    print(f"{'track (Newton on 1/T, to 1e-9 in log T)':44} {swift['seconds']:8.3f} {swift['temperature']:10.6f}")
    print(f"{'scikit-learn CalibratedClassifierCV(temperature)':44} {sk['seconds']:8.3f} {sk['temperature']:10.6f}")
    print(f"track is {sk['seconds'] / swift['seconds']:.1f}x faster")
    result = json.loads(subprocess.run([track_bench, "matrix", "--n", "100000", "--k", "10"], check=True,
                                       capture_output=True, text=True).stdout)
    print("\n== calibration: matrix scaling, 100,000 questions x 10 options ==")
    print(f"{'':34} {'seconds':>8}")
    print(f"{'OpenBLAS (cblas_dgemm)':34} {result['blas_seconds']:8.3f}")
    print(f"{'plain loops, same maths':34} {result['loop_seconds']:8.3f}")
    print(f"BLAS is {result['loop_seconds'] / result['blas_seconds']:.1f}x faster over {int(result['iterations'])} L-BFGS iterations; "
          f"NLL difference {result['nll_difference']:.1e}")


def coverage_section(track_bench, replicates=200):
    """Coverage of every interval track prints for the binned errors, by simulation (METHODS §3)."""
    print(f"\n== intervals: coverage simulation ({replicates} runs per scenario, 1,000 resamples, 95%) ==", flush=True)
    path = os.path.join(OUT, "coverage.jsonl")
    with open(path, "w") as out:
        subprocess.run([track_bench, "coverage", "--replicates", str(replicates), "--resamples", "1000"], check=True, stdout=out)
    sys.path.insert(0, HERE)
    import coverage_table
    with open(path) as f:
        print(coverage_table.table(f.readlines()))


def science_section(track_bench):
    python = venv_python()
    if subprocess.run([python, "-c", "import relplot, sklearn"], capture_output=True).returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "-q", "relplot==1.0.3", "scikit-learn>=1.8", "pandas"], check=True)
    swift = json.loads(subprocess.run([track_bench, "science", "--out", OUT], check=True, capture_output=True, text=True).stdout)
    ref = json.loads(subprocess.run([python, os.path.join(HERE, "science_baselines.py"), OUT], check=True,
                                    capture_output=True, text=True).stdout)
    print("\n== science: 1,000,000 questions x 4 options (median of 3) ==")
    print(f"{'':52} {'track s':>8} {'baseline s':>10} {'ratio':>6}")
    rows = [("smECE with bandwidth search (relplot.smECE)", "smece_seconds"),
            ("smooth diagram curve, 200-point mesh (relplot kernel)", "curve_seconds"),
            ("isotonic fit of one class (scikit-learn)", "isotonic_seconds")]
    for label, key in rows:
        print(f"{label:52} {swift[key]:8.3f} {ref[key]:10.3f} {ref[key] / swift[key]:5.1f}x")
    print(f"smECE track {swift['smece']:.12f} relplot {ref['smece']:.12f} (difference {abs(swift['smece'] - ref['smece']):.1e}); "
          f"sigma {swift['sigma']} vs {ref['sigma']}; isotonic at 0.5: {swift['isotonic_at_half']:.12f} vs {ref['isotonic_at_half']:.12f}")
    print(f"paired comparison (1,000 paired-bootstrap resamples of two runs): {swift['paired_seconds']:.2f} s = "
          f"{swift['paired_seconds'] / swift['single_bootstrap_seconds']:.2f}x one run's 1,000-resample `--ci` "
          f"({swift['single_bootstrap_seconds']:.2f} s), {swift['paired_seconds'] / swift['point_seconds']:.0f}x one point "
          f"estimate of every metric ({swift['point_seconds']:.3f} s)")


class PostgresServer:
    """A scratch PostgreSQL server (Debian's postgresql package) on a Unix socket, as the tests start it."""

    def __init__(self):
        import glob, tempfile
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            raise RuntimeError("no PostgreSQL server (apt-get install postgresql)")
        self.bin = os.path.dirname(bins[-1])
        self.dir = tempfile.mkdtemp(prefix="track-bench-pg-", dir="/tmp")
        self.port = random.randint(20000, 60000)
        pw = os.path.join(self.dir, "pw")
        with open(pw, "w") as f:
            f.write("bench")
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        if os.getuid() == 0:
            subprocess.run(["chown", "-R", "postgres", self.dir], check=True)
        subprocess.run(self.prefix + [os.path.join(self.bin, "initdb"), "-D", self.dir + "/data", "-U", "track",
                                      "--auth=scram-sha-256", "--pwfile=" + pw, "-E", "UTF8", "--locale=C"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(self.prefix + [os.path.join(self.bin, "pg_ctl"), "-D", self.dir + "/data", "-l", self.dir + "/log", "-w",
                                      "-o", f"-k {self.dir} -c listen_addresses='' -p {self.port}", "start"],
                       check=True, stdout=subprocess.DEVNULL)
        self.env = dict(os.environ, PGPASSWORD="bench")

    def uri(self, database="postgres"):
        return f"postgresql://track@/{database}?host={self.dir}&port={self.port}"

    def psql(self, sql, database="postgres", out=subprocess.PIPE):
        return subprocess.run(["psql", self.uri(database), "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                              check=True, env=self.env, stdout=out, text=True).stdout

    def stop(self):
        subprocess.run(self.prefix + [os.path.join(self.bin, "pg_ctl"), "-D", self.dir + "/data", "-m", "fast", "-w", "stop"],
                       stdout=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def postgres_section(track, n, k, repeat):
    """Section 8 - PostgreSQL at scale: the 1,000-run store pushed to a server; runs, show, metrics and
table on it beside SQLite and a bare SELECT; the peak memory of a PostgreSQL command with 10 runs
on the server and with 1,000 runs plus EM targets.

Section 7 - PostgreSQL: `track push` of one run of n x k beside psql's \\copy of the same
    rows into a plain table; `track metrics` of it from PostgreSQL beside the same from SQLite and
    beside a bare SELECT of its rows through libpq (psql)."""
    csv_path, _ = generate(n, k)
    local = os.path.join(OUT, "pg-local.sqlite")
    remove_db(local)
    subprocess.run([track, "ingest", csv_path, "--db", local, "--run", "bench"], check=True, stdout=subprocess.DEVNULL)
    rows_csv = os.path.join(OUT, "pg-rows.csv")
    with open(rows_csv, "w") as out:
        subprocess.run(["sqlite3", "-csv", local, "SELECT run_id, question_id, option, prob, score FROM option_scores"], check=True, stdout=out)
    rows = n * k
    server = PostgresServer()
    os.environ["PGPASSWORD"] = "bench"   # the commands timed below read it, as libpq does
    try:
        push, copy = [], []
        for i in range(repeat):
            server.psql(f"CREATE DATABASE push{i}")
            start = time.perf_counter()
            subprocess.run([track, "push", "--all", "--db", local, "--to", server.uri(f"push{i}"), "--quiet"],
                           check=True, env=server.env, stdout=subprocess.DEVNULL)
            push.append(time.perf_counter() - start)
            server.psql(f"CREATE DATABASE copy{i}")
            server.psql("CREATE TABLE plain (run_id bigint, question_id bigint, option bigint, prob double precision, score double precision);"
                        "CREATE TABLE keyed (run_id bigint, question_id bigint, option bigint, prob double precision, score double precision,"
                        " PRIMARY KEY (run_id, question_id, option))", f"copy{i}")
            start = time.perf_counter()
            server.psql(f"\\copy plain FROM '{rows_csv}' CSV", f"copy{i}")
            middle = time.perf_counter()
            server.psql(f"\\copy keyed FROM '{rows_csv}' CSV", f"copy{i}")
            copy.append((middle - start, time.perf_counter() - middle))
        stored = server.psql("SELECT count(*) FROM option_scores", "push0").strip()
        assert int(stored) == rows, (stored, rows)
        t_push = statistics.median(push)
        t_copy = statistics.median(c[0] for c in copy)
        t_keyed = statistics.median(c[1] for c in copy)
        print(f"\n== PostgreSQL 15 (local server, Unix socket): {n:,} questions x {k} options (median of {repeat}) ==")
        print(f"{'':52} {'seconds':>8} {'rows/s':>12}")
        copy_label = "psql \\copy of the same rows into a plain table"
        print(f"{'track push (run, questions, summaries; 1 transaction)':52} {t_push:8.2f} {rows / t_push:12,.0f}")
        print(f"{copy_label:52} {t_copy:8.2f} {rows / t_copy:12,.0f}")
        keyed_label = "psql \\copy into a table keyed as option_scores"
        print(f"{keyed_label:52} {t_keyed:8.2f} {rows / t_keyed:12,.0f}")
        print(f"track push rows/s / psql \\copy rows/s: {t_copy / t_push:.2f}x; "
              f"/ psql \\copy into the keyed table: {t_keyed / t_push:.2f}x (aim >= 0.5x)")
        uri = server.uri("push0")
        metrics_pg = median_time_keep([track, "metrics", "bench", "--db", uri], repeat)
        metrics_sqlite = median_time_keep([track, "metrics", "bench", "--db", local], repeat)
        run_id = server.psql("SELECT run_id FROM runs WHERE name = 'bench'", "push0").strip()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            server.psql(f"SELECT question_id, option, prob, score FROM option_scores WHERE run_id = {run_id}", "push0", out=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
        bare = statistics.median(times)
        same = subprocess.run([track, "metrics", "bench", "--db", uri, "--format", "json"], env=server.env, capture_output=True, text=True).stdout == \
            subprocess.run([track, "metrics", "bench", "--db", local, "--format", "json"], capture_output=True, text=True).stdout
        print(f"{'track metrics, from PostgreSQL':52} {metrics_pg:8.2f}")
        print(f"{'track metrics, from SQLite':52} {metrics_sqlite:8.2f}")
        print(f"{'bare SELECT of its rows through libpq (psql)':52} {bare:8.2f}")
        print(f"track metrics from PostgreSQL / bare SELECT: {metrics_pg / bare:.2f}x (aim <= 1.3x); "
              f"/ from SQLite: {metrics_pg / metrics_sqlite:.2f}x; same JSON from both stores: {same}")
    finally:
        server.stop()
        remove_db(local)


def max_rss_mb(command, env=None):
    """Wall seconds and peak resident memory (MB) of one run of `command`."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, command)
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def postgres_scale_section(track, track_bench, repeat, runs=1000, questions=14_042, k=4):
    """Section 8 - PostgreSQL at scale: the scale store pushed to a server; `track runs`, `show`,
    `metrics RUN` and `table` on it beside the same on SQLite and beside a bare SELECT (psql) of
    the rows each needs; the peak memory of a PostgreSQL command with 10 runs on the server, then
    with 1,000 runs and EM targets for 100 of them."""
    db = os.path.join(OUT, "pg-scale.sqlite")
    build_scale_store(track, track_bench, db, runs, questions, k)
    server = PostgresServer()
    os.environ["PGPASSWORD"] = "bench"
    try:
        server.psql("CREATE DATABASE small")
        server.psql("CREATE DATABASE scale")
        small, uri = server.uri("small"), server.uri("scale")
        subprocess.run([track, "push"] + [f"r{i:04d}" for i in range(10)] + ["--db", db, "--to", small, "--quiet"],
                       check=True, env=server.env, stdout=subprocess.DEVNULL)
        start = time.perf_counter()
        subprocess.run([track, "push", "--all", "--db", db, "--to", uri, "--quiet"], check=True, env=server.env, stdout=subprocess.DEVNULL)
        pushed = time.perf_counter() - start
        run_id = server.psql("SELECT run_id FROM runs WHERE name = 'r0005'", "scale").strip()
        tables = os.path.join(OUT, "pg-scale-tables")
        # The baseline: psql reading the stored rows each command needs, from the tables themselves.
        one = f"run_id = {run_id}"
        commands = [
            ("track runs", ["runs"], "SELECT * FROM runs r LEFT JOIN _track_run_stats s USING (run_id) ORDER BY r.run_id"),
            ("track show r0005", ["show", "r0005"],
             f"SELECT * FROM runs r LEFT JOIN _track_run_stats s USING (run_id) WHERE {one.replace('run_id', 'r.run_id')}; "
             f"SELECT * FROM params WHERE {one}; SELECT * FROM tags WHERE {one}; SELECT * FROM metrics WHERE {one}"),
            ("track metrics r0005", ["metrics", "r0005"],
             f"SELECT question_id, option, prob, score FROM option_scores WHERE {one} ORDER BY question_id, option"),
            ("track table (all runs)", ["table", "--out-dir", tables],
             "SELECT * FROM runs; SELECT * FROM _track_run_stats; SELECT * FROM _track_run_bins; SELECT * FROM params; SELECT * FROM tags"),
        ]
        print(f"\n== PostgreSQL 15 at scale: {runs:,} runs x {questions:,} questions x {k} options "
              f"(pushed in {pushed:.0f} s; median of {repeat}) ==")
        print(f"{'':26} {'PostgreSQL':>10} {'SQLite':>8} {'bare SELECT':>12} {'PG/SQLite':>10} {'PG/SELECT':>10}")
        for label, command, sql in commands:
            pg = median_time_keep([track] + command + ["--db", uri], repeat)
            lite = median_time_keep([track] + command + ["--db", db], repeat)
            times = []
            for _ in range(repeat):
                begin = time.perf_counter()
                server.psql(sql, "scale", out=subprocess.DEVNULL)
                times.append(time.perf_counter() - begin)
            bare = statistics.median(times)
            print(f"{label:26} {pg:10.3f} {lite:8.3f} {bare:12.3f} {pg / lite:10.2f} {pg / bare:10.2f}")
        print("(aims: <= 2x SQLite, <= 1.3x the bare SELECT of the rows a command needs)")
        # Memory: the same commands with 10 runs on the server, then 1,000 and EM targets for 100 runs.
        server.psql("INSERT INTO em_targets(run_id, question_id, option, bin, target) "
                    "SELECT run_id, question_id, option, 0, prob FROM option_scores WHERE run_id IN "
                    "(SELECT run_id FROM runs ORDER BY run_id LIMIT 100)", "scale")
        targets = int(server.psql("SELECT count(*) FROM em_targets", "scale"))
        print(f"peak memory of a PostgreSQL command (MB): 10 runs on the server | {runs:,} runs and {targets:,} EM targets")
        for label, command in [("track runs", ["runs"]), ("track metrics r0005", ["metrics", "r0005"]),
                               ("track show r0005", ["show", "r0005"])]:
            _, low = max_rss_mb([track] + command + ["--db", small], env=server.env)
            _, high = max_rss_mb([track] + command + ["--db", uri], env=server.env)
            print(f"{label:26} {low:10.1f} {high:10.1f}")
    finally:
        server.stop()
        remove_db(db)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--track", default=os.path.join(HERE, "..", ".build", "release", "track"))
    parser.add_argument("--questions", type=int, default=1_000_000)
    parser.add_argument("--options", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["ingest", "metrics", "figures", "calibration", "science", "coverage", "scale", "postgres", "postgres-scale", "report"], help="run one section")
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    track = os.path.abspath(args.track)
    if not os.path.exists(track):
        sys.exit(f"no track binary at {track}; run `make release` first")
    print(f"track benchmarks - {os.cpu_count()} cores; {subprocess.run([track, '--version'], capture_output=True, text=True).stdout.strip()}")
    track_bench = os.path.join(os.path.dirname(track), "track-bench")
    if args.only in (None, "ingest"):
        ingest_section(track, args.questions, args.options, args.repeat)
    if args.only in (None, "metrics"):
        metrics_section(track, track_bench, args.questions, args.options, args.repeat)
    if args.only in (None, "figures"):
        figure_section(track, track_bench, args.repeat)
    if args.only in (None, "calibration"):
        calibration_section(track_bench)
    if args.only in (None, "science"):
        science_section(track_bench)
    if args.only in (None, "coverage"):
        coverage_section(track_bench)
    if args.only in (None, "scale"):
        scale_section(track, track_bench, args.repeat)
    if args.only in (None, "postgres"):
        postgres_section(track, args.questions, args.options, args.repeat)
    if args.only in (None, "postgres-scale"):
        postgres_scale_section(track, track_bench, args.repeat)
    if args.only in (None, "report"):
        report_section(track, args.repeat)


if __name__ == "__main__":
    main()
