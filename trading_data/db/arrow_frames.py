"""Arrow tables to frames typed like their pandera model, without Dagster: the IO manager's load path
and :mod:`trading_data.read` share it."""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd
import pyarrow as pa

from trading_data.schemas import TableSpec


def nullable_ints(spec: TableSpec) -> frozenset[str]:
    """The model's nullable integer (``Int64``) columns: BIGINT columns that may hold nulls."""
    return frozenset(name for name, dtype in spec.model.to_schema().dtypes.items() if str(dtype) == "Int64")


def frame_from_arrow(spec: TableSpec, table: pa.Table) -> pd.DataFrame:
    """Arrow columns straight to the model's dtypes (see :func:`frame_from_typed_arrow`)."""
    return frame_from_typed_arrow(table, nullable_ints(spec))


def frame_from_typed_arrow(table: pa.Table, nullable: Collection[str]) -> pd.DataFrame:
    """Arrow columns straight to pandas: the ``nullable`` int64 columns as ``Int64`` without a float
    detour, the other ints as ``int64``, timestamps in ns, dates as ``datetime.date`` objects.

    One ``to_pandas`` for every column but the nullable ints, with ``split_blocks`` so that numeric
    columns are not consolidated into one copied block; the nullable ints are inserted as extension
    arrays, in place.
    """
    names = table.column_names
    held = [name for name in names if name in nullable]
    frame = table.drop_columns(held).to_pandas(
        coerce_temporal_nanoseconds=True, date_as_object=True, split_blocks=True
    )
    as_int64 = {pa.int64(): pd.Int64Dtype()}.get
    for name in held:
        frame.insert(names.index(name), name, table.column(name).to_pandas(types_mapper=as_int64).array)
    return frame
