# The two set-up commands of the README are `make up` and `make test`.
# Both are idempotent: the virtualenv is (re)installed only when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch: only this exact version (a local CPU wheel here); any range pulls CUDA builds.
TORCH := torch==2.13.0
# the venv's own tools, pinned to current releases (the interpreter's bundled setuptools
# 65.5 has known CVEs); existing venvs get them on their next install too
PIP_TOOLS := pip==26.3 setuptools==84.2.1

.PHONY: up test lint install install-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade $(PIP_TOOLS)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade $(PIP_TOOLS)
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[test,train]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

## Start the whole platform on http://127.0.0.1:8000 (embedded: SQLite, local folder).
up: install
	$(BIN)/pixelmill up $(ARGS)

## Style, types and the architecture: layers, no I/O in the core, no import cycles
## (import-linter, contracts in pyproject.toml), modules and functions a reader can hold.
lint: install-test
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python tools/check_size.py src benchmarks

## Install the test dependencies, lint, type-check, and run the whole suite.
test: install-test lint
	$(BIN)/pytest -q $(PYTEST_ARGS)

## Every benchmark in quick mode (a few minutes, 127.0.0.1 only); its headlines go into the
## "Quick run" section of docs/benchmarks.md. Some: make bench ARGS="--only render,jobs".
bench: install-test
	$(BIN)/python benchmarks/run.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
