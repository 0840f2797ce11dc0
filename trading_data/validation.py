"""Validation helpers on top of the pandera models: readable errors and row-level rejects."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pandera.errors as pa_errors
import pandera.pandas as pa


class ValidationFailed(ValueError):
    """A frame failed its pandera model; the message names columns, checks and sample rows."""

    def __init__(self, table: str, failure_cases: pd.DataFrame, frame: pd.DataFrame):
        self.table = table
        self.failure_cases = failure_cases
        self.failure_count = len(distinct_failures(failure_cases))
        super().__init__(describe_failures(table, failure_cases, frame))


def distinct_failures(failure_cases: pd.DataFrame) -> pd.DataFrame:
    """pandera's failure cases with each frame-wide check once per failing row (column None).

    pandera reports a frame-wide check (``@dataframe_check``) once per column of each failing row.
    """
    frame_wide = (failure_cases["schema_context"] == "DataFrameSchema") & failure_cases["index"].notna()
    return pd.concat(
        [
            failure_cases[~frame_wide],
            failure_cases[frame_wide].assign(column=None).drop_duplicates(["check", "index"]),
        ]
    )


def describe_failures(table: str, failure_cases: pd.DataFrame, frame: pd.DataFrame, sample: int = 3) -> str:
    failure_cases = distinct_failures(failure_cases)
    lines = [f"{table}: {len(failure_cases)} validation failure(s); nothing was written"]
    grouped = failure_cases.groupby(["column", "check"], dropna=False, sort=False)
    for (column, check), cases in grouped:
        column_name = "<frame>" if pd.isna(column) else column
        rows = [int(i) for i in cases["index"].dropna().unique()[:sample] if i in frame.index]
        sample_rows = (
            frame.loc[rows].to_dict("records") if rows else cases["failure_case"].head(sample).tolist()
        )
        lines.append(
            f"  column {column_name!r} failed check {check!r} on {len(cases)} row(s); e.g. {sample_rows}"
        )
    return "\n".join(lines)


def validate(model: type[pa.DataFrameModel], frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Validate and coerce ``frame``; raise ValidationFailed (lazy: every failure at once)."""
    try:
        return model.validate(frame, lazy=True)
    except pa_errors.SchemaErrors as exc:
        raise ValidationFailed(table, exc.failure_cases, frame) from None


@dataclass(frozen=True)
class SplitResult:
    valid: pd.DataFrame
    rejects: pd.DataFrame  # the failing rows, with a ``reject_reason`` column
    failure_count: int  # rows rejected


def _value(value: object, limit: int = 40) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def row_reasons(row_cases: pd.DataFrame) -> pd.Series:
    """One reason per failing row (indexed like the frame): its distinct failed checks, each once.

    A column check reads ``"bid_price: greater_than_or_equal_to(0) failed (value -1.0)"``; a frame-wide
    check, which pandera reports once per column of the row, reads ``"<check> failed"`` once.
    """
    frame_wide = row_cases["schema_context"] == "DataFrameSchema"
    text = row_cases["check"].astype(str) + " failed"
    column_text = (
        row_cases["column"].astype(str)
        + ": "
        + text
        + " (value "
        + row_cases["failure_case"].map(_value)
        + ")"
    )
    reasons = text.where(frame_wide, column_text)
    return reasons.groupby(row_cases["index"]).agg(lambda r: "; ".join(dict.fromkeys(r)))


def split_valid(model: type[pa.DataFrameModel], frame: pd.DataFrame, table: str) -> SplitResult:
    """Separate rows that fail row-level checks from the rest (strict_validation off).

    Frame-level problems (a missing column, a wrong dtype that cannot be coerced) still raise: no
    row can be trusted then.
    """
    try:
        return SplitResult(model.validate(frame, lazy=True), frame.iloc[0:0].assign(reject_reason=""), 0)
    except pa_errors.SchemaErrors as exc:
        cases = exc.failure_cases
        row_cases = cases[cases["index"].notna()]
        if len(row_cases) < len(cases):
            raise ValidationFailed(table, cases, frame) from None
        reasons = row_reasons(row_cases)
        bad_index = frame.index.isin(reasons.index)
        rejects = frame[bad_index].assign(reject_reason=reasons.reindex(frame.index[bad_index]).values)
        valid = validate(model, frame[~bad_index], table)
        return SplitResult(valid, rejects, int(bad_index.sum()))
