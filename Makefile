# farz: two entry points for a fresh machine (Python 3.11+, pip, gcc, git).
#   make demo   install into .venv and run the server, one device agent per sample video and the dashboard
#   make test   install everything CI installs and run what CI runs: ruff, mypy --strict, every test
#               (PostgreSQL and Chromium are installed and started by .ci/services; it needs root or sudo)
#   make test-quick   the same without the PostgreSQL and browser tests (they are skipped, and say so)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

SERVICES_ENV = $$(bash .ci/services --env)

.PHONY: demo test test-quick services pytest pytest-all install-device install-demo install-all lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install-device: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[device]'

install-all: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[all]'

install-demo: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[device,server]'

demo: install-demo
	$(BIN)/farz demo

lint:
	$(BIN)/ruff check vision device training server farz bench tests
	$(BIN)/ruff format --check vision device server farz bench
	$(BIN)/lint-imports --no-cache

typecheck:
	$(BIN)/mypy --strict vision device bench/edge.py bench/agent.py
	$(BIN)/mypy server

services:
	@bash .ci/services

pytest-all: services
	env $(SERVICES_ENV) YOLO_OFFLINE=1 $(BIN)/pytest -q

pytest:
	YOLO_OFFLINE=1 $(BIN)/pytest -q

test: services install-all lint typecheck pytest-all

test-quick: install-all lint typecheck pytest

bench: install-all
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build runs .pytest_cache .mypy_cache .ruff_cache
