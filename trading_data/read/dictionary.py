"""The data dictionary (docs/data-dictionary.md), generated from the pandera models, the tables' keys and
time conventions, the bar aggregates (trading_data/db/aggregate_sql.py) and the views:
``python -m trading_data.read.dictionary > docs/data-dictionary.md``
(``trading_data_tests/read/test_dictionary.py`` fails when the file is out of date)."""

from __future__ import annotations

from pathlib import Path

from trading_data.db.aggregate_sql import (
    AGGREGATE_COLUMNS,
    AGGREGATE_DESCRIPTIONS,
    AGGREGATE_TIME_CONVENTIONS,
    AGGREGATES,
    KEY,
)
from trading_data.db.documentation import TIME_CONVENTIONS, table_description, views
from trading_data.schemas import TABLES, column_descriptions, sql_columns

DICTIONARY_PATH = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"

PREAMBLE = """\
# Data dictionary

Generated from `trading_data/schemas.py` (the pandera models) and `trading_data/db/documentation.py` by
`python -m trading_data.read.dictionary > docs/data-dictionary.md`; a test fails when it is out of date.
The same descriptions are in the database (`COMMENT ON`, e.g. `\\d+ market.prices` in psql) and in the
Dagster UI's Columns panel.

Conventions:

- Tables live in the schema `market` (`TRADING_DATA_SCHEMA`). Every time column is `TIMESTAMPTZ`, in
  UTC; prices are in USD, sizes and volumes in shares (options: contracts).
- A **session** is an NYSE trading day (`trading_data/calendar.py`); its rows are those whose time falls
  within its New York calendar day (midnight to midnight, pre- and after-market included). Weekends
  and holidays hold no rows.
- **Minute bars** are stamped with the bar's start in UTC (a bar covers `[ts, ts + 1 minute)`);
  **daily bars** with New York midnight of the session: 05:00 UTC in winter (EST), 04:00 UTC in
  summer (EDT). `prices` holds both, told apart by `timespan`: filter on it, or use the views
  `minute_bars` and `daily_bars`. The **5-minute and hourly bars** `bars_5m` and `bars_1h` are stamped
  with the bucket's start in UTC too (a bar covers `[ts, ts + 5 min)` or `[ts, ts + 1 hour)`).
- Read them in Python with `trading_data.read` (frames with these dtypes), export them with
  `trading-data export`, list what is stored with `trading-data catalog`.
"""


_PANDAS = {"date": "object (datetime.date)", "str": "object (str)"}


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _table_section(name: str) -> list[str]:
    spec = TABLES[name]
    described = column_descriptions(spec)
    dtypes = {
        c: _PANDAS.get(str(col.dtype), str(col.dtype)) for c, col in spec.model.to_schema().columns.items()
    }
    lines = [
        f"## `{name}`",
        "",
        _escape(table_description(name).split(" Time: ")[0]),
        "",
        f"- Time: {TIME_CONVENTIONS[name]}.",
        f"- Key: `({', '.join(spec.primary_key)})`; partition (time) column `{spec.time_column}`; "
        f"written by `{spec.write_mode}`.",
        "",
        "| column | SQL type | pandas dtype | null | description |",
        "|---|---|---|---|---|",
    ]
    for column, (sql_type, nullable) in sql_columns(spec).items():
        lines.append(
            f"| `{column}` | {sql_type} | {dtypes[column]} | {'yes' if nullable else 'no'} | "
            f"{_escape(described[column])} |"
        )
    return [*lines, ""]


def _aggregate_section(name: str) -> list[str]:
    lines = [
        f"## `{name}`",
        "",
        _escape(AGGREGATE_DESCRIPTIONS[name]),
        "",
        f"- Time: {AGGREGATE_TIME_CONVENTIONS[name]}.",
        f"- Key: `({', '.join(KEY)})`; bucket width {AGGREGATES[name]}. With TimescaleDB a continuous "
        "aggregate (a view, materialized when `bar_aggregates` refreshes the session: no real-time rows "
        "between refreshes), else a table `bar_aggregates` recomputes for the session in one transaction.",
        "- Read with SQL, or `trading-data catalog` for what is stored.",
        "",
        "| column | SQL type | null | description |",
        "|---|---|---|---|",
    ]
    for column, spec in AGGREGATE_COLUMNS.items():
        null = "yes" if spec.nullable else "no"
        lines.append(f"| `{column}` | {spec.sql_type} | {null} | {_escape(spec.description)} |")
    return [*lines, ""]


def _views_section() -> list[str]:
    lines = ["## Views", ""]
    for view in views():
        lines += [
            f"### `{view.name}`",
            "",
            _escape(view.description),
            "",
            "| column | description |",
            "|---|---|",
        ]
        lines += [f"| `{c}` | {_escape(d)} |" for c, d in view.columns.items()]
        lines.append("")
    return lines


def render() -> str:
    lines = [PREAMBLE]
    for name in TABLES:
        lines += _table_section(name)
    for name in AGGREGATES:
        lines += _aggregate_section(name)
    lines += _views_section()
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
