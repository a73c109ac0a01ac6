# deskline: `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test test-fast test-faults lint bench clean screenshots

# Re-install whenever pyproject.toml changes.
$(BIN)/.installed-run: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed-dev: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(BIN)/.installed-run $@

## Web + worker (+ embedded Redis when REDIS_URL is unset, sandbox outbox without a token).
run: $(BIN)/.installed-run
	$(BIN)/python -m bot run

## ruff, mypy --strict and the whole pytest suite (the fault suite included, ~2 min of it).
test: $(BIN)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

## pytest only (no lint), for quick iterations: the fault suite is left to `make test-faults`.
test-fast: $(BIN)/.installed-dev
	$(BIN)/python -m pytest -x -q -m "not faults"

## The fault suite alone (tests/faults, RELIABILITY.md): real web, worker and redis-server
## processes, broken on purpose; prints the figures RELIABILITY.md quotes.
test-faults: $(BIN)/.installed-dev
	$(BIN)/python -m pytest -q -m faults tests/faults

$(BIN)/.installed-bench: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $(BIN)/.installed-run $@

## Benchmarks, not part of `make test` (~10 min; `make bench BENCH_ARGS=--quick` ~2 min).
## The load generator is wrk, from Debian; see BENCHMARKS.md.
bench: $(BIN)/.installed-bench
	command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y wrk \
		|| (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## The console's screenshots (docs/screenshots/*.png), taken with Debian's headless Chromium.
screenshots: $(BIN)/.installed-dev
	$(BIN)/python -m pytest -q tests/console/screenshots.py

lint: $(BIN)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
