# The commands the README documents. GNU make; every Python tool runs from .venv/bin explicitly, so no
# virtualenv needs activating. `make` alone lists the targets.

.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
ARGS   ?=

# Stamp files: an install step reruns only when its inputs are newer than its stamp.
PY_STAMP   := $(VENV)/.deps-installed
NODE_STAMP := node_modules/.deps-installed

# Example production values for `check-deploy` only: made up, not used anywhere else. Two different roles
# for DATABASE_URL and DATABASE_OWNER_URL, as in production (check crm.W001 warns when they are the same).
CHECK_DEPLOY_ENV := DJANGO_SETTINGS_MODULE=crm.settings.production \
	DJANGO_SECRET_KEY='example-Zq7vN2kR9xW4mT6pL1sB8dF3hJ5gC0yA-uE7iO2nQ4wK9rX1tV6zM3bP8' \
	DATABASE_URL=postgres://crm_app:example-app-password@db.internal:5432/crm \
	DATABASE_OWNER_URL=postgres://crm_owner:example-owner-password@db.internal:5432/crm \
	REDIS_URL=redis://redis.internal:6379/0 \
	CRM_ENCRYPTION_KEYS=i7f4H1s0WJ8Yl3V6mQz2pK9cR5tB0nD4aE7gX1uL3oM= \
	CRM_BLIND_INDEX_KEY=example-blind-index-key-0123456789abcdef \
	ALLOWED_HOSTS=crm.example.com

.PHONY: help install install-python install-node run test bench lint format migrate seed check-rls \
	check-deploy devstack-start devstack-stop devstack-status clean clean-data

help: ## List the targets
	@echo "Usage: make <target> [ARGS=...] [PORT=8000]"
	@echo
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-zA-Z_-]*:.*## / { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

# --- Installation --------------------------------------------------------------------------------------

install: install-python install-node ## Create .venv, install Python deps (pyproject.toml) and npm ci

install-python: $(PY_STAMP) ## Only the Python part of install

install-node: $(NODE_STAMP) ## Only the front-end packages (npm ci)

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "error: Python 3.11+ is needed; try: make PYTHON=python3.11 install" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip

# pyproject.toml is not an installable package: read its dependency lists (runtime + dev) with tomllib.
$(PY_STAMP): pyproject.toml | $(PY)
	$(PY) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
		print("\n".join(p["dependencies"] + p["optional-dependencies"]["dev"]))' > $(VENV)/requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r $(VENV)/requirements.txt
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "error: npm (Node.js 20+) is needed for the front-end packages" >&2; exit 1; }
	npm ci --no-audit --no-fund
	@touch $@

# --- Running -------------------------------------------------------------------------------------------

run: install ## Dev stack + migrate + demo data, then runserver, Celery worker and beat (Ctrl-C stops all)
	PORT=$(PORT) $(PY) scripts/run_dev.py

test: install ## The whole test suite (pytest; pass options with ARGS="-k foo -x")
	$(VENV)/bin/pytest $(ARGS)

bench: install ## Benchmarks in tests/benchmarks (not part of `make test`)
	$(VENV)/bin/pytest tests/benchmarks -p no:cacheprovider -o addopts="" $(ARGS)

lint: install-python ## ruff check + ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-python ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: install-python ## Apply migrations (as the owner role, automatically)
	$(PY) manage.py migrate

seed: install-python ## Load the demo organizations, users and customers (idempotent)
	$(PY) manage.py seed_demo

check-rls: install-python ## Fail if a tenant table lacks forced RLS or the app role could bypass it
	$(PY) manage.py check_rls

check-deploy: install-python ## manage.py check --deploy with the production settings and example values
	$(CHECK_DEPLOY_ENV) $(PY) manage.py check --deploy --fail-level WARNING

# --- Embedded dev stack (PostgreSQL + Redis under .devdata/) -------------------------------------------

devstack-start: install-python ## Start the embedded PostgreSQL and Redis (a no-op if running)
	$(PY) -m crm.devstack start

devstack-stop: install-python ## Stop them (data in .devdata/ is kept)
	$(PY) -m crm.devstack stop

devstack-status: install-python ## Show whether they are running, and their ports
	$(PY) -m crm.devstack status

# --- Cleaning ------------------------------------------------------------------------------------------

clean: ## Remove .venv, node_modules and staticfiles (keeps .devdata/)
	rm -rf $(VENV) node_modules staticfiles .pytest_cache .ruff_cache

clean-data: ## Stop the dev stack and delete .devdata/ (all local data)
	@if [ -x $(PY) ]; then $(PY) -m crm.devstack stop; fi
	rm -rf .devdata
