# Alchemiser — one entry point. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --all-packages --locked
PYTEST_ARGS ?=
SRC_DIRS := libs/alchemiser-common/src services/strategy/src services/portfolio/src services/execution/src

.PHONY: help setup lint typecheck imports isolation schemas-check unit test bench run clean

help: ## List every target
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## Install uv if missing and sync the whole workspace from uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --all-packages --locked

lint: setup ## ruff check and format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: setup ## mypy strict over libs/ and services/*/src
	$(RUN) mypy $(SRC_DIRS)

imports: setup ## import-linter: services independent, the library imports no service
	$(RUN) lint-imports

isolation: setup ## Each service imports with only its declared dependencies (uv sync --package)
	@for svc in strategy portfolio execution; do \
		UV_PROJECT_ENVIRONMENT=.venv-isolated/$$svc $(UV) sync -q --package alchemiser-$$svc --locked --no-dev && \
		.venv-isolated/$$svc/bin/python scripts/check_isolation.py alchemiser_$$svc || exit 1; \
	done

schemas-check: setup ## Offline gate: every current schema against every released version
	$(RUN) alchemiser schemas check

unit: setup ## pytest only (PYTEST_ARGS=... to pass options)
	$(RUN) pytest $(PYTEST_ARGS)

test: setup lint typecheck imports isolation schemas-check ## Everything CI runs: lint, types, imports, isolation, schema gate, pytest
	$(RUN) pytest $(PYTEST_ARGS)

bench: setup ## Benchmarks (throughput, strategy evaluation)
	$(RUN) python -m benchmarks

run: setup ## Run the whole system locally (filled in by a later issue)
	@echo "make run is not implemented yet: see the open issues" >&2; exit 1

clean: ## Remove caches and the virtualenv
	rm -rf .venv .venv-isolated .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
