# Two commands for a fresh clone: `make run` and `make test`. Everything else is installed here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint bench clean help

help:
	@echo "make run   - install, start the whole stack with demo data, print where to look"
	@echo "make test  - install and run the whole test suite (lint included)"
	@echo "make lint  - ruff"
	@echo "make clean - remove the virtualenv and local state (var/)"

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	@touch $@

run: $(INSTALLED)
	$(BIN)/nova up

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(INSTALLED) lint
	$(BIN)/python -m pytest

# Benchmarks: `make bench` runs them all; pass options with BENCH_ARGS="--quick".
bench: bench-ingest bench-transform bench-forecast

.PHONY: bench-ingest
bench-ingest: $(INSTALLED)
	$(BIN)/python -m bench.ingest $(BENCH_ARGS)

.PHONY: bench-transform
bench-transform: $(INSTALLED)
	$(BIN)/python -m bench.transform $(BENCH_ARGS)

.PHONY: bench-forecast
bench-forecast: $(INSTALLED)
	$(BIN)/python -m bench.forecast $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var
