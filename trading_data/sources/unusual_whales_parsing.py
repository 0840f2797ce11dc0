"""Unusual Whales JSON rows → validated DataFrames (flow alerts, option contract statistics).

Prices, premiums, strikes, IV and greeks arrive as decimal strings; see :mod:`trading_data.sources.columns`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pandas as pd

from trading_data.domain.option_symbols import parse_option_symbol
from trading_data.sources import columns, models
from trading_data.sources.columns import Row


def flow_alert_id(row: Row) -> str:
    """The alert's ``id``; when absent (the spec's REST example has none) a stable digest of its content."""
    if row.get("id"):
        return str(row["id"])
    basis = "|".join(
        str(row.get(k, ""))
        for k in (
            "option_chain",
            "created_at",
            "alert_rule",
            "rule_name",
            "total_size",
            "total_premium",
            "start_time",
        )
    )
    return "sha1:" + hashlib.sha1(basis.encode()).hexdigest()[:20]


def flow_alert_time(row: Row) -> pd.Timestamp:
    """When the alert happened: ``created_at``, else ``executed_at``/``start_time`` (ms)."""
    if row.get("created_at"):
        return columns.parse_created_at(str(row["created_at"]))
    for key in ("executed_at", "end_time", "start_time"):
        if row.get(key) is not None:
            return columns.ms_to_timestamp(row[key])
    raise ValueError(f"flow alert {flow_alert_id(row)} has no created_at")


def flow_alerts_frame(rows: Sequence[Row]) -> pd.DataFrame:
    """``/api/option-trades/flow-alerts`` → ``schemas.OptionsFlow`` rows of type ``flow_alert``."""
    records, tickers, times = [], [], []
    for r in rows:
        osi = parse_option_symbol(r["option_chain"])
        tickers.append(str(r.get("ticker") or osi.root).upper())
        times.append(flow_alert_time(r))
        records.append(
            {
                "record_id": flow_alert_id(r),
                "option_symbol": osi.symbol,
                "expiry": columns.to_date(r["expiry"]) if r.get("expiry") else osi.expiry,
                "strike": columns.to_float(r.get("strike")) or osi.strike,
                "option_type": r.get("type") or osi.option_type,
                "price": columns.to_float(r.get("price")),
                "size": columns.to_int(r.get("total_size")),
                "premium": columns.to_float(r.get("total_premium")),
                "volume": columns.to_float(r.get("volume")),
                "open_interest": columns.to_int(r.get("open_interest")),
                "implied_volatility": columns.to_float(r.get("iv_end", r.get("implied_volatility"))),
                "delta": None,
                "gamma": None,
                "theta": None,
                "vega": None,
                "underlying_price": columns.to_float(r.get("underlying_price")),
                "alert_rule": r.get("alert_rule") or r.get("rule_name"),
            }
        )
    return columns.options_flow_frame(records, ticker=tickers, record_type="flow_alert", ts=times)


def option_contracts_frame(rows: Sequence[Row], underlying: str) -> pd.DataFrame:
    """``/api/stock/{ticker}/option-contracts`` → ``models.OptionContractStats``."""
    records = []
    for r in rows:
        osi = parse_option_symbol(r["option_symbol"])
        records.append(
            {
                "option_symbol": osi.symbol,
                "underlying": underlying,
                "expiry": osi.expiry,
                "option_type": osi.option_type,
                "strike": osi.strike,
                "volume": columns.to_int(r.get("volume")),
                "open_interest": columns.to_int(r.get("open_interest")),
                "prev_open_interest": columns.to_int(r.get("prev_oi")),
                "implied_volatility": columns.to_float(r.get("implied_volatility")),
                "last_price": columns.to_float(r.get("last_price")),
                "avg_price": columns.to_float(r.get("avg_price")),
                "high_price": columns.to_float(r.get("high_price")),
                "low_price": columns.to_float(r.get("low_price")),
                "nbbo_bid": columns.to_float(r.get("nbbo_bid")),
                "nbbo_ask": columns.to_float(r.get("nbbo_ask")),
                "total_premium": columns.to_float(r.get("total_premium")),
                "ask_volume": columns.to_int(r.get("ask_volume")),
                "bid_volume": columns.to_int(r.get("bid_volume")),
                "sweep_volume": columns.to_int(r.get("sweep_volume")),
            }
        )
    ints = ("volume", "open_interest", "prev_open_interest", "ask_volume", "bid_volume", "sweep_volume")
    return columns.records_frame(records, models.OptionContractStats, int_columns=ints)
