"""The SQL that the market-data resource, the checks, the daily report and the breaker run lives in
trading_data.db.queries: their own modules compose no statement."""

import inspect
import re
from types import ModuleType

import pytest

import trading_data.db.queries
import trading_data.db.resources
import trading_data.defs.analytics.assets
import trading_data.defs.analytics.checks
import trading_data.defs.market_data.checks
import trading_data.defs.monitoring.bursts
import trading_data.defs.selection.checks
from trading_data.sources.breaker import CircuitBreaker

STATEMENT = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|COPY)\b [^\"]*\b(FROM|INTO|SET|STDIN)\b|psycopg\.sql|from psycopg import sql"
)
CALLERS = [
    trading_data.db.resources,
    trading_data.defs.selection.checks,
    trading_data.defs.market_data.checks,
    trading_data.defs.analytics.checks,
    trading_data.defs.monitoring.bursts,
    trading_data.defs.analytics.assets,
    inspect.getmodule(CircuitBreaker),
]


@pytest.mark.parametrize("module", CALLERS, ids=lambda m: m.__name__)
def test_callers_hold_no_sql(module: ModuleType) -> None:
    source = inspect.getsource(module)
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    assert not STATEMENT.findall(code), f"{module.__name__} composes SQL; move it to trading_data.db.queries"


def test_the_queries_module_holds_their_statements() -> None:
    source = inspect.getsource(trading_data.db.queries)
    for table in (
        "circuit_breakers",
        "rejects",
        "selected_tickers",
        "position_sizes",
        "daily_report",
        "quotes",
    ):
        assert table in source
