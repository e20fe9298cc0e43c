# bff: `make help` lists the targets. Everything runs from a local virtualenv (.venv).
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FUZZ_EXAMPLES ?= 750
FUZZ_EXAMPLES_DOWN ?= 700

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "%-12s %s\n", $$1, $$2}'

# The simulators are a distribution of their own (simulators/): installed beside bff, editable, for
# `make run` and the tests; bff's wheel and image carry none of it.
$(STAMP): setup.cfg pyproject.toml simulators/setup.cfg simulators/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,test,otel]' -e ./simulators
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install bff with its dev and test extras, and the simulators

# `exec`: on Ctrl-C the terminal signals make and bff alike; bff stops everything and exits 0.
# Without exec, /bin/sh (dash) between them would die by the signal and make would report
# "*** [run] Interrupt". make itself still ends by the signal afterwards (status 130), silently.
run: install  ## dev mode: simulators + in-process Redis, prints a walk-through
	BFF_ENV=development exec $(BIN)/python -m bff

test: install  ## the suite against the local Redis server, with branch coverage; then test-js
	$(BIN)/pytest --cov --cov-report=term
	@echo "simulators (reported apart, not gated):"
	@$(BIN)/coverage report --include='simulators/*' --omit='none/*' --fail-under=0
	$(MAKE) --no-print-directory test-js

# The Sentinel failover test (tests/session_store/test_sentinel.py) under more load: a master,
# two replicas, three sentinels; 16 threads of sign-ins while the master is SIGKILLed 3 times.
test-sentinel: install  ## Redis Sentinel failovers under load: 16 threads, 3 masters killed (50-70 s)
	BFF_SENTINEL_THREADS=16 BFF_SENTINEL_FAILOVERS=3 $(BIN)/pytest -q -p no:cacheprovider \
	  tests/session_store/test_sentinel.py -k failover

# The lowest versions setup.cfg allows (constraints/lowest.txt), in a venv of their own (with the
# simulators), rebuilt whenever setup.cfg, simulators/setup.cfg or the constraints change. The
# suite without coverage and without the image's build (tests/test_packaging.py installs
# requirements/image.lock in a venv of its own).
LOWEST := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.installed

$(LOWEST_STAMP): setup.cfg pyproject.toml simulators/setup.cfg simulators/pyproject.toml \
  constraints/lowest.txt
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/pip install --quiet --upgrade pip
	$(LOWEST)/bin/pip install --quiet -c constraints/lowest.txt -e '.[dev,test,otel]' -e ./simulators
	touch $@

test-lowest: $(LOWEST_STAMP)  ## the suite on setup.cfg's lowest versions (constraints/lowest.txt): 3-4 min
	$(LOWEST)/bin/pip check
	$(LOWEST)/bin/pytest -p no:cacheprovider \
	  --deselect tests/test_packaging.py::test_wheel_install_and_gunicorn_as_non_root

# The image's dependencies, pinned and hashed, resolved for its Python (python:3.11-slim-bookworm:
# CPython 3.11, glibc 2.36, x86_64) wherever this runs. Pins already in the lock are kept while
# setup.cfg allows them; `make lock LOCK_ARGS=--upgrade` takes the newest (or --upgrade-package X).
LOCK_ARGS ?=

lock: install  ## requirements/image.lock: setup.cfg's install_requires for the image, with hashes
	$(BIN)/uv pip compile setup.cfg --quiet --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_36 --custom-compile-command 'make lock' \
	  --output-file requirements/image.lock $(LOCK_ARGS)

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

# The Kubernetes manifests (deploy/kubernetes/) against the API of this Kubernetes version, offline
# (kubernetes-validate ships the schemas), strict: an unknown field fails. It has no schema for
# kustomization.yaml or the ServiceMonitor (a CRD): tests/test_kubernetes.py checks those.
K8S_VERSION := 1.29.0
K8S_MANIFESTS := $(filter-out %/kustomization.yaml %/servicemonitor.yaml,\
  $(wildcard deploy/kubernetes/*.yaml))

lint: install  ## ruff, mypy, the layer rule (import-linter), hadolint, kubernetes-validate, no dangling doc references
	$(BIN)/ruff check bff simulators tests config bench
	$(BIN)/ruff format --check bff simulators tests config bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile
	$(BIN)/kubernetes-validate --strict --quiet -k $(K8S_VERSION) $(K8S_MANIFESTS)
	@# The repository stands alone: README and docs/ point at no file it does not have.
	@! grep -rnIE 'SPEC\.md|SPEC ?§|IDAAS\.md|\.\./shared' README.md docs/ \
	  || { echo "lint: README.md or docs/ point at SPEC.md, SPEC §n, IDAAS.md or ../shared"; exit 1; }

fuzz: install  ## schemathesis at scale: 10,000+ cases with Redis up and with it down (5-11 min measured)
	BFF_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) BFF_FUZZ_EXAMPLES_REDIS_DOWN=$(FUZZ_EXAMPLES_DOWN) \
	BFF_FUZZ_MIN_CASES=10000 $(BIN)/pytest tests/security/test_fuzz_api.py -q -p no:cacheprovider

typecheck: install  ## mypy --strict
	$(BIN)/mypy

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) setup.cfg bench/setup.sh
	bash bench/setup.sh
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

bench-install: $(BENCH_STAMP)  ## wrk, nginx, redis-server (apt, when missing) and the bench extra

# BENCH_ARGS: more `python -m bench.run` options, e.g. `make bench BENCH_ARGS=--publish`.
BENCH_ARGS ?=

bench: bench-install  ## stub, nginx, floor, bff side by side + ratios, then bench-auth: 8-11 min; bench/out/
	bash bench/setup.sh
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.auth

bench-smoke: bench-install  ## 40-50 s of the same harnesses (CI): all 4 systems, bind+login, 3 checks; exit 1 on any problem
	bash bench/setup.sh
	$(BIN)/python -m bench.run --smoke
	$(BIN)/python -m bench.auth --smoke

bench-workers: bench-install  ## gthread vs gevent, floor and bff: 4-7 min measured; bench/out/
	bash bench/setup.sh
	$(BIN)/python -m bench.run --workers $(BENCH_ARGS)

bench-auth: bench-install  ## forward-auth checks through nginx: static, floor, bff: 2-3 min; bench/out/
	bash bench/setup.sh
	$(BIN)/python -m bench.auth

bench-apps: bench-install  ## one app beside thirteen: CPU per bind of the app lookup, in one process (about 20 s)
	bash bench/setup.sh
	$(BIN)/python -m bench.apps

faults: install  ## three instances, one Redis Cluster, nginx; an instance and a master SIGKILLed: 3-4 min; bench/out/
	$(BIN)/python -m bench.faults

# SOAK_S: how long (600 s by default); SOAK_ARGS: more `python -m bench.soak` options (--signins,
# --checks per second).
SOAK_S ?= 600
SOAK_ARGS ?=

soak: install  ## a steady rate for SOAK_S seconds (10 min) with faults; RSS, fds, Redis clients flat; bench/out/
	$(BIN)/python -m bench.soak --duration $(SOAK_S) $(SOAK_ARGS)

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) $(LOWEST) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov *.egg-info
	rm -rf simulators/*.egg-info
	rm -rf $(MP)/node_modules

.PHONY: help install run test test-js test-sentinel test-lowest lock lint fuzz typecheck bench bench-install
.PHONY: bench-smoke bench-workers bench-auth bench-apps faults soak clean
