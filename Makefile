# One command per habit: make run, make test, make lint.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
BUN := $(TOOLS)/node_modules/.bin/bun
BUN_VERSION := 1.4.5

# Reflex finds bun on PATH (the npm package ships the binary), so it never downloads one.
export PATH := $(CURDIR)/$(TOOLS)/node_modules/.bin:$(PATH)
export REFLEX_TELEMETRY_ENABLED := false
export REFLEX_CHECK_LATEST_VERSION := 0

.PHONY: run test lint format deps dev-deps bun migrate seed clean bench

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

## Run the app on http://localhost:3000 (backend :8000), SQLite unless DATABASE_URL says otherwise.
run: deps bun seed
	$(VENV)/bin/reflex run

## The whole test suite (domain on SQLite + PostgreSQL, services, browser tests in Chromium).
test: dev-deps bun
	$(PY) -m pytest

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
