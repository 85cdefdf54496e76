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

.PHONY: up test lint install install-test bench study clean web browser deploy-tools

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

# The web UI (web/, Vue + Vite) is built into the Python package (services/web/static/),
# which the wheel ships: pip users need no Node. Rebuilt only when web/ or the lockfile
# changed (the built index.html is the stamp); skipped when Node is not installed.
WEB_BUILT := src/pixelmill/services/web/static/index.html
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html \
	web/vite.config.ts web/tsconfig.json web/package.json
NPM := $(shell command -v npm 2>/dev/null)

web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(WEB_BUILT): web/node_modules/.package-lock.json $(WEB_SOURCES)
	cd web && npm run build
	touch $@

ifeq ($(NPM),)
web:
	@test -f $(WEB_BUILT) && echo "npm not found: serving the UI built before" \
		|| echo "npm not found: no web UI (install Node 20 and rerun make)"
else
web: $(WEB_BUILT)
endif

## Chromium for the browser tests: Debian's package (Playwright's download is not used).
browser:
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
		&& apt-get install -y -q chromium; } || echo "no Chromium: the browser tests will skip"

## The deployment tests (tests/unit/deploy) render the Kubernetes overlays with kubectl and
## check the load balancer's config with HAProxy; `pixelmill cluster up` and its test run
## HAProxy; the dashboard, alert-rule and PromQL tests (tests/integration/observability) run
## Prometheus and promtool (package `prometheus`; they start their own server on a free
## port); the many-hosts test (tests/e2e/test_hosts.py) makes network namespaces with
## iproute2's `ip` and `tc`. All distribution packages.
deploy-tools:
	@for tool in kubectl haproxy prometheus; do command -v $$tool >/dev/null || { command -v apt-get >/dev/null \
		&& [ "$$(id -u)" = 0 ] && apt-get install -y -q $$tool; } \
		|| echo "no $$tool: the deployment tests that need it will skip"; done
	@command -v tc >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
		&& apt-get install -y -q iproute2; } || echo "no iproute2: the many-hosts test will skip"

install-test: $(VENV)/.installed-test

## Start the whole platform on http://127.0.0.1:8000 (embedded: SQLite, local folder).
up: install web
	$(BIN)/pixelmill up $(ARGS)

## Style, types and the architecture: layers, no I/O in the core, no import cycles
## (import-linter, contracts in pyproject.toml), modules and functions a reader can hold.
lint: install-test
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python tools/check_size.py src benchmarks

## Install the test dependencies, lint, type-check, and run the whole suite: on both cores
## (pytest-xdist), then alone the few tests that restart a shared server (`exclusive`).
test: install-test web browser deploy-tools lint
	$(BIN)/pytest -q -n 2 -m "not exclusive" --durations=25 $(PYTEST_ARGS)
	$(BIN)/pytest -q -m exclusive --durations=5 $(PYTEST_ARGS)

## Every benchmark in quick mode (a few minutes, 127.0.0.1 only); its headlines go into the
## "Quick run" section of docs/benchmarks.md. Some: make bench ARGS="--only render,jobs".
bench: install-test
	$(BIN)/python benchmarks/run.py $(ARGS)

## The load and scalability study (docs/load-study.md), every experiment in quick mode
## (about 10 minutes, 127.0.0.1 only); one experiment: make study ARGS="b --seconds 10".
study: install-test
	$(BIN)/pip install -q -e ".[study]"
	PYTHONPATH=$(CURDIR)/src $(BIN)/python -m benchmarks.study.experiments $(or $(ARGS),a b c d e f --quick)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
