# track — two commands on a fresh Debian 12 machine with Swift:
#   make demo   builds track and runs it on the embedded, simulated demo data
#   make test   builds and runs the tests
# Both install the C libraries first when they are missing.

APT_PACKAGES := libsqlite3-dev libcairo2-dev libopenblas-dev libpq-dev pkg-config fontconfig fonts-dejavu-core sqlite3
SWIFT ?= swift

.PHONY: deps browser postgres build release demo test notebooks datasette report notebooks-update bench references clean

# Installs the Debian packages of $(1) that are missing (as root, else with sudo).
define install_missing
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

deps:
	$(call install_missing,$(APT_PACKAGES))

# Headless Chromium and its driver for the report's browser test (Debian packages).
BROWSER_PACKAGES := chromium chromium-driver
browser:
	$(call install_missing,$(BROWSER_PACKAGES))

# A real PostgreSQL server (and psql) for the tests of the shared store; the tests start their own.
POSTGRES_PACKAGES := postgresql postgresql-client
postgres:
	$(call install_missing,$(POSTGRES_PACKAGES))

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

demo: release
	.build/release/track demo --db demo.sqlite --out exports

test: deps postgres
	$(SWIFT) build
	$(MAKE) notebooks
	$(MAKE) datasette
	$(MAKE) report
	$(SWIFT) test

# The notebooks run against the debug binary and a scratch demo database, in their own venv.
NOTEBOOK_ENV = notebooks/.venv
$(NOTEBOOK_ENV)/bin/python:
	python3 -m venv $(NOTEBOOK_ENV)
	$(NOTEBOOK_ENV)/bin/pip install -q nbclient nbformat ipykernel

notebooks: $(NOTEBOOK_ENV)/bin/python
	TRACK_BIN=$(CURDIR)/.build/debug/track TRACK_DEMO_DB=$$(mktemp -d)/demo.sqlite $(NOTEBOOK_ENV)/bin/python notebooks/run_notebooks.py

# The store in Datasette (Tests/datasette), in its own venv.
DATASETTE_ENV = Tests/datasette/.venv
$(DATASETTE_ENV)/bin/python:
	python3 -m venv $(DATASETTE_ENV)
	$(DATASETTE_ENV)/bin/pip install -q datasette

datasette: $(DATASETTE_ENV)/bin/python
	TRACK_BIN_DIR=$(CURDIR)/.build/debug $(DATASETTE_ENV)/bin/python Tests/datasette/check_datasette.py

# track report in a real browser: headless Chromium driven by Selenium (Tests/report, own venv).
REPORT_ENV = Tests/report/.venv
$(REPORT_ENV)/bin/python:
	python3 -m venv $(REPORT_ENV)
	$(REPORT_ENV)/bin/pip install -q selenium

report: browser $(REPORT_ENV)/bin/python
	TRACK_BIN=$(CURDIR)/.build/debug/track $(REPORT_ENV)/bin/python Tests/report/check_report.py

notebooks-update: $(NOTEBOOK_ENV)/bin/python
	python3 notebooks/make_notebooks.py
	TRACK_BIN=$(CURDIR)/.build/debug/track TRACK_DEMO_DB=$$(mktemp -d)/demo.sqlite $(NOTEBOOK_ENV)/bin/python notebooks/run_notebooks.py --update

# Reference values from relplot, uncertainty-calibration, scikit-learn and scipy (Tests/reference),
# in their own venv; the tests read the committed JSON, so this runs only when the cases change.
REFERENCE_ENV = Tests/reference/.venv
$(REFERENCE_ENV)/bin/python:
	python3 -m venv $(REFERENCE_ENV)
	$(REFERENCE_ENV)/bin/pip install -q relplot==1.0.3 uncertainty-calibration==0.1.4 scikit-learn scipy

references: $(REFERENCE_ENV)/bin/python
	$(REFERENCE_ENV)/bin/python Tests/reference/calibration_references.py
	$(REFERENCE_ENV)/bin/python Tests/reference/binning_references.py
	$(REFERENCE_ENV)/bin/python Tests/reference/crossfit_references.py

bench: release
	python3 bench/bench.py --track .build/release/track

clean:
	rm -rf .build demo.sqlite demo.sqlite-wal demo.sqlite-shm bench/out
