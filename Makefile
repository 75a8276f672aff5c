# retroingest — two commands matter: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90

.PHONY: setup demo test test-all bench accuracy bout-model fuzz serve nightly clean

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

# Retrain the learned bout model (retroingest/classify/bout_model.json) on development seeds with the
# rules alone, about 20 minutes on 2 cores; prints its leave-one-seed-out figures (docs/ACCURACY.md).
BOUT_SEEDS ?= 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19
BOUT_WORK  ?= /tmp/retroingest-bout-model
bout-model: setup
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[train]"
	mkdir -p $(BOUT_WORK)
	for s in $(BOUT_SEEDS); do echo $$s; done | RETROINGEST_BOUT_MODEL=off xargs -P 2 -I{} sh -c \
	  'rm -rf $(BOUT_WORK)/s{} && $(PY) -m retroingest.cli evaluate --seed {} --allow-dev-seed --n 96 --corpus ../shared/corpus \
	   --workdir $(BOUT_WORK)/s{} > $(BOUT_WORK)/s{}.txt 2>&1'
	$(PY) benchmarks/train_bout_model.py $(addprefix $(BOUT_WORK)/s,$(BOUT_SEEDS)) \
	  --out retroingest/classify/bout_model.json

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
