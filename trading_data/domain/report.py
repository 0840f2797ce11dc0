"""The daily report (the seed's validation report): coverage, gaps, failures and freshness.

Per table and ticker, for one session:

* ``rows``: the ticker's rows in the frame given (minute bars only for tables with ``timespan``).
* ``expected_minutes``: ``session.minutes`` (390, or 210 on an early close such as 2026-11-27).
* ``covered_minutes``: distinct minutes ``m`` in ``[open, close)`` that hold at least one row, a
  row covering the minute its ``ts`` falls in (a minute bar's ``ts`` is its window start).
* ``coverage``: ``covered_minutes / expected_minutes``.
* ``gaps``: the number of maximal runs of consecutive uncovered session minutes whose length is at
  least ``gap_threshold_minutes`` (default 5); a run touching the open or the close counts too,
  so a ticker with no rows has one gap spanning the session.
* ``max_gap_minutes``: the longest run of uncovered minutes, whatever its length (0 when full).
* ``validation_failures``: from ``failures[(table, ticker)]``.
* ``last_ts`` / ``freshness_minutes``: the ticker's newest ``ts`` in the table and
  ``(now - last_ts)`` in minutes; empty when it has no rows.

After the close, ``with_reconciliation`` adds the session's reconciliation (``domain.reconciliation``),
each part on its table's row: ``trade_volume``, ``day_bar_volume`` and ``volume_deviation`` on
``trades``; ``traded_minutes`` and ``traded_minutes_with_bar`` on ``prices``; ``quoted_half_hours``
and ``expected_half_hours`` on ``quotes``; ``reconciliation`` is ``ok`` or why the part failed. Other
rows, and every row before the close, leave them null.

Coverage reads as completeness for dense tables (prices, quotes, trades, indicators); options flow
is event-driven, so its coverage only says how busy the ticker was.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from trading_data.calendar import NEW_YORK, Session
from trading_data.domain.reconciliation import (
    DEFAULT_TOLERANCES,
    TickerReconciliation,
    Tolerances,
    failure_summary,
)
from trading_data.domain.tickers import TICKER_PATTERN
from trading_data.schemas import DailyReport

OUTPUT_COLUMNS = list(DailyReport.to_schema().columns)
DEFAULT_GAP_THRESHOLD_MINUTES = 5
DENSE_TABLES = ("prices", "quotes", "trades", "indicators")


def uncovered_runs(covered: np.ndarray) -> np.ndarray:
    """Lengths of the maximal runs of False in a boolean per-minute array, in order."""
    missing = np.concatenate([[0], (~covered.astype(bool)).astype(np.int8), [0]])
    edges = np.diff(missing)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return ends - starts


def minute_coverage(ts: pd.Series, session: Session) -> np.ndarray:
    """Boolean array of ``session.minutes``: True where some timestamp falls in that minute."""
    covered = np.zeros(session.minutes, dtype=bool)
    if ts.empty:
        return covered
    open_utc = pd.Timestamp(session.open).tz_convert("UTC")
    offsets = (pd.to_datetime(ts, utc=True) - open_utc) // pd.Timedelta(minutes=1)
    index = offsets[(offsets >= 0) & (offsets < session.minutes)].to_numpy(dtype="int64")
    covered[index] = True
    return covered


def _table_rows(
    table: str,
    frame: pd.DataFrame,
    session: Session,
    failures: Mapping[tuple[str, str], int],
    expected_tickers: Iterable[str],
    now: pd.Timestamp,
    gap_threshold_minutes: int,
) -> list[dict[str, object]]:
    if frame.empty:
        frame = pd.DataFrame({"ts": pd.Series(dtype="datetime64[ns, UTC]"), "ticker": pd.Series(dtype=str)})
    missing = [c for c in ("ts", "ticker") if c not in frame.columns]
    if missing:
        raise ValueError(f"table {table!r} lacks column(s) {missing}; only timestamped tables are reported")
    if "timespan" in frame.columns:
        frame = frame[frame["timespan"] == "minute"]
    ts_by_ticker = {str(t): g["ts"] for t, g in frame.groupby("ticker", sort=False)}
    # A reject whose ticker cannot be a symbol (vendor junk) has no report row to land on.
    rejected = {t for (name, t) in failures if name == table and TICKER_PATTERN.fullmatch(t)}
    tickers = set(ts_by_ticker) | set(expected_tickers) | rejected
    rows = []
    for ticker in sorted(tickers):
        ts = pd.to_datetime(ts_by_ticker.get(ticker, pd.Series(dtype="datetime64[ns, UTC]")), utc=True)
        covered = minute_coverage(ts, session)
        runs = uncovered_runs(covered)
        last_ts = ts.max() if len(ts) else pd.NaT
        rows.append(
            {
                "session": session.date,
                "table_name": table,
                "ticker": ticker,
                "rows": len(ts),
                "expected_minutes": session.minutes,
                "covered_minutes": int(covered.sum()),
                "coverage": covered.sum() / session.minutes if session.minutes else np.nan,
                "gaps": int((runs >= gap_threshold_minutes).sum()),
                "max_gap_minutes": int(runs.max()) if len(runs) else 0,
                "validation_failures": int(failures.get((table, ticker), 0)),
                "last_ts": last_ts,
                "freshness_minutes": (now - last_ts) / pd.Timedelta(minutes=1) if len(ts) else np.nan,
            }
        )
    return rows


def coverage_report(
    session: Session,
    tables: Mapping[str, pd.DataFrame],
    failures: Mapping[tuple[str, str], int],
    now: dt.datetime | pd.Timestamp,
    gap_threshold_minutes: int = DEFAULT_GAP_THRESHOLD_MINUTES,
    expected_tickers: Iterable[str] = (),
) -> pd.DataFrame:
    """The DailyReport frame: one row per table and ticker (formulas in the module docstring).

    Tickers are those with rows, those named in ``failures`` for the table and ``expected_tickers``
    (which get a row even without data: coverage 0, one session-long gap). Raises ValueError for a
    non-empty table without ``ts`` and ``ticker`` columns.
    """
    if gap_threshold_minutes < 1:
        raise ValueError("gap_threshold_minutes must be >= 1")
    stamp = pd.Timestamp(now)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    expected = sorted(set(expected_tickers))
    rows: list[dict[str, object]] = []
    for table, frame in tables.items():
        rows.extend(_table_rows(table, frame, session, failures, expected, stamp, gap_threshold_minutes))
    report = pd.DataFrame(rows, columns=OUTPUT_COLUMNS)
    report["last_ts"] = pd.to_datetime(report["last_ts"], utc=True)
    report = report.astype({"coverage": "float64", "freshness_minutes": "float64"})
    return DailyReport.validate(report)


RECONCILIATION_COLUMNS = [
    "trade_volume",
    "day_bar_volume",
    "volume_deviation",
    "traded_minutes",
    "traded_minutes_with_bar",
    "quoted_half_hours",
    "expected_half_hours",
    "reconciliation",
]
PART_TABLES = {"volume": "trades", "minute_bars": "prices", "quotes": "quotes"}


def _part_rows(result: TickerReconciliation) -> list[dict[str, object]]:
    a = result.aggregates
    figures: dict[str, dict[str, object]] = {
        "volume": {
            "trade_volume": a.trade_volume,
            "day_bar_volume": a.day_bar_volume,
            "volume_deviation": result.volume_deviation,
        },
        "minute_bars": {
            "traded_minutes": a.trade_minutes,
            "traded_minutes_with_bar": a.covered_trade_minutes,
        },
        "quotes": {
            "quoted_half_hours": result.expected_half_hours - len(result.missing_half_hours),
            "expected_half_hours": result.expected_half_hours,
        },
    }
    return [
        {
            "table_name": PART_TABLES[part],
            "ticker": result.ticker,
            **values,
            "reconciliation": result.failures.get(part, "ok"),
        }
        for part, values in figures.items()
    ]


def with_reconciliation(report: pd.DataFrame, results: Sequence[TickerReconciliation] | None) -> pd.DataFrame:
    """The report with each ticker's reconciled parts on its table's rows (module docstring);
    ``None`` (the session has not closed) leaves the columns null."""
    if not results:
        return report
    parts = pd.DataFrame([row for r in results for row in _part_rows(r)])
    merged = report.drop(columns=RECONCILIATION_COLUMNS).merge(parts, how="left", on=["table_name", "ticker"])
    return DailyReport.validate(merged[OUTPUT_COLUMNS])


def _session_line(session: Session) -> str:
    hours = f"{session.open:%H:%M}-{session.close:%H:%M} ET"
    kind = "early close" if session.is_early_close else "regular session"
    return f"Session {session.key}: {hours} ({kind}), {session.minutes} minutes."


def _markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines.extend("| " + " | ".join(str(v) for v in row) + " |" for row in rows)
    return lines


def _pct(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.1%}"


def render_markdown(
    report_df: pd.DataFrame,
    session: Session,
    notes: str | Sequence[str] = (),
    worst: int = 10,
    worst_tables: Sequence[str] = DENSE_TABLES,
) -> str:
    """A compact markdown summary: notes, one line per table, then the worst-coverage tickers
    (among ``worst_tables``, lowest coverage first, then most gaps)."""
    lines = [f"# Daily data report {session.key}", "", _session_line(session), ""]
    note_list = [notes] if isinstance(notes, str) else list(notes)
    if note_list:
        lines += ["## Notes", "", *[f"- {note}" for note in note_list], ""]

    lines += ["## Tables", ""]
    if report_df.empty:
        lines += ["No data.", ""]
        return "\n".join(lines)
    summary = []
    for table, group in report_df.groupby("table_name", sort=False):
        stalest = group["freshness_minutes"].max()
        summary.append(
            [
                table,
                len(group),
                int(group["rows"].sum()),
                _pct(group["coverage"].mean()),
                _pct(group["coverage"].min()),
                int(group["gaps"].sum()),
                int(group["validation_failures"].sum()),
                "n/a" if pd.isna(stalest) else f"{stalest:.0f}",
            ]
        )
    headers = [
        "table",
        "tickers",
        "rows",
        "mean coverage",
        "min coverage",
        "gaps",
        "failures",
        "stalest (min)",
    ]
    lines += _markdown_table(headers, summary) + [""]

    dense = report_df[report_df["table_name"].isin(worst_tables)]
    if len(dense) and worst > 0:
        ordered = dense.sort_values(
            ["coverage", "gaps", "table_name", "ticker"],
            ascending=[True, False, True, True],
            na_position="first",
        ).head(worst)
        lines += [f"## Worst coverage ({', '.join(worst_tables)})", ""]
        lines += _markdown_table(
            ["table", "ticker", "coverage", "gaps", "max gap (min)", "failures", "rows"],
            (
                [
                    r.table_name,
                    r.ticker,
                    _pct(r.coverage),
                    r.gaps,
                    r.max_gap_minutes,
                    r.validation_failures,
                    r.rows,
                ]
                for r in ordered.itertuples()
            ),
        )
        lines.append("")
    return "\n".join(lines)


def render_reconciliation(
    results: Sequence[TickerReconciliation] | None,
    session: Session,
    tolerances: Tolerances = DEFAULT_TOLERANCES,
) -> str:
    """The report's reconciliation section: the verdict, then one line per ticker (``None``: the
    session has not closed yet, so nothing is judged)."""
    lines = ["## Reconciliation", ""]
    if results is None:
        return "\n".join([*lines, f"Not reconciled yet: the session closes at {session.close:%H:%M} ET.", ""])
    lines += [failure_summary(results, tolerances), ""]
    if results:
        rows = []
        for r in results:
            a = r.aggregates
            rows.append(
                [
                    r.ticker,
                    f"{a.trade_volume:,.0f}",
                    "n/a" if a.day_bar_volume is None else f"{a.day_bar_volume:,.0f}",
                    "n/a" if r.volume_deviation is None else f"{r.volume_deviation:+.2%}",
                    f"{a.covered_trade_minutes}/{a.trade_minutes}",
                    f"{r.expected_half_hours - len(r.missing_half_hours)}/{r.expected_half_hours}",
                    "ok" if r.passed else "FAILED: " + ", ".join(r.failures),
                ]
            )
        headers = ["ticker", "trade volume", "daily bar volume", "deviation", "traded minutes with a bar"]
        lines += _markdown_table([*headers, "half hours quoted", "result"], rows) + [""]
    return "\n".join(lines)


def _local_times(ts: pd.Series) -> np.ndarray:
    # Naive New York wall-clock datetime64 values: matplotlib plots those natively.
    return pd.to_datetime(ts, utc=True).dt.tz_convert(NEW_YORK).dt.tz_localize(None).to_numpy()


def render_chart(
    prices: pd.DataFrame,
    indicators: pd.DataFrame,
    tickers: Sequence[str],
    session: Session,
    max_tickers: int = 4,
) -> bytes:
    """A PNG: per ticker (the first ``max_tickers``), close with sma_20, Bollinger bands and vwap
    over the session's hours. Rendered with the Agg canvas; no display, no pyplot state."""
    # matplotlib costs ~0.3 s to import: only the report's step pays it, not every process that loads
    # the definitions.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter
    from matplotlib.figure import Figure

    shown = list(dict.fromkeys(tickers))[:max_tickers]
    open_utc = pd.Timestamp(session.open).tz_convert("UTC")
    close_utc = pd.Timestamp(session.close).tz_convert("UTC")

    def in_session(frame: pd.DataFrame, ticker: str) -> pd.DataFrame:
        if frame.empty or "ticker" not in frame.columns:
            return frame.iloc[0:0]
        rows = frame[frame["ticker"] == ticker]
        if "timespan" in rows.columns:
            rows = rows[rows["timespan"] == "minute"]
        ts = pd.to_datetime(rows["ts"], utc=True)
        return rows[(ts >= open_utc) & (ts < close_utc)].sort_values("ts")

    figure = Figure(figsize=(10, 2.8 * max(len(shown), 1)), layout="constrained")
    FigureCanvasAgg(figure)
    if not shown:
        axis = figure.add_subplot(1, 1, 1)
        axis.text(0.5, 0.5, f"No tickers to chart for {session.key}", ha="center", va="center")
        axis.set_axis_off()
    for number, ticker in enumerate(shown, start=1):
        axis = figure.add_subplot(len(shown), 1, number)
        bars = in_session(prices, ticker)
        values = in_session(indicators, ticker)
        if bars.empty and values.empty:
            axis.text(0.5, 0.5, f"{ticker}: no data", ha="center", va="center", transform=axis.transAxes)
            axis.set_yticks([])
        price_source = bars if not bars.empty else values
        if not price_source.empty:
            axis.plot(
                _local_times(price_source["ts"]), price_source["close"], color="black", lw=1, label="close"
            )
        if not values.empty:
            times = _local_times(values["ts"])
            axis.plot(times, values["sma_20"], color="tab:blue", lw=0.9, label="sma 20")
            axis.fill_between(
                times,
                values["bb_lower"].to_numpy(dtype="float64"),
                values["bb_upper"].to_numpy(dtype="float64"),
                color="tab:blue",
                alpha=0.12,
                label="bb 20, 2σ",
            )
            axis.plot(times, values["vwap"], color="tab:orange", lw=0.9, label="vwap")
        axis.set_title(f"{ticker} {session.key}", fontsize=9, loc="left")
        axis.set_xlim(*_local_times(pd.Series([open_utc, close_utc])))
        axis.xaxis.set_major_formatter(DateFormatter("%H:%M"))
        axis.tick_params(labelsize=8)
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=7, loc="upper left")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
