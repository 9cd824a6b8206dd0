# civicfed — the two commands of the README, and a few more.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Resource IRIs start with the base IRI; by default, where `make run` serves.
export CIVICFED_BASE_URI ?= http://$(HOST):$(PORT)

.PHONY: run test test-fast bench soak lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

## make run: install, load the demo data into the embedded store if it is empty, serve on http://$(HOST):$(PORT)
run: $(VENV)/.installed
	$(BIN)/civicfed demo load --if-empty
	$(BIN)/civicfed serve --host $(HOST) --port $(PORT)

## make test: install with the test extra, run the whole suite, one worker per CPU (TEST_WORKERS=0: in this process)
# A test file stays on one worker (--dist loadfile): its module fixtures and the peers it starts
# are its own, and so are its stores (embedded, or an Oxigraph server per worker). On a SPARQL
# server the workers would share (CIVICFED_TEST_STORE=<url>), use TEST_WORKERS=0: see .ci/run.
TEST_WORKERS ?= auto
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

## make test-fast: the tests that start no server and no process, on the embedded store (well under a minute)
test-fast: $(VENV)/.installed-test
	CIVICFED_TEST_STORE=embedded $(BIN)/python -m pytest -m "not live and not slow" -q $(PYTEST_ARGS)

## make bench: benchmarks (figures printed against baselines measured in the same run)
# A benchmark installs nothing on the machine: what is missing is said, and measured without.
bench: $(VENV)/.installed-test
	@command -v wrk >/dev/null || echo "wrk is not installed (to use it: apt-get install wrk);" \
	  "throughput is measured with a Python client instead (slower, shares the CPU)" >&2
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## make soak: one server under a mixed load for 10 minutes (SOAK_ARGS="--minutes 1" for a short run): errors, latency of the first and last minute, memory; fails on any server error
soak: $(VENV)/.installed-test
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

## make lint: ruff, and the import layers of docs/architecture.md (import-linter contracts in pyproject.toml)
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache *.egg-info
