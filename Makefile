# The few commands people type. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint serve bench schema

$(BIN)/wareports: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/wareports

demo: install
	$(BIN)/wareports demo

serve: install
	$(BIN)/wareports serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

test: lint
	$(BIN)/pytest

bench: install
	$(BIN)/wareports bench

schema: install
	$(BIN)/python -c "from schema import schema; open('schema.graphql', 'w').write(schema.as_str() + '\n')"
