"""The market model: determinism, realism properties, calendar and clock."""

from __future__ import annotations

import datetime as dt

import numpy as np

from trading_data.calendar import NEW_YORK
from trading_data.sources.simulator.market import NS_PER_MS, SimulatedMarket, black_scholes, to_ns
from trading_data_tests.simulator.conftest import AFTER_THANKSGIVING, fixed_clock

DAY = dt.date(2026, 11, 20)


def test_same_seed_same_data_different_seed_different_data(market: SimulatedMarket) -> None:
    twin = SimulatedMarket(7, now=fixed_clock(AFTER_THANKSGIVING))
    other = SimulatedMarket(8, now=fixed_clock(AFTER_THANKSGIVING))
    assert [p.ticker for p in twin.profiles] == [p.ticker for p in market.profiles]
    a, b, c = (m.minute_bars("AAPL", DAY) for m in (market, twin, other))
    assert np.array_equal(a.c, b.c) and np.array_equal(a.v, b.v) and np.array_equal(a.t_ms, b.t_ms)
    assert not np.array_equal(a.c[: len(c.c)], c.c[: len(a.c)])
    qa, qb = market.quote_block("MSFT", DAY, 37), twin.quote_block("MSFT", DAY, 37)
    assert np.array_equal(qa.sip_ns, qb.sip_ns) and np.array_equal(qa.bid, qb.bid)
    assert market.daily_bar("NVDA", DAY) == twin.daily_bar("NVDA", DAY) != other.daily_bar("NVDA", DAY)
    assert [p.ticker for p in other.profiles[10:20]] != [p.ticker for p in market.profiles[10:20]]


def test_universe_is_large_heavy_tailed_and_well_known_first(market: SimulatedMarket) -> None:
    tickers = [p.ticker for p in market.profiles]
    assert tickers[:10] == ["AAPL", "MSFT", "NVDA", "SPY", "TSLA", "AMZN", "META", "GOOGL", "AMD", "QQQ"]
    assert len(set(tickers)) == len(tickers) == 3000
    assert all(t.isalpha() and t.isupper() and 1 <= len(t) <= 5 for t in tickers)
    volumes = np.array([p.avg_volume for p in market.profiles])
    prices = np.array([p.base_price for p in market.profiles])
    assert volumes.mean() > 2 * np.median(volumes)  # heavy right tail
    assert np.sort(volumes)[-30:].sum() > 0.2 * volumes.sum()
    assert prices.min() >= 2 and prices.max() <= 900


def test_daily_bars_are_continuous_and_consistent_with_minutes(market: SimulatedMarket) -> None:
    days = [dt.date(2026, 11, 16), dt.date(2026, 11, 17), dt.date(2026, 11, 18)]
    bars = [market.daily_bar("AMD", d) for d in days]
    assert all(b is not None for b in bars)
    for prev, cur in zip(bars, bars[1:], strict=False):
        assert prev is not None and cur is not None
        assert abs(cur.o / prev.c - 1) < 0.25
    minutes = market.minute_bars("AMD", days[0])
    first = bars[0]
    assert first is not None
    assert minutes.o[0] == first.o and minutes.c[-1] == first.c
    assert minutes.h.max() == first.h and minutes.low.min() == first.low
    assert minutes.v.sum() == first.v
    assert np.all(minutes.h >= np.maximum(minutes.o, minutes.c)) and np.all(
        minutes.low <= np.minimum(minutes.o, minutes.c)
    )


def test_intraday_volume_is_u_shaped(market: SimulatedMarket) -> None:
    first, last, mid = [], [], []
    for ticker in ["AAPL", "MSFT", "SPY", "TSLA"]:
        plan = market.day_plan(ticker, DAY)
        first.append(plan.v[:30].sum())
        last.append(plan.v[-30:].sum())
        mid.append(plan.v[180:210].sum())
    assert sum(first) > 1.5 * sum(mid) and sum(last) > 1.5 * sum(mid)


def test_illiquid_tickers_have_missing_minutes(market: SimulatedMarket) -> None:
    thin = min(market.profiles, key=lambda p: p.avg_volume)
    bars = market.minute_bars(thin.ticker, DAY)
    assert 0 < len(bars) < 390


def test_spreads_are_wider_at_the_open(market: SimulatedMarket) -> None:
    def mean_spread(minutes: range) -> float:
        blocks = [market.quote_block("MSFT", DAY, m) for m in minutes]
        return float(np.mean(np.concatenate([b.ask - b.bid for b in blocks])))

    assert mean_spread(range(0, 3)) > 1.5 * mean_spread(range(200, 203))


def test_quotes_not_crossed_and_trades_inside_prevailing_quote(market: SimulatedMarket) -> None:
    inside = total = 0
    for minute in (0, 100, 389):
        quotes = market.quote_block("AAPL", DAY, minute)
        trades = market.trade_block("AAPL", DAY, minute)
        assert np.all(quotes.ask > quotes.bid) and np.all(np.diff(quotes.sip_ns) >= 0)
        prevailing = np.maximum(np.searchsorted(quotes.sip_ns, trades.sip_ns, side="right") - 1, 0)
        ok = (trades.price >= quotes.bid[prevailing]) & (trades.price <= quotes.ask[prevailing])
        inside += int(ok.sum())
        total += len(trades)
        assert len(np.unique(np.concatenate([quotes.sequence, trades.sequence]))) == len(quotes) + len(trades)
    assert total > 0 and inside / total > 0.95


def test_heavy_ticker_has_about_two_million_quotes_without_generating_them() -> None:
    heavy = SimulatedMarket(3, now=fixed_clock(AFTER_THANKSGIVING), quotes_per_minute={"MSFT": 6000.0})
    assert 1_800_000 < heavy.day_plan("SPY", DAY).q.sum() < 2_300_000
    assert heavy.day_plan("MSFT", DAY).q.sum() > 2_000_000
    block = heavy.quote_block("SPY", DAY, 120)
    assert 2000 < len(block) < 12000


def test_early_close_has_no_bars_after_13_00(market: SimulatedMarket) -> None:
    day = dt.date(2026, 11, 27)
    bars = market.minute_bars("AAPL", day)
    close_ms = to_ns(dt.datetime(2026, 11, 27, 13, 0, tzinfo=NEW_YORK)) // NS_PER_MS
    assert len(bars) > 100 and bars.t_ms.max() < close_ms
    assert market.day_plan("AAPL", day).minutes == 210


def test_holiday_and_future_have_no_data(market: SimulatedMarket) -> None:
    holiday = dt.date(2026, 11, 26)
    assert market.daily_bar("AAPL", holiday) is None
    assert len(market.minute_bars("AAPL", holiday)) == 0
    assert market.grouped_daily(holiday) == []
    assert market.grouped_daily(dt.date(2026, 11, 30)) == []
    assert market.flow_alerts("AAPL", dt.date(2026, 11, 30)) == []


def test_clock_truncates_the_live_session() -> None:
    now = dt.datetime(2026, 11, 20, 11, 0, 30, tzinfo=NEW_YORK)
    live = SimulatedMarket(7, now=fixed_clock(now))
    bars = live.minute_bars("AAPL", DAY)
    assert len(bars) <= 90 and bars.t_ms.max() + 60_000 <= to_ns(now) // NS_PER_MS
    bar = live.daily_bar("AAPL", DAY)
    full = SimulatedMarket(7, now=fixed_clock(AFTER_THANKSGIVING)).daily_bar("AAPL", DAY)
    assert bar is not None and full is not None and bar.v < full.v and bar.o == full.o
    blocks = list(live.minute_blocks("AAPL", 0, 2**62, descending=True))
    assert blocks[0][0] == DAY and blocks[0][1] == 90  # the minute in progress
    assert all(a["created_at"] <= "2026-11-20T16:00:30" for a in live.flow_alerts("AAPL", DAY))
    assert live.daily_bar("AAPL", dt.date(2026, 11, 23)) is None


def test_option_chain_black_scholes(market: SimulatedMarket) -> None:
    chain = market.option_chain("AAPL")
    assert chain is not None and len(chain) > 100
    assert all(s.startswith("AAPL") and not s.startswith("O:") for s in chain.symbols)
    calls = chain.is_call
    assert np.all((chain.delta[calls] >= 0) & (chain.delta[calls] <= 1))
    assert np.all((chain.delta[~calls] >= -1) & (chain.delta[~calls] <= 0))
    assert np.all(chain.open_interest >= 0) and np.all(chain.iv > 0)
    value = black_scholes(
        100.0, np.array([100.0, 100.0]), np.array([0.5, 0.5]), np.array([0.3, 0.3]), np.array([True, False])
    )
    parity = value["price"][0] - value["price"][1] - (100 - 100 * np.exp(-0.04 * 0.5))
    assert abs(parity) < 1e-9 and abs(value["price"][0] - 9.3904) < 0.001
