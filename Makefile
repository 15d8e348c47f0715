# track — two commands on a fresh Debian 12 machine with Swift:
#   make demo   builds track and runs it on the embedded, simulated demo data
#   make test   builds and runs the tests
# Both install the C libraries first when they are missing.

APT_PACKAGES := libsqlite3-dev libcairo2-dev libopenblas-dev pkg-config fontconfig fonts-dejavu-core sqlite3
SWIFT ?= swift

.PHONY: deps build release demo test bench clean

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

demo: release
	.build/release/track demo --db demo.sqlite --out exports

test: deps
	$(SWIFT) build
	$(SWIFT) test

bench: release
	python3 bench/bench.py --track .build/release/track

clean:
	rm -rf .build demo.sqlite demo.sqlite-wal demo.sqlite-shm bench/out
