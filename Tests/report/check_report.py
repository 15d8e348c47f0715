#!/usr/bin/env python3
"""track report in a real browser: headless Chromium (Debian's chromium, chromium-driver)
driven by Selenium. Builds a demo store, writes the report, opens it offline and checks the
run browser: no console errors and no network request; the runs table sorts and filters; the
column chooser changes the header and survives a reload through the URL fragment; run links
scroll to their run; the compare view of selected runs equals `track compare --format json`
(1e-12); per-run metrics equal `track metrics --format json`, per-subject tables
`track metrics --by subject`; figures are drawn (SVG) as they scroll into view; logged scalars
(single values too) are drawn with smoothing and a log scale. Prints 'N passed, M failed';
exit 1 on a failure.

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
RESAMPLES = "50"
subprocess.run([track, "demo", "--db", db, "--out", os.path.join(work, "exports"), "--questions", "300"], check=True, capture_output=True)
# A run logged step by step (a curve), besides the demo's single train/loss values.
steps = "".join(json.dumps({"metric": "train/loss", "value": 2.0 / (s + 1), "step": s}) + "\n" for s in range(30))
subprocess.run([track, "log", "--db", db, "--run", "curve-run", "--dataset", "d"], input=steps, text=True, check=True, capture_output=True)
built = subprocess.run([track, "report", "--db", db, "--out", out, "--details", "12", "--resamples", RESAMPLES], check=True, capture_output=True, text=True)

options = webdriver.ChromeOptions()
for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]:
    options.add_argument(flag)
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.set_window_size(1400, 1000)
passed, failed = 0, 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def track_json(*arguments):
    return json.loads(subprocess.run([track, *arguments, "--db", db, "--format", "json"], check=True, capture_output=True, text=True).stdout)


def close(a, b):
    return (a is None and b is None) or (a is not None and b is not None and abs(float(a) - float(b)) <= 1e-12)


def header():
    return [h.text for h in driver.find_elements(By.CSS_SELECTOR, "#runs thead th")][1:]


try:
    driver.get("file://" + out)
    errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    check("no console errors", not errors, errors)
    rows = driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    check("every run in the table", len(rows) == 55, len(rows))

    def column(name):
        index = header().index(name) + 1
        return [r.find_elements(By.TAG_NAME, "td")[index].get_attribute("data-value") for r in driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")]

    def click_header(name):
        driver.find_elements(By.CSS_SELECTOR, "#runs thead th")[header().index(name) + 1].click()

    click_header("conf_ece")
    values = [float(v) for v in column("conf_ece") if v]
    check("sorts ascending on a click", values == sorted(values) and len(values) == 54, values[:5])
    click_header("conf_ece")
    values = [float(v) for v in column("conf_ece") if v]
    check("sorts descending on a second click", values == sorted(values, reverse=True), values[:5])
    box = driver.find_element(By.ID, "filter")
    box.send_keys("mistral-7b-instruct-sim/sft")
    visible = [r for r in driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr") if r.is_displayed()]
    check("filters on typing", len(visible) == 2 and all("Mistral-7B-Instruct-sim/SFT" in r.text for r in visible), len(visible))
    box.clear()
    box.send_keys(" ")
    box.clear()
    driver.execute_script("document.getElementById('filter').dispatchEvent(new Event('input'))")

    # The column chooser: a param, a tag and a logged value become columns; the fragment keeps them.
    driver.find_element(By.CSS_SELECTOR, "#chooser summary").click()
    for name in ["params.sharpness", "tags.simulated", "logged.train/loss", "mce"]:
        driver.find_element(By.CSS_SELECTOR, f'#column-list input[data-col="{name}"]').click()
    driver.find_element(By.CSS_SELECTOR, '#column-list input[data-col="dataset"]').click()   # off
    chosen = header()
    check("the chooser changes the header", all(c in chosen for c in ["params.sharpness", "tags.simulated", "logged.train/loss", "mce"]) and "dataset" not in chosen, chosen)
    sharpness = {r.get_attribute("data-run"): r.find_elements(By.TAG_NAME, "td")[header().index("params.sharpness") + 1].text
                 for r in driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")}
    check("param cells hold the runs' params", sharpness.get("Vicuna-7B-sim/DPO/in-domain", "") not in ("", None), sharpness.get("Vicuna-7B-sim/DPO/in-domain"))
    driver.refresh()
    check("the columns survive a reload (URL fragment)", header() == chosen, (header(), chosen))

    # Links: a row's run link scrolls to that run's section; the anchor is in the URL.
    target = "Llama-3.1-8B-Tulu-sim/TS/in-domain"   # among the 12 runs in detail
    link = driver.find_element(By.XPATH, f'//table[@id="runs"]//tr[@data-run="{target}"]//a[@class="runlink"]')
    anchor = link.get_attribute("href").split("#", 1)[1]
    driver.execute_script("arguments[0].scrollIntoView({block:'center'})", link)
    link.click()
    top = driver.execute_script(f"return document.getElementById('{anchor}').getBoundingClientRect().top")
    section_run = driver.execute_script(f"return document.getElementById('{anchor}').dataset.run")
    check("a run link scrolls to its run", abs(top) < 5 and section_run == target, (top, section_run))
    check("the link keeps the columns in the fragment", "cols=" in driver.current_url and anchor in driver.current_url, driver.current_url)
    driver.get("file://" + out + "#" + anchor)
    top = driver.execute_script(f"return document.getElementById('{anchor}').getBoundingClientRect().top")
    check("a shared #run- link opens at the run", abs(top) < 5, top)

    # Figures are drawn when they come into view.
    section = driver.find_element(By.ID, anchor)
    driver.execute_script("arguments[0].scrollIntoView()", section)
    driver.implicitly_wait(0)
    drawn = driver.execute_script("""var s=arguments[0];return Array.from(s.querySelectorAll('.fig')).map(f=>[f.dataset.kind, f.querySelectorAll('svg rect').length])""", section)
    check("the run's figures are drawn in view", len(drawn) >= 2 and all(count > 10 for _, count in drawn), drawn)
    undrawn = driver.execute_script("return document.querySelectorAll('.fig:not([data-drawn])').length")
    check("figures out of view are not drawn yet (lazy)", undrawn > 0, undrawn)

    # Metrics on the page equal track metrics --format json; subject tables equal --by subject.
    mismatches, subjects_checked = [], 0
    for section in driver.find_elements(By.CSS_SELECTOR, "section.run:not(.brief)"):
        run = section.get_attribute("data-run")
        expected = track_json("metrics", run)[0]
        for cell in section.find_elements(By.CSS_SELECTOR, "table.metrics td[data-key]"):
            key, value = cell.get_attribute("data-key"), cell.get_attribute("data-value")
            if not close(None if value == "" else value, expected[key]):
                mismatches.append((run, key, value, expected[key]))
        for table in section.find_elements(By.CSS_SELECTOR, "table.subjects"):
            by_subject = {row["subject"]: row for row in track_json("metrics", run, "--by", "subject")}
            for row in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
                subject = row.get_attribute("data-subject")
                for cell in row.find_elements(By.CSS_SELECTOR, "td[data-key]"):
                    key, value = cell.get_attribute("data-key"), cell.get_attribute("data-value")
                    if not close(None if value == "" else value, by_subject[subject][key]):
                        mismatches.append((run, subject, key, value))
                subjects_checked += 1
    sections = driver.find_elements(By.CSS_SELECTOR, "section.run:not(.brief)")
    check("metrics equal track metrics --format json", len(sections) == 12 and not mismatches, mismatches[:3])
    check("subject tables equal metrics --by subject", subjects_checked >= 5, subjects_checked)
    # A subject table sorts by a column.
    table = driver.find_element(By.CSS_SELECTOR, "table.subjects")
    driver.execute_script("arguments[0].scrollIntoView()", table)
    ece_header = [h for h in table.find_elements(By.CSS_SELECTOR, "thead th") if h.text == "conf_ece"][0]
    ece_header.click()
    ece_values = [float(c.get_attribute("data-value")) for c in table.find_elements(By.CSS_SELECTOR, 'td[data-key="conf_ece"]')]
    check("a subject table sorts by conf_ece", ece_values == sorted(ece_values), ece_values)

    # The compare view: select three runs of one model and dataset, compare.
    driver.get("file://" + out)
    picks = ["Llama-3.1-8B-Tulu-sim/SFT/out-domain", "Llama-3.1-8B-Tulu-sim/DPO/out-domain", "Llama-3.1-8B-Tulu-sim/TS/out-domain"]
    for name in picks:
        box = driver.find_element(By.XPATH, f'//table[@id="runs"]//tr[@data-run="{name}"]//input[@class="pick"]')
        driver.execute_script("arguments[0].scrollIntoView({block:'center'})", box)
        box.click()
    button = driver.find_element(By.ID, "compare-button")
    check("the compare button counts the selection", button.text == "Compare selected (3)" and button.is_enabled(), button.text)
    button.click()
    heads = [(h.text, h.get_attribute("title")) for h in driver.find_elements(By.CSS_SELECTOR, "#compare-metrics thead th")][1:4]
    check("compare columns name runs by what differs (full name on hover)", heads == [("SFT", picks[0]), ("DPO", picks[1]), ("TS", picks[2])], heads)
    keys = json.loads(driver.execute_script("return JSON.stringify(JSON.parse(document.getElementById('report-data').textContent).metricKeys)"))
    expected = track_json("compare", *picks, "--metrics", ",".join(keys), "--resamples", RESAMPLES)
    problems = []
    for comparison in expected:
        other = comparison["other"]
        for key in keys:
            test = comparison["paired_tests"][key]
            cells = {c.get_attribute("data-field"): c for c in driver.find_elements(By.CSS_SELECTOR, f'#compare-metrics td[data-pair="{other}"][data-key="{key}"]')}
            if not cells:
                problems.append((other, key, "missing"))
                continue
            if not close(cells["delta"].get_attribute("data-value"), test["delta"]):
                problems.append((other, key, "delta"))
            if not (close(cells["ci"].get_attribute("data-low"), test["ci"][0]) and close(cells["ci"].get_attribute("data-high"), test["ci"][1])):
                problems.append((other, key, "ci"))
            if not close(cells["p"].get_attribute("data-value"), test["p"]):
                problems.append((other, key, "p"))
            for run, want in [(comparison["base"], comparison["metrics"][key]["base"]), (other, comparison["metrics"][key]["other"])]:
                cell = driver.find_element(By.CSS_SELECTOR, f'#compare-metrics td[data-run="{run}"][data-key="{key}"]')
                if not close(cell.get_attribute("data-value"), want):
                    problems.append((run, key, "value"))
        mcnemar = driver.find_elements(By.CSS_SELECTOR, f'#compare-metrics td[data-pair="{other}"][data-field="mcnemar"]')
        if not mcnemar or not close(mcnemar[0].get_attribute("data-value"), comparison["mcnemar"]["p"]):
            problems.append((other, "mcnemar"))
        # Per-subject deltas: the paired breakdown of track compare.
        for subject, group in comparison["paired_by_subject"].items():
            row = driver.find_elements(By.XPATH, f'//table[@data-pair="{other}"]//tr[td[1]="{subject}"]')
            if not row or not close(row[0].find_element(By.CSS_SELECTOR, 'td[data-key="mean_delta_confidence"]').get_attribute("data-value"), group["mean_delta_confidence"]):
                problems.append((other, subject, "subject"))
            want = comparison.get("metrics_by_subject", {}).get(subject, {}).get("conf_ece", {}).get("delta")
            if row and want is not None and not close(row[0].find_element(By.CSS_SELECTOR, 'td[data-key="delta_conf_ece"]').get_attribute("data-value"), want):
                problems.append((other, subject, "delta conf_ece"))
    check("the compare view equals track compare --format json (1e-12)", len(expected) == 2 and not problems, problems[:4])
    overlay = driver.execute_script("return document.querySelectorAll('#compare-figure svg rect').length")
    check("the compare view overlays the runs' reliability diagrams", overlay > 20, overlay)

    # Logged scalars: single values as markers, a series as a line; smoothing and log scale redraw it.
    logged = driver.find_element(By.CSS_SELECTOR, '.fig[data-kind="logged"]')
    driver.execute_script("arguments[0].scrollIntoView()", logged)
    markers = driver.execute_script("return arguments[0].querySelectorAll('circle.single').length", logged)
    path = driver.execute_script("var p=arguments[0].querySelector('path');return p?p.getAttribute('d'):''", logged)
    check("single logged values drawn as markers, a series as a line", markers == 48 and path.count("L") == 29, (markers, path.count("L")))
    driver.execute_script("var s=document.getElementById('smoothing');s.value='0.9';s.dispatchEvent(new Event('input'))")
    smoothed = driver.execute_script("return arguments[0].querySelector('path').getAttribute('d')", logged)
    driver.find_element(By.ID, "log-scale").click()
    logged_path = driver.execute_script("return arguments[0].querySelector('path').getAttribute('d')", logged)
    check("smoothing and log scale redraw the curve", smoothed != path and logged_path != smoothed, (path[:40], smoothed[:40], logged_path[:40]))

    errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    check("no console errors after using it", not errors, errors)
    requests = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    page = open(out).read()
    external = [marker for marker in ('src="http', "src='http", 'href="http', "href='http", "url(http", "@import") if marker in page]
    check("works offline (no request, no external resource)", not requests and not external, (requests, external))
    size = os.path.getsize(out)
    check("the report stays small", size < 5_000_000, size)
    note = driver.find_elements(By.ID, "table2-note")
    check("Table 2 says which cells hold several runs", note and "latest step/epoch" in note[0].get_attribute("textContent"), note)
    print(f"report size: {size / 1e6:.2f} MB for 55 runs, 12 in detail ({built.stdout.strip()})")
finally:
    driver.quit()
print(f"report: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
