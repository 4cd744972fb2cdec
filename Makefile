# One command per habit: make run, make test, make lint (make dev while changing the app).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
BUN := $(TOOLS)/node_modules/.bin/bun
BUN_VERSION := 1.4.5
# Where `make run` serves the app (frontend and backend on one port). Another port also
# becomes the origin the backend accepts (FRONTEND_URL), unless FRONTEND_URL is set.
PORT ?= 3000

# Reflex finds bun on PATH (the npm package ships the binary), so it never downloads one.
export PATH := $(CURDIR)/$(TOOLS)/node_modules/.bin:$(PATH)
export REFLEX_TELEMETRY_ENABLED := false
export REFLEX_CHECK_LATEST_VERSION := 0

.PHONY: run dev test lint format deps dev-deps bun migrate seed clean bench

$(VENV)/.runtime-installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.runtime-installed
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(BUN):
	mkdir -p $(TOOLS)
	cd $(TOOLS) && npm install --no-audit --no-fund --silent bun@$(BUN_VERSION)

deps: $(VENV)/.runtime-installed
dev-deps: $(VENV)/.dev-installed
bun: $(BUN)

migrate: deps
	$(PY) -m alembic upgrade head

seed: migrate
	$(PY) -m escalation_app.seed

## Run the app as its users get it on http://localhost:3000: the production build, frontend and
## backend on one port (SQLite unless DATABASE_URL says otherwise). Rebuilds only what changed.
run: deps bun seed
	$(if $(filter-out 3000,$(PORT)),FRONTEND_URL=$${FRONTEND_URL:-http://localhost:$(PORT)}) $(VENV)/bin/reflex run --env prod --single-port --frontend-port $(PORT) --backend-port $(PORT)

## For changing the app: Reflex's development servers with hot reload (frontend :3000, backend :8000).
dev: deps bun seed
	$(VENV)/bin/reflex run

## The whole test suite (domain on SQLite + PostgreSQL, services, browser tests in Chromium).
test: dev-deps bun
	$(PY) -m tests.run_suite

lint: dev-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: dev-deps
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: dev-deps bun
	$(PY) -m bench

clean:
	rm -rf .web .states test-artifacts
