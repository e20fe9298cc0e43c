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

test: install  ## the suite against the local Redis server, with branch coverage
	$(BIN)/pytest --cov --cov-report=term

lint: install  ## ruff, mypy and hadolint
	$(BIN)/ruff check bff tests config bench
	$(BIN)/ruff format --check bff tests config bench
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

typecheck: install  ## mypy --strict
	$(BIN)/mypy

bench: install  ## full benchmark (see docs/performance.md); not part of `make test`
	$(BIN)/python -m bench.run

bench-smoke: install  ## a few seconds of the benchmark harness, to keep it from rotting
	$(BIN)/python -m bench.run --smoke

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov *.egg-info

.PHONY: help install run test lint typecheck bench bench-smoke clean
