# Two commands on a fresh machine: `make run` serves, `make test` runs every check and test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install lint layers typecheck pytest migrate bench clean

run: install
	$(BIN)/tradegraph serve

test: install lint layers typecheck pytest

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

layers:
	$(BIN)/lint-imports

typecheck:
	$(BIN)/mypy --strict

pytest:
	$(BIN)/pytest

migrate: install
	$(BIN)/tradegraph migrate

bench: install
	$(BIN)/python bench/runs_wait.py

clean:
	rm -rf $(VENV) .tradegraph .pytest_cache .mypy_cache .ruff_cache test-artifacts
