# Every target does its own set-up: a fresh machine needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test test-fast lint bench-io bench-sources test-ui clean db-start db-stop

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/trading-data dev

test: $(STAMP) lint
	$(BIN)/trading-data db start
	$(BIN)/pytest -n 2 --dist loadgroup -q

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow and not browser"

lint: $(STAMP)
	$(BIN)/ruff check trading_data trading_data_tests bench
	$(BIN)/mypy trading_data

bench-io: $(STAMP)
	$(BIN)/trading-data db start
	$(BIN)/python bench/bench_io.py

bench-sources: $(STAMP)
	$(BIN)/python bench/bench_sources.py

db-start: $(STAMP)
	$(BIN)/trading-data db start

db-stop: $(STAMP)
	$(BIN)/trading-data db stop

clean:
	-$(BIN)/trading-data db stop
	rm -rf $(VENV) .pgdata .dagster_home
