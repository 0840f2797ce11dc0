"""Position sizing: hand-worked shares, per-position and gross caps, degenerate inputs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from trading_data.domain.sizing import SizingParams, size_positions
from trading_data.schemas import PositionSizes

SESSION = dt.date(2026, 11, 27)
NOW = pd.Timestamp("2026-11-27 14:45", tz="UTC")


def selection() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticker": ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"],
            "last_close": [50.0, 400.0, 30.0, 20.0, np.nan, 10.0],
            "atr": [1.25, 2.0, 3.0, 0.0, 1.0, 1.0],
            "is_active": [True, True, True, True, True, False],
            "is_fallback": [False] * 6,
        }
    )


def test_hand_worked_shares_with_per_position_cap() -> None:
    # E = 1,000,000; risk = E * .005 = 5,000; stop = 2 * ATR; per-position cap = .10 * E = 100,000.
    result = size_positions(SESSION, selection(), SizingParams(), now=NOW)
    frame = PositionSizes.validate(result.frame).set_index("ticker")
    # AAA: stop 2.5 -> floor(5000 / 2.5) = 2000 shares -> 100,000 notional, exactly at the cap.
    # BBB: stop 4 -> 1250 shares = 500,000 > cap -> floor(100,000 / 400) = 250 shares.
    # CCC: stop 6 -> floor(833.33) = 833 shares -> 24,990.
    # DDD: ATR 0 -> no stop distance -> 0 shares, kept with a reason.
    # EEE: no price -> no row. FFF: not active -> not sized.
    assert frame["shares"].to_dict() == {"AAA": 2000, "BBB": 250, "CCC": 833, "DDD": 0}
    assert frame["notional"].to_dict() == pytest.approx(
        {"AAA": 100_000, "BBB": 100_000, "CCC": 24_990, "DDD": 0}
    )
    assert frame["weight"].to_dict() == pytest.approx({"AAA": 0.1, "BBB": 0.1, "CCC": 0.02499, "DDD": 0})
    assert frame.loc["BBB", "stop_distance"] == 4.0 and (frame["risk_amount"] == 5000).all()
    assert "max_position_weight" in result.reasons["BBB"]
    assert "zero ATR" in result.reasons["DDD"] and "no price" in result.reasons["EEE"]
    assert "AAA" not in result.reasons and "FFF" not in result.reasons
    assert result.gross_notional == pytest.approx(224_990)
    assert (frame["computed_at"] == NOW).all() and (frame["session"] == SESSION).all()


def test_gross_exposure_cap_scales_every_position_down() -> None:
    # Gross before the cap = 224,990 > .15 * E = 150,000 -> f = 150,000 / 224,990 = .666696...
    # AAA floor(2000 f) = 1333, BBB floor(250 f) = 166, CCC floor(833 f) = 555.
    params = SizingParams(max_gross_exposure=0.15)
    result = size_positions(SESSION, selection(), params, now=NOW)
    frame = result.frame.set_index("ticker")
    assert frame["shares"].to_dict() == {"AAA": 1333, "BBB": 166, "CCC": 555, "DDD": 0}
    assert result.gross_notional == pytest.approx(1333 * 50 + 166 * 400 + 555 * 30)
    assert result.gross_notional <= 150_000
    assert "scaled by 0.6667" in result.reasons["AAA"]


def test_prices_override_and_fallback_flag() -> None:
    rows = selection().drop(columns="is_active").assign(is_fallback=True).head(1)
    result = size_positions(SESSION, rows, SizingParams(), prices={"AAA": 40.0}, now=NOW)
    # stop 2.5 -> 2000 shares raw; cap floor(100,000 / 40) = 2500 -> 2000 shares at 40.
    row = result.frame.iloc[0]
    assert row["price"] == 40.0 and row["shares"] == 2000 and row["is_fallback"]


def test_float_noise_does_not_cost_a_share() -> None:
    # risk .3 / stop (2 * .05) is 2.9999999999999996 in floats; the floor tolerance keeps 3 shares.
    params = SizingParams(account_equity=1.0, risk_per_trade=0.3, max_position_weight=1.0)
    rows = pd.DataFrame({"ticker": ["AAA"], "last_close": [0.1], "atr": [0.05]})
    result = size_positions(SESSION, rows, params, now=NOW)
    # cap floor(1 / .1) = 10 does not bind.
    assert result.frame["shares"].tolist() == [3]


def test_empty_and_malformed_input() -> None:
    empty = size_positions(SESSION, selection().iloc[0:0], SizingParams(), now=NOW)
    assert empty.frame.empty and list(empty.frame.columns) == list(PositionSizes.to_schema().columns)
    with pytest.raises(ValueError, match="lacks column"):
        size_positions(SESSION, pd.DataFrame({"ticker": ["AAA"]}), SizingParams(), now=NOW)
    nan_atr = pd.DataFrame({"ticker": ["AAA"], "last_close": [10.0], "atr": [None]})
    assert "no ATR" in size_positions(SESSION, nan_atr, now=NOW).reasons["AAA"]


def test_params_are_checked() -> None:
    with pytest.raises(ValueError):
        SizingParams(max_position_weight=1.5)
    with pytest.raises(ValueError):
        SizingParams(account_equity=0)
