# `make demo` runs the pipeline on embedded defaults; `make test` runs the tests against real
# servers. Both install what they need first: Debian packages when missing, then a virtual
# environment with the locked Python packages.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench lock clean

setup: $(STAMP)
	@scripts/install-system-packages.sh

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	@touch $(STAMP)

demo: setup
	$(BIN)/vitals demo

# Four workers, a test file each at a time (module fixtures run once), the longest files first
# (tests/conftest.py): most tests wait on real servers and processes rather than compute (the
# suite keeps about 1.5 of the 2 cores busy), so 2 cores carry 4 files at once.
test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -n 4 --dist loadfile --no-loadscope-reorder

lint: setup
	$(BIN)/ruff check .

# Every benchmark, each in its own process, then one table against the targets:
# bench/results/latest.md and .json (~10 minutes; BENCH_ARGS=--quick for a short check).
# See bench/README.md.
bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

# Re-pin every Python package after changing pyproject.toml's dependencies.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q -e '.[dev]'
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
