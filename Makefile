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
	@echo "make bench - all benchmarks (bench-ingest, bench-transform, bench-forecast, bench-api)"
	@echo "make test-browser - the dashboard test in headless Chromium"
	@echo "make install-size - installed size of each service's extra in a clean venv (600 MB target)"
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
	$(BIN)/python -m pytest --durations=30

# Benchmarks: `make bench` runs them all; pass options with BENCH_ARGS="--quick".
bench: bench-ingest bench-transform bench-forecast bench-api

.PHONY: bench-ingest
bench-ingest: $(INSTALLED)
	$(BIN)/python -m bench.ingest $(BENCH_ARGS)

.PHONY: bench-transform
bench-transform: $(INSTALLED)
	$(BIN)/python -m bench.transform $(BENCH_ARGS)

.PHONY: bench-forecast
bench-forecast: $(INSTALLED)
	$(BIN)/python -m bench.forecast $(BENCH_ARGS)

.PHONY: bench-api
bench-api: $(INSTALLED)
	$(BIN)/python -m bench.api $(BENCH_ARGS)

# The dashboard in headless Chromium (also part of `make test`; skipped without Chromium).
.PHONY: test-browser
test-browser: $(INSTALLED)
	$(BIN)/python -m pytest tests/api/test_dashboard_browser.py -v

# Installed size of each service's dependency set, each in a clean virtualenv (a few minutes):
# api, ingestor and transformer under 600 MB each, the forecaster reported apart. Also imports
# every module each service can reach inside its venv. INSTALL_SIZE_ARGS="--extras api" etc.
INSTALL_SIZE_ARGS ?= --check-imports
.PHONY: install-size
install-size: $(INSTALLED)
	$(BIN)/python deploy/install_size.py $(INSTALL_SIZE_ARGS)

clean:
	rm -rf $(VENV) var
