# Airlake developer entry points. `make help` lists them.
# Every target that needs Python first builds .venv from the pinned requirement files,
# so `make demo` and `make test` work on a fresh machine with Python 3.11, Node 20+ and Java 17.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STAGE ?= dev
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 1
export PYTHONDONTWRITEBYTECODE := 1

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: venv
venv: $(STAMP) ## Create .venv and install the pinned dependencies

.PHONY: demo
demo: $(STAMP) ## Run the whole pipeline locally on the embedded default (no AWS, no Docker)
	$(PY) -m airlake demo $(ARGS)

.PHONY: test
test: $(STAMP) ## Run the test suite (unit, infrastructure, Spark, integration)
	$(PY) -m pytest $(ARGS)

.PHONY: lint
lint: $(STAMP) ## ruff (lint + format check), mypy, sqlfluff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/sqlfluff lint athena

.PHONY: format
format: $(STAMP) ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: synth
synth: $(STAMP) node_modules/.installed ## Synthesize the CDK app with cdk-nag (STAGE=dev|prod)
	npx cdk synth --quiet -c stage=$(STAGE)

.PHONY: deploy
deploy: $(STAMP) node_modules/.installed ## Deploy every stack of a stage to the current AWS account (STAGE=dev|prod)
	npx cdk deploy --all -c stage=$(STAGE) --require-approval broadening

.PHONY: bench
bench: $(STAMP) ## Run the benchmarks; each ends with JSON lines {bench, value, unit, baseline, ratio}
	@set -e; for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b; done

.PHONY: load
load: $(STAMP) ## Load run: >= 1,000,000 readings through the local pipeline (25-40 min on 2 cores)
	$(PY) benchmarks/load_run.py $(ARGS)

.PHONY: clean
clean: ## Remove build outputs and the local lake (keeps .venv)
	rm -rf cdk.out .airlake .pytest_cache .mypy_cache .ruff_cache
