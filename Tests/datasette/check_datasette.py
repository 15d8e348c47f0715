#!/usr/bin/env python3
"""The store in Datasette, the SQLite browser users know (run by `make test`).

Builds a store of many runs with the debug `track` binary (10 runs ingested,
copied by track-bench to 200: 400,000 run x question rows, 1.6M option rows),
serves it with `datasette` on a loopback port, and queries every view with a
run filter through Datasette's JSON API under its default time limit (1 s,
`sql_time_limit_ms`); issue 9 saw the views of schema v4 time out there on
`predictions LIMIT 2` over one 2,000,000-question run. The numbers Datasette returns for a run must equal
`track metrics --format json` (1e-12). Prints 'N passed, N failed'.
"""
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

BIN = os.environ.get("TRACK_BIN_DIR", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug"))
TRACK = os.path.abspath(os.path.join(BIN, "track"))
BENCH = os.path.abspath(os.path.join(BIN, "track-bench"))
DATASETTE = os.path.join(os.path.dirname(sys.executable), "datasette")

passed, failed = 0, 0


def check(condition, what):
    global passed, failed
    if condition:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}")


def build_store(directory):
    db = os.path.join(directory, "many.sqlite")
    for r in range(10):
        rng = random.Random(r)
        path = os.path.join(directory, f"run{r}.csv")
        with open(path, "w") as f:
            f.write("id,subject,p0,p1,p2,p3,label\n")
            for q in range(2000):
                w = [rng.random() ** 2 + 1e-3 for _ in range(4)]
                s = sum(w)
                f.write(f"q{q},s{q % 13}," + ",".join(repr(x / s) for x in w) + f",{(q * 7) % 4}\n")
        subprocess.run([TRACK, "ingest", path, "--db", db, "--dataset", "mmlu", "--run", f"seed{r}"],
                       check=True, stdout=subprocess.DEVNULL)
    subprocess.run([BENCH, "replicate", "--db", db, "--copies", "20"], check=True, stdout=subprocess.DEVNULL)
    return db


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
        return response.status, json.loads(response.read())


def sql(port, query):
    """Rows of a query through Datasette's JSON API, or the error it gives (e.g. the time limit)."""
    try:
        status, body = get(port, "/many.json?" + urllib.parse.urlencode({"sql": query, "_shape": "objects"}))
        return body.get("rows"), body.get("error")
    except urllib.error.HTTPError as error:
        return None, json.loads(error.read()).get("error", str(error))


def main():
    with tempfile.TemporaryDirectory() as directory:
        db = build_store(directory)
        count = json.loads(subprocess.run([TRACK, "sql", "--db", db, "--format", "json", "SELECT count(*) AS n FROM runs"],
                                          check=True, capture_output=True, text=True).stdout)[0]["n"]
        check(count == 200, f"200 runs in the store, found {count}")
        port = free_port()
        server = subprocess.Popen([DATASETTE, "serve", db, "--host", "127.0.0.1", "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            for _ in range(200):
                try:
                    get(port, "/-/versions.json")
                    break
                except OSError:
                    time.sleep(0.1)
            status, settings = get(port, "/-/settings.json")
            check(settings["sql_time_limit_ms"] == 1000, "Datasette's default 1 s time limit is in force")
            run = "r0137"
            views = {
                "predictions": f"SELECT * FROM predictions WHERE run = '{run}' LIMIT 2",
                "predictions by subject": f"SELECT subject, avg(correct) AS accuracy FROM predictions WHERE run = '{run}' GROUP BY subject",
                "run_summary": f"SELECT * FROM run_summary WHERE run = '{run}'",
                "run_calibration": f"SELECT * FROM run_calibration WHERE run = '{run}'",
                "reliability_bins": f"SELECT * FROM reliability_bins WHERE run = '{run}'",
                "classwise_bins": f"SELECT * FROM classwise_bins WHERE run = '{run}'",
                "subject_calibration": f"SELECT * FROM subject_calibration WHERE run = '{run}'",
                "preference_winrate": f"SELECT * FROM preference_winrate WHERE run = '{run}'",
                "judged_winrate": f"SELECT * FROM judged_winrate WHERE run = '{run}'",
                "run_calibration, all runs": "SELECT * FROM run_calibration",
                "runs of one method": "SELECT run, accuracy, conf_ece FROM run_calibration WHERE method = 'M1'",
            }
            results = {}
            for name, query in views.items():
                rows, error = sql(port, query)
                check(error is None and rows is not None, f"{name}: {error}")
                results[name] = rows or []
            check(len(results["predictions"]) == 2, "predictions LIMIT 2 gives 2 rows")
            check(len(results["predictions by subject"]) == 13, "13 subjects")
            check(len(results["run_calibration, all runs"]) == 200, "run_calibration lists every run")
            check(len(results["runs of one method"]) == 40, "40 runs of method M1")
            # The same numbers as track's analyzers.
            metrics = json.loads(subprocess.run([TRACK, "metrics", run, "--db", db, "--format", "json"],
                                                check=True, capture_output=True, text=True).stdout)
            metrics = metrics[0] if isinstance(metrics, list) else metrics
            row = results["run_calibration"][0] if results["run_calibration"] else {}
            for key in ["accuracy", "mean_confidence", "conf_ece", "mce", "cw_ece", "brier", "nll"]:
                check(key in row and abs(row[key] - metrics[key]) <= 1e-12, f"{key}: Datasette {row.get(key)} vs track {metrics.get(key)}")
            check(row.get("n") == 2000, "n = 2000")
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"datasette: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
