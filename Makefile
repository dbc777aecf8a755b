# Trellis: `make run` starts it with a demo, `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# The bench and load-test commands live in a dev-only app (tests/bench) that only the test
# settings install.
DEV_SETTINGS := DJANGO_SETTINGS_MODULE=tests.settings

.PHONY: run test install frontend frontend-bench chromium services lint typecheck pytest pytest-scale vitest bench bench-compile loadtest bench-canvas bench-runs-page

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/.installed

frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && (npm ci --no-audit --no-fund || npm install --no-audit --no-fund)
	touch $@

frontend: frontend/node_modules/.installed
	cd frontend && npm run build

# The production bundle plus the canvas benchmark hook, in frontend/dist-bench (only the
# canvas benchmark and its test serve it; `make frontend` never ships the hook).
frontend-bench: frontend/node_modules/.installed
	cd frontend && npm run build:bench

chromium:
	@command -v chromium >/dev/null || (apt-get install -y chromium >/dev/null 2>&1 || \
	  (apt-get update >/dev/null && apt-get install -y chromium >/dev/null))

# Start Trellis on the embedded default (SQLite, ORM broker): daphne + one qcluster.
run: install frontend
	$(BIN)/python manage.py serve

services:
	@tests/services.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports  # the layer contracts in pyproject.toml ([tool.importlinter])

typecheck: install
	$(BIN)/mypy designer runtime

vitest: frontend/node_modules/.installed
	cd frontend && npx vitest run

pytest: install frontend frontend-bench chromium
	source <(tests/services.sh) && $(BIN)/pytest && tests/scale/pytest-scale.sh

# The real-worker tests (engine, examples, tests/scale) again on PostgreSQL + Redis.
pytest-scale: install
	source <(tests/services.sh) && tests/scale/pytest-scale.sh

# The full load test (10,000 runs, workers SIGKILLed every few seconds), in the mode the
# environment selects (DATABASE_URL/REDIS_URL: scale-out).
loadtest: install
	$(DEV_SETTINGS) $(BIN)/python manage.py loadtest --runs 10000 --steps 10 --fail-rate 0.01

# Everything CI checks.
test: lint typecheck vitest pytest

bench: install
	$(DEV_SETTINGS) $(BIN)/python manage.py bench

# The product runs page over 100,000 generated runs: the first page and each common filter
# (budget 300 ms), embedded and on PostgreSQL (TEST_DATABASE_URL, from tests/services.sh),
# with EXPLAIN of each filter's query on PostgreSQL.
bench-runs-page: install
	source <(tests/services.sh) && $(DEV_SETTINGS) $(BIN)/python manage.py bench_runs_page --runs 100000

# The compiler on a generated 1,000-sequence x 5-event workflow.
bench-compile: install
	$(DEV_SETTINGS) $(BIN)/python manage.py bench_compile

# Canvas benchmark: a generated 500-sequence / 2,500-event workflow in headless Chromium;
# prints load time and frame rates while panning and zooming (JSON).
bench-canvas: install frontend-bench chromium
	$(BIN)/python -m tests.e2e.bench_canvas
