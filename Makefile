# The two commands of the README: `make run` (demo platform on SQLite) and `make test` (whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest install system-deps system-deps-dev clean

run: system-deps install
	$(BIN)/imsp serve --migrate --demo

test: system-deps-dev install lint typecheck pytest

lint:
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck:
	$(BIN)/mypy --strict src
	$(BIN)/mypy bench

pytest:
	$(BIN)/pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

system-deps:
	PYTHON=$(PYTHON) ./scripts/install-system-deps.sh

system-deps-dev:
	PYTHON=$(PYTHON) ./scripts/install-system-deps.sh --dev

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
