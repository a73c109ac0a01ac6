# deskline: `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

# Every dependency (extras included) pinned: `make lock` writes it from pyproject.toml.
LOCK   := constraints.txt
PIP    := $(BIN)/python -m pip install --quiet -c $(LOCK)
# pip-tools lives in a venv of its own, so that it never shows up in the app's.
LOCK_TOOLS := $(VENV)/lock-tools

.PHONY: run test test-fast test-faults lint bench clean screenshots lock

# Re-install whenever pyproject.toml or the lock changes.
$(BIN)/.installed-run: pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(PIP) -e .
	touch $@

$(BIN)/.installed-dev: pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(PIP) -e '.[dev]'
	touch $(BIN)/.installed-run $@

## Refresh constraints.txt from pyproject.toml (pip-compile, every extra): after a change of
## dependencies; `make lock LOCK_ARGS=--upgrade` also takes the newest allowed versions.
lock:
	test -x $(LOCK_TOOLS)/bin/pip-compile || ($(PYTHON) -m venv $(LOCK_TOOLS) \
		&& $(LOCK_TOOLS)/bin/python -m pip install --quiet pip-tools)
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_TOOLS)/bin/pip-compile --quiet --all-extras \
		--strip-extras --no-emit-index-url --no-emit-trusted-host --no-emit-find-links \
		$(LOCK_ARGS) --output-file $(LOCK) pyproject.toml

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

$(BIN)/.installed-bench: pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(PIP) -e '.[bench]'
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
