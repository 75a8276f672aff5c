# retroingest — two commands matter: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90

.PHONY: setup demo test test-all bench accuracy fuzz serve nightly clean

setup: $(STAMP)

# Idempotent: reinstalls only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,pipelines]"
	rm -f $(VENV)/.installed-*
	touch $@

demo: setup
	$(PY) -m retroingest.demo

test: setup
	$(PY) -m pytest -q -m "not slow"

test-all: setup
	$(PY) -m pytest -q

# Long runs: each prints what it measured; none is part of `make test`.
accuracy: setup
	$(PY) -m retroingest.cli evaluate

bench: setup
	$(PY) benchmarks/bench_decode.py
	$(PY) benchmarks/bench_stage.py
	$(PY) benchmarks/bench_classify.py
	$(PY) benchmarks/bench_e2e.py

fuzz: setup
	$(PY) -m retroingest.fuzz --n 5000 --seed 1 --json warehouse/fuzz.json

# Nightly import on a cron schedule through a local Prefect server (docs/CONCURRENCY.md).
serve: setup
	$(PY) -m retroingest.cli serve

# Run the nightly import once, now, from the sources in retroingest.toml.
nightly: setup
	$(PY) -m pipelines.flows nightly_import

clean:
	rm -rf warehouse/retro.duckdb warehouse/retro.duckdb.wal warehouse/retro.duckdb.staging warehouse/report .pytest_cache
