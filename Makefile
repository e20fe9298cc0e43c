# bff: `make help` lists the targets. Everything runs from a local virtualenv (.venv).
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "%-12s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,test]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install bff with its dev and test extras

run: install  ## dev mode: simulators + in-process Redis, prints a walk-through
	BFF_ENV=development $(BIN)/python -m bff

test: install  ## the suite against the local Redis server, with branch coverage; then test-js
	$(BIN)/pytest --cov --cov-report=term
	$(MAKE) --no-print-directory test-js

# The mini program's client (miniprogram/): npm dev dependencies (pinned in package-lock.json,
# installed again only when it changes), tsc --noEmit, then node --test (unit tests, end to end
# against the dev server on free ports, the OpenAPI contract, miniprogram-simulate).
MP := miniprogram
MP_STAMP := $(MP)/node_modules/.installed

$(MP_STAMP): $(MP)/package.json $(MP)/package-lock.json
	cd $(MP) && npm ci --no-audit --no-fund
	touch $@

test-js: install  ## the mini program's client: tsc and node --test (skipped without node/npm)
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
		echo "SKIP test-js: node and npm are needed for miniprogram/ (Node 20+); not found on PATH"; \
	else \
		$(MAKE) --no-print-directory $(MP_STAMP) && \
		cd $(MP) && node_modules/.bin/tsc --noEmit -p tsconfig.json && \
		node --test --test-concurrency=1 test/*.test.js; \
	fi

lint: install  ## ruff, mypy and hadolint
	$(BIN)/ruff check bff tests config bench
	$(BIN)/ruff format --check bff tests config bench
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

typecheck: install  ## mypy --strict
	$(BIN)/mypy

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) setup.cfg bench/setup.sh
	bash bench/setup.sh
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

bench-install: $(BENCH_STAMP)  ## wrk, nginx, redis-server (apt, when missing) and the bench extra

bench: bench-install  ## full benchmark, about 6 minutes (see docs/performance.md); not in `make test`
	bash bench/setup.sh
	$(BIN)/python -m bench.run

bench-smoke: bench-install  ## about 10 seconds of the same harness, to keep it from rotting
	bash bench/setup.sh
	$(BIN)/python -m bench.run --smoke

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov *.egg-info
	rm -rf $(MP)/node_modules

.PHONY: help install run test test-js lint typecheck bench bench-install bench-smoke clean
