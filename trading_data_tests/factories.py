"""Valid sample frames for every table, for storage tests (not vendor data: see the simulator)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import psycopg
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID

from trading_data.calendar import session
from trading_data.schemas import TABLES

TICKERS = ["AAPL", "MSFT", "NVDA", "BRK.B"]


def _minutes(session_key: str, n: int) -> pd.DatetimeIndex:
    opened = pd.Timestamp(session(session_key).open)
    return pd.DatetimeIndex(
        [opened + pd.Timedelta(minutes=i % 200, seconds=i // 200) for i in range(n)]
    ).tz_convert("UTC")


def sample_frame(table: str, session_key: str, n: int = 8, *, seed: int = 0) -> pd.DataFrame:
    """``n`` valid rows of ``table`` inside the session ``session_key`` (keys unique)."""
    rng = np.random.default_rng(seed)
    day = dt.date.fromisoformat(session_key)
    ts = _minutes(session_key, n)
    tickers = [TICKERS[i % len(TICKERS)] for i in range(n)]
    now = pd.Timestamp("2026-11-27 15:00", tz="UTC")
    price = 100 + rng.random(n)
    f = np.full(n, 1.0)
    if table in ("selected_tickers", "position_sizes", "daily_report"):
        tickers = [f"T{i}" if i >= len(TICKERS) else TICKERS[i] for i in range(n)]
    frames = {
        "selected_tickers": lambda: pd.DataFrame(
            {
                "session": [day] * n,
                "ticker": tickers,
                "avg_volume": f * 2e6,
                "last_close": price,
                "atr": f,
                "volatility": f / 100,
                "relative_volume": f,
                "momentum": f / 10,
                "opportunity_score": f / 2,
                "rank": pd.array(range(1, n + 1), dtype="Int64"),
                "in_focus": True,
                "is_active": True,
                "is_fallback": False,
                "selection_source": "selection",
                "selected_at": now,
            }
        ),
        "position_sizes": lambda: pd.DataFrame(
            {
                "session": [day] * n,
                "ticker": tickers,
                "price": price,
                "atr": f,
                "stop_distance": 2 * f,
                "risk_amount": 5000 * f,
                "shares": np.full(n, 100),
                "notional": price * 100,
                "weight": price * 100 / 1e6,
                "is_fallback": False,
                "computed_at": now,
            }
        ),
        "prices": lambda: pd.DataFrame(
            {
                "ts": ts,
                "ticker": tickers,
                "timespan": "minute",
                "open": price,
                "high": price + 1,
                "low": price - 1,
                "close": price,
                "volume": f * 100.5,
                "vwap": price,
                "transactions": pd.array([5] * n, dtype="Int64"),
            }
        ),
        "quotes": lambda: pd.DataFrame(
            {
                "ts": ts,
                "ticker": tickers,
                "sequence_number": np.arange(n),
                "sip_ns": ts.asi8,
                "participant_ns": pd.array([None] * n, dtype="Int64"),
                "bid_price": price,
                "bid_size": f * 3,
                "bid_exchange": pd.array([11] * n, dtype="Int64"),
                "ask_price": price + 0.01,
                "ask_size": f * 2,
                "ask_exchange": pd.array([12] * n, dtype="Int64"),
                "tape": pd.array([3] * n, dtype="Int64"),
            }
        ),
        "trades": lambda: pd.DataFrame(
            {
                "ts": ts,
                "ticker": tickers,
                "sequence_number": np.arange(n),
                "exchange": np.full(n, 4),
                "trade_id": [str(i) for i in range(n)],
                "sip_ns": ts.asi8,
                "participant_ns": pd.array(ts.asi8 - 1000, dtype="Int64"),
                "price": price,
                "size": f * 10,
                "conditions": ["12,37"] * n,
                "tape": pd.array([3] * n, dtype="Int64"),
            }
        ),
        "options_flow": lambda: pd.DataFrame(
            {
                "ts": ts,
                "ticker": tickers,
                "record_type": "flow_alert",
                "record_id": [f"id-{i}" for i in range(n)],
                "option_symbol": [f"{t.replace('.', '')}261218C00150000" for t in tickers],
                "expiry": [dt.date(2026, 12, 18)] * n,
                "strike": f * 150,
                "option_type": "call",
                "price": f,
                "size": pd.array([10] * n, dtype="Int64"),
                "premium": f * 1000,
                "volume": f * 50,
                "open_interest": pd.array([100] * n, dtype="Int64"),
                "implied_volatility": f / 3,
                "delta": f / 2,
                "gamma": f / 100,
                "theta": -f / 10,
                "vega": f / 10,
                "underlying_price": price,
                "alert_rule": "RepeatedHits",
            }
        ),
        "indicators": lambda: pd.DataFrame(
            {
                "ts": ts,
                "ticker": tickers,
                "close": price,
                **{
                    c: price
                    for c in ("sma_20", "ema_12", "ema_26", "bb_upper", "bb_middle", "bb_lower", "vwap")
                },
                "rsi_14": f * 50,
                "macd": f / 10,
                "macd_signal": f / 20,
                "macd_hist": f / 20,
                "atr_14": f,
            }
        ),
        "daily_report": lambda: pd.DataFrame(
            {
                "session": [day] * n,
                "table_name": "quotes",
                "ticker": tickers,
                "rows": np.full(n, 10),
                "expected_minutes": np.full(n, 390),
                "covered_minutes": np.full(n, 300),
                "coverage": f * 300 / 390,
                "gaps": np.full(n, 1),
                "max_gap_minutes": np.full(n, 7),
                "validation_failures": np.zeros(n, int),
                "last_ts": ts,
                "freshness_minutes": f * 3,
                "trade_volume": np.nan,
                "day_bar_volume": np.nan,
                "volume_deviation": np.nan,
                "traded_minutes": pd.array([None] * n, dtype="Int64"),
                "traded_minutes_with_bar": pd.array([None] * n, dtype="Int64"),
                "quoted_half_hours": pd.array(np.full(n, 13), dtype="Int64"),
                "expected_half_hours": pd.array(np.full(n, 13), dtype="Int64"),
                "reconciliation": "ok",
            }
        ),
    }
    frame = frames[table]()
    return TABLES[table].model.validate(frame[TABLES[table].columns])


def small_tickers(count: int) -> list[str]:
    """The simulator's ``count`` quietest liquid tickers: whole sessions of them load in seconds."""
    from trading_data.sources.simulator.market import SimulatedMarket

    profiles = sorted(
        (p for p in SimulatedMarket().universe() if p.avg_volume >= 400_000), key=lambda p: p.avg_volume
    )
    return sorted(p.ticker for p in profiles[:count])


def materialize_session(
    url: str,
    sim_url: str,
    session_key: str,
    selection: list[str],
    *,
    tickers: list[str] | None = None,
    strict: bool = False,
    instance: Any = None,
) -> Any:
    """Materialize ``selection`` of the real asset graph for one session against a real database and
    the simulator (or anything speaking its HTTP) at ``sim_url``; failures are returned, not raised."""
    import dagster as dg

    from trading_data.definitions import ASSETS

    resources = simulator_resources(url, sim_url, tickers=tickers, strict=strict, retry_attempts=2)
    return dg.materialize(
        ASSETS,
        partition_key=session_key,
        resources=resources,
        selection=selection,
        instance=instance,
        raise_on_error=False,
    )


def simulator_resources(
    url: str, sim_url: str, *, tickers: list[str] | None = None, strict: bool = False, **polygon: Any
) -> dict[str, Any]:
    """The platform's resources against a real database and the simulator (or anything speaking its HTTP)
    at ``sim_url``, with fast client retries; ``polygon`` adds PolygonResource options."""
    from trading_data.db.io_manager import PostgresPandasIOManager
    from trading_data.db.resources import MarketDatabase
    from trading_data.settings import PipelineSettingsResource
    from trading_data.sources.resources import PolygonResource, UnusualWhalesResource

    return {
        "io_manager": PostgresPandasIOManager(database_url=url),
        "database": MarketDatabase(database_url=url),
        "settings": PipelineSettingsResource(symbols=tickers, strict_validation=strict),
        "polygon": PolygonResource(
            source="simulated", simulator_url=sim_url, retry_initial_wait_seconds=0.01, **polygon
        ),
        "unusual_whales": UnusualWhalesResource(
            source="simulated", simulator_url=sim_url, retry_initial_wait_seconds=0.01
        ),
    }


def truncate_market(database_url: str) -> None:
    """Empty every market table (base tables only: the views of migration 0004 cannot be truncated)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'market' "
                "AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations'"
            )
        ]
        conn.execute("TRUNCATE " + ", ".join(f"market.{t}" for t in tables))


def materialize_at(
    instance: dg.DagsterInstance, asset: str, partition: str, when: dt.datetime, rows: int | None = None
) -> None:
    """Record a materialization of ``asset``'s ``partition`` stamped ``when`` (as a run would, with its
    row and ticker counts when ``rows`` is given), for the freshness rules to judge."""
    metadata = {"dagster/row_count": rows, "active_tickers": 10} if rows is not None else {}
    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        event_specific_data=StepMaterializationData(
            dg.AssetMaterialization(asset, partition=partition, metadata=metadata)
        ),
        job_name=RUNLESS_JOB_NAME,
    )
    instance.report_dagster_event(event, run_id=RUNLESS_RUN_ID, timestamp=when.timestamp())


def execute_run_request(
    defs: dg.Definitions, job_name: str, instance: dg.DagsterInstance, request: dg.RunRequest
) -> dg.ExecuteInProcessResult:
    """Run what a schedule tick asked for (its partition, asset selection and tags) in process, as the
    daemon would launch it."""
    return defs.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        asset_selection=list(request.asset_selection or []),
        tags=request.tags,
    )
