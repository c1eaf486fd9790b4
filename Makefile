# farz: two entry points for a fresh machine (Python 3.11+, pip, gcc, git).
#   make demo   install into .venv and run the server, one device agent per sample video and the dashboard
#   make test   install everything CI installs and run what CI runs: ruff, mypy --strict, pytest
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test install-device install-demo install-all lint typecheck pytest bench clean

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

pytest:
	YOLO_OFFLINE=1 $(BIN)/pytest -q

test: install-all lint typecheck pytest

bench: install-all
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build runs .pytest_cache .mypy_cache .ruff_cache
