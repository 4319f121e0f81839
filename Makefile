# Everything runs inside a virtual environment in the repo (.venv), created on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUNS_DIR ?= runs/mini
# Test workers: the suite is dominated by XLA compiles, which parallelise well over processes.
PYTEST_WORKERS ?= 2

.PHONY: install run test test-fast bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The main job: the mini suite (small generated ListOps and Pathfinder; Transformer, S4D, S5, LRU), then its table
# beside the published full-scale numbers and the figure. Rerunning resumes; the table is printed even if a run
# failed, and make then exits with the suite's status.
run: $(STAMP)
	$(PY) -m experiments.reproduce --suite mini --runs-dir $(RUNS_DIR); status=$$?; \
	$(PY) -m experiments.table $(RUNS_DIR) --plot $(RUNS_DIR)/table.png && exit $$status

test: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --durations=15 tests

# Skips the tests marked slow (end-to-end training, resume, multi-device).
test-fast: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) -m "not slow" tests

bench: $(STAMP)
	$(PY) -m experiments.benchmark scan

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
