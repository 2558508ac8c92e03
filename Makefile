# calsync's two everyday commands (see README.md):
#   make dev    set up a virtualenv and run the whole service on the embedded default
#   make test   set up, start PostgreSQL and Redis if needed, lint, type-check, test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint typecheck check-deploy pytest services setup clean lock contract

# The RFC 5545 oracle of the differential tests (pyproject's `oracle` extra, decision O1):
# installed without its dependency metadata, which caps python-dateutil below calsync's.
ORACLE = recurring-ical-events x-wr-timezone

# Every dependency is installed at the exact version in constraints.txt (make lock).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps -c constraints.txt $(ORACLE)
	touch $(STAMP)

# Re-pin constraints.txt to what a fresh install of pyproject.toml resolves to today.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e '.[dev]'
	.lock-venv/bin/pip install --quiet --no-deps $(ORACLE)
	{ sed -n '1,2p' constraints.txt; .lock-venv/bin/pip freeze --all --exclude-editable \
	  | grep -v '^setuptools=\|^wheel='; } > constraints.new && mv constraints.new constraints.txt
	rm -rf .lock-venv

setup: $(STAMP)

dev: $(STAMP)
	$(BIN)/calsync dev

services:
	bash scripts/ensure-services

lint: $(STAMP)
	$(BIN)/ruff check calsync workers migrations tests
	$(BIN)/ruff format --check calsync workers migrations tests

typecheck: $(STAMP)
	$(BIN)/mypy

check-deploy: $(STAMP)
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec compose.yaml

# `pytest tests` as two processes, one per core, each with its own Redis test database
# (scripts/run-tests).
pytest: $(STAMP) services
	bash scripts/run-tests

test: lint typecheck check-deploy pytest

# The API contract alone: the document is valid OpenAPI, answers fit the models, the
# reference is current, and schemathesis runs every operation with every check.
contract: $(STAMP) services
	$(BIN)/python -m pytest tests/integration/events/test_openapi.py \
	  tests/unit/deploy/test_api_reference.py tests/fuzz/test_schemathesis.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
