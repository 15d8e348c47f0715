#!/usr/bin/env python3
"""track report in a real browser: headless Chromium (Debian's chromium, chromium-driver)
driven by Selenium. Builds a demo store, writes the report, opens it offline and checks:
no console errors, the runs table sorts on a header click and filters on typing, every
figure has a non-zero rendered size, and the metrics on the page equal
`track metrics --format json`. Prints 'N passed, M failed'; exit 1 on a failure.

    TRACK_BIN=.build/debug/track Tests/report/.venv/bin/python Tests/report/check_report.py
"""
import json
import os
import subprocess
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

track = os.environ.get("TRACK_BIN", ".build/debug/track")
work = tempfile.mkdtemp(prefix="track-report-")
db, out = os.path.join(work, "demo.sqlite"), os.path.join(work, "report.html")
subprocess.run([track, "demo", "--db", db, "--out", os.path.join(work, "exports"), "--questions", "300"], check=True, capture_output=True)
subprocess.run([track, "report", "--db", db, "--out", out, "--details", "4", "--resamples", "50"], check=True, capture_output=True)

options = webdriver.ChromeOptions()
for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]:
    options.add_argument(flag)
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
passed, failed = 0, 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


try:
    driver.get("file://" + out)
    errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    check("no console errors", not errors, errors)
    rows = driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    check("every run in the table", len(rows) == 54, len(rows))

    def column(index):
        return [r.find_elements(By.TAG_NAME, "td")[index].get_attribute("data-value") for r in driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")]

    headers = driver.find_elements(By.CSS_SELECTOR, "#runs thead th")
    ece = [h.text for h in headers].index("conf_ece")
    headers[ece].click()
    values = [float(v) for v in column(ece)]
    check("sorts ascending on a click", values == sorted(values), values[:5])
    headers[ece].click()
    values = [float(v) for v in column(ece)]
    check("sorts descending on a second click", values == sorted(values, reverse=True), values[:5])
    box = driver.find_element(By.ID, "filter")
    box.send_keys("mistral-7b-instruct-sim/sft")
    visible = [r for r in driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr") if r.is_displayed()]
    check("filters on typing", len(visible) == 2 and all("Mistral-7B-Instruct-sim/SFT" in r.text for r in visible), len(visible))
    figures = driver.find_elements(By.CSS_SELECTOR, "figure img")
    sizes = [(f.size["width"], f.size["height"]) for f in figures]
    loaded = driver.execute_script("return Array.from(document.querySelectorAll('figure img')).every(i => i.complete && i.naturalWidth > 0)")
    check("figures rendered with a size", len(figures) >= 8 and loaded and all(w > 50 and h > 50 for w, h in sizes), sizes[:4])
    # The metrics on the page equal track metrics --format json.
    cells = driver.find_elements(By.CSS_SELECTOR, "section.run")
    mismatches = []
    for section in cells:
        run = section.get_attribute("data-run")
        expected = json.loads(subprocess.run([track, "metrics", run, "--db", db, "--format", "json"], check=True,
                                             capture_output=True, text=True).stdout)[0]
        for cell in section.find_elements(By.CSS_SELECTOR, "td[data-key]"):
            key, value = cell.get_attribute("data-key"), cell.get_attribute("data-value")
            want = expected[key]
            if (want is None) != (value == "") or (want is not None and abs(float(value) - want) > 1e-12):
                mismatches.append((run, key, value, want))
    check("metrics equal track metrics --format json", len(cells) == 4 and not mismatches, mismatches[:3])
    page = open(out).read()
    external = [marker for marker in ('src="http', "src='http", 'href="http', "href='http", "url(http", "@import") if marker in page]
    check("works offline (no external resources)", not external, external)
finally:
    driver.quit()
print(f"report: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
