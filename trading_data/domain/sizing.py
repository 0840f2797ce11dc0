"""Position sizing: volatility-targeted shares from ATR, with per-position and gross caps.

With equity ``E``, risk fraction ``r``, stop multiple ``k``, per-position cap ``w_max`` and gross cap
``G`` (fractions of equity), for each active ticker with price ``P`` and ATR ``A``:

1. ``stop_distance = k * A`` and ``risk_amount = E * r`` (the budget each position may lose if the
   stop is hit; the same for every ticker, so a volatile ticker gets fewer shares).
2. ``raw_shares = floor(risk_amount / stop_distance)``.
3. Per-position cap: ``shares = min(raw_shares, floor(w_max * E / P))``.
4. Gross cap: when ``sum(shares * P) > G * E``, every position is scaled by
   ``f = G * E / sum(shares * P)`` and floored again: ``shares = floor(shares * f)``.
5. ``notional = shares * P`` and ``weight = notional / E``.

Floors are taken with a 1e-9 tolerance so that float noise (e.g. 99.99999999999 for an exact 100)
does not cost a share. A ticker with zero ATR keeps a row with 0 shares (no stop can be placed); a
ticker with a missing or non-positive price or a missing ATR gets no row (the PositionSizes model
requires both) — each such case is listed in ``SizingResult.reasons``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from trading_data.schemas import PositionSizes

OUTPUT_COLUMNS = list(PositionSizes.to_schema().columns)
FLOOR_TOLERANCE = 1e-9


@dataclass(frozen=True)
class SizingParams:
    """Account equity and the risk rules; fractions are of ``account_equity``."""

    account_equity: float = 1_000_000.0
    risk_per_trade: float = 0.005
    atr_stop_multiple: float = 2.0
    max_position_weight: float = 0.10
    max_gross_exposure: float = 1.0

    def __post_init__(self) -> None:
        if self.account_equity <= 0:
            raise ValueError("account_equity must be > 0")
        if not 0 < self.risk_per_trade <= 1:
            raise ValueError("risk_per_trade must be in (0, 1]")
        if self.atr_stop_multiple <= 0:
            raise ValueError("atr_stop_multiple must be > 0")
        if not 0 < self.max_position_weight <= 1:
            raise ValueError("max_position_weight must be in (0, 1]")
        if self.max_gross_exposure <= 0:
            raise ValueError("max_gross_exposure must be > 0")


@dataclass(frozen=True)
class SizingResult:
    """The PositionSizes frame and, per ticker sized to 0 shares or left out, the reason."""

    frame: pd.DataFrame
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def gross_notional(self) -> float:
        return float(self.frame["notional"].sum()) if len(self.frame) else 0.0


def _floor(value: float) -> int:
    return max(0, math.floor(value + FLOOR_TOLERANCE))


def size_positions(
    session: dt.date,
    selection: pd.DataFrame,
    params: SizingParams | None = None,
    prices: Mapping[str, float] | None = None,
    now: dt.datetime | pd.Timestamp | None = None,
) -> SizingResult:
    """Size the active tickers of a SelectedTickers frame (formula in the module docstring).

    ``selection`` needs ``ticker``, ``last_close`` and ``atr``; when it has ``is_active`` only active
    rows are sized; ``is_fallback`` is carried over (False when absent). ``prices`` overrides
    ``last_close`` per ticker (e.g. a fresher price at sizing time). Rows keep the input order.
    """
    params = params or SizingParams()
    stamp = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    missing = [c for c in ("ticker", "last_close", "atr") if c not in selection.columns]
    if missing:
        raise ValueError(f"selection frame lacks column(s) {missing}")
    rows = selection
    if "is_active" in rows.columns:
        rows = rows[rows["is_active"].astype(bool)]
    rows = rows.drop_duplicates("ticker", keep="first")

    equity = params.account_equity
    risk_amount = equity * params.risk_per_trade
    position_cap = params.max_position_weight * equity
    reasons: dict[str, str] = {}
    sized: list[dict[str, object]] = []
    for record in rows.to_dict("records"):
        ticker = str(record["ticker"])
        price = float(prices[ticker]) if prices and ticker in prices else _as_float(record["last_close"])
        atr = _as_float(record["atr"])
        if not (math.isfinite(price) and price > 0):
            reasons[ticker] = "no price: not sized"
            continue
        if not (math.isfinite(atr) and atr >= 0):
            reasons[ticker] = "no ATR: not sized"
            continue
        stop_distance = params.atr_stop_multiple * atr
        if stop_distance == 0:
            shares = 0
            reasons[ticker] = "zero ATR: no stop distance, 0 shares"
        else:
            raw_shares = _floor(risk_amount / stop_distance)
            cap_shares = _floor(position_cap / price)
            shares = min(raw_shares, cap_shares)
            if cap_shares < raw_shares:
                reasons[ticker] = f"capped at max_position_weight {params.max_position_weight:g}"
            if shares == 0:
                reasons[ticker] = "risk budget or cap buys less than one share"
        sized.append(
            {
                "ticker": ticker,
                "price": price,
                "atr": atr,
                "stop_distance": stop_distance,
                "risk_amount": risk_amount,
                "shares": shares,
                "is_fallback": bool(record.get("is_fallback", False)),
            }
        )

    frame = pd.DataFrame(
        sized, columns=["ticker", "price", "atr", "stop_distance", "risk_amount", "shares", "is_fallback"]
    )
    gross = float((frame["shares"] * frame["price"]).sum()) if len(frame) else 0.0
    gross_cap = params.max_gross_exposure * equity
    if gross > gross_cap:
        factor = gross_cap / gross
        frame["shares"] = [_floor(s * factor) for s in frame["shares"]]
        for ticker in frame["ticker"]:
            reasons.setdefault(
                ticker, f"scaled by {factor:.4f} to max_gross_exposure {params.max_gross_exposure:g}"
            )
    frame["shares"] = frame["shares"].astype("int64")
    frame["notional"] = frame["shares"] * frame["price"]
    frame["weight"] = frame["notional"] / equity
    frame["session"] = session
    frame["computed_at"] = stamp
    frame = frame.astype(
        {
            "price": "float64",
            "atr": "float64",
            "stop_distance": "float64",
            "risk_amount": "float64",
            "notional": "float64",
            "weight": "float64",
            "is_fallback": "bool",
        }
    )
    return SizingResult(PositionSizes.validate(frame.loc[:, OUTPUT_COLUMNS].reset_index(drop=True)), reasons)


def _as_float(value: object) -> float:
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
    return result if not pd.isna(result) else float("nan")
