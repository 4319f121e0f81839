# Everything runs inside a virtual environment in the repo (.venv), created on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WORKDIR ?= runs/lru_listops_smoke
# Test workers: the suite is dominated by XLA compiles, which parallelise well over processes.
PYTEST_WORKERS ?= 2

.PHONY: install run test test-fast bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The main job: generate small ListOps offline, train the LRU smoke config, report val/test accuracy.
run: $(STAMP)
	$(PY) -m experiments.train --config experiments/configs/lru.py:listops_smoke --workdir $(WORKDIR)

test: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --durations=15 tests

# Skips the tests marked slow (end-to-end training, resume, multi-device).
test-fast: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) -m "not slow" tests

bench: $(STAMP)
	$(PY) -m experiments.benchmark scan

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
