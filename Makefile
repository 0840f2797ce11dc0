# Every target does its own set-up: a fresh machine needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install dev test test-fast test-times test-ui test-destructive test-cluster lint bench-io bench-ingest bench-sources bench-quotes-session bench-startup bench-session-run bench-freshness bench-rate-limit clean db-start db-stop

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

# The time-sensitive tests (pytest -m clock) with the platform's clock pinned (--now sets TRADING_DATA_NOW):
# a session morning, mid-session, after the close, a weekend and a holiday. Every pin runs; any failure fails.
CLOCK_PINS := session-morning=2026-12-01T09:20-05:00 during-session=2026-12-01T14:09-05:00 \
	after-close=2026-12-01T17:30-05:00 weekend=2026-11-29T12:00-05:00 holiday=2026-11-26T11:00-05:00
test-times: $(STAMP)
	$(BIN)/trading-data db start
	@failed=""; for pin in $(CLOCK_PINS); do \
		name=$${pin%%=*}; now=$${pin#*=}; \
		echo "== make test-times: $$name, --now=$$now =="; \
		$(BIN)/pytest -n 2 --dist loadgroup -q -m clock --now=$$now || failed="$$failed $$name"; \
	done; \
	if [ -n "$$failed" ]; then echo "make test-times: FAILED at:$$failed"; exit 1; fi; \
	echo "make test-times: passed at all five pinned times"

# The headless-browser test needs Debian's chromium (browser downloads are blocked here).
test-ui: $(STAMP)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || echo "no chromium: the browser test will be skipped (as root: apt-get install -y chromium)"
	$(BIN)/trading-data db start
	$(BIN)/pytest -q -m slow trading_data_tests/processes/test_ui.py

# Restarts a PostgreSQL server mid-write and SIGKILLs a run worker: on a private server of its own.
FAULT_PG := TRADING_DATA_PGDATA=$(CURDIR)/.pgdata-faults TRADING_DATA_PG_PORT=54339
test-destructive: $(STAMP)
	$(FAULT_PG) TRADING_DATA_DESTRUCTIVE_TESTS=1 $(BIN)/pytest -q trading_data_tests/faults; \
	status=$$?; $(FAULT_PG) $(BIN)/trading-data db stop; exit $$status

# Two worker "hosts" (network namespaces, as root) run a 5-session backfill on Celery over the local RabbitMQ,
# one host SIGKILLed mid-step: on a private PostgreSQL server of its own.
CLUSTER_PG := TRADING_DATA_PGDATA=$(CURDIR)/.pgdata-cluster TRADING_DATA_PG_PORT=54338
test-cluster: $(STAMP)
	$(CLUSTER_PG) $(BIN)/trading-data db start
	$(CLUSTER_PG) TRADING_DATA_CLUSTER_TESTS=1 $(BIN)/pytest -n 0 -q -m cluster trading_data_tests/cluster; \
	status=$$?; $(CLUSTER_PG) $(BIN)/trading-data db stop; exit $$status

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow and not browser"

# dg reads [tool.dg.project] in pyproject.toml; VIRTUAL_ENV tells it the project's .venv is the one in use.
# Lint needs no database: dg checks the definitions against a throwaway instance, not the project's
# dagster.yaml (whose storage is the PostgreSQL server `make test` starts after lint).
DG := VIRTUAL_ENV=$(CURDIR)/$(VENV) DAGSTER_HOME=$$(mktemp -d) $(BIN)/dg

lint: $(STAMP)
	$(BIN)/ruff check trading_data trading_data_tests bench
	$(BIN)/ruff format --check trading_data trading_data_tests bench
	$(BIN)/mypy trading_data
	$(DG) check defs
	$(DG) list defs > /dev/null

bench-io: $(STAMP)
	$(BIN)/trading-data db start
	$(BIN)/python bench/bench_io.py

bench-ingest: $(STAMP)
	$(BIN)/trading-data db start
	$(BIN)/python bench/bench_ingest.py

bench-sources: $(STAMP)
	$(BIN)/python bench/bench_sources.py

bench-quotes-session: $(STAMP)
	$(BIN)/trading-data db start
	$(BIN)/python bench/bench_quotes_session.py

bench-startup: $(STAMP)
	$(BIN)/python bench/bench_startup.py

bench-session-run: $(STAMP)
	$(BIN)/trading-data db start
	$(BIN)/python bench/bench_session_run.py

bench-rate-limit: $(STAMP)
	$(BIN)/trading-data db start
	$(BIN)/trading-data db migrate
	$(BIN)/python bench/bench_rate_limit.py

bench-freshness: $(STAMP)
	$(BIN)/trading-data db start
	$(BIN)/python bench/bench_freshness.py

db-start: $(STAMP)
	$(BIN)/trading-data db start

db-stop: $(STAMP)
	$(BIN)/trading-data db stop

clean:
	-$(BIN)/trading-data db stop
	rm -rf $(VENV) .pgdata .pgdata-faults .pgdata-cluster .dagster_home
