"""Arrow tables to frames typed like their pandera model, without Dagster: the IO manager's load path
and :mod:`trading_data.read` share it."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from trading_data.schemas import TableSpec


def frame_from_arrow(spec: TableSpec, table: pa.Table) -> pd.DataFrame:
    """Arrow columns straight to the model's dtypes: nullable ints without a float detour,
    timestamps in ns, dates as ``datetime.date`` objects.

    One ``to_pandas`` for every column but the nullable ints (an Arrow int64 maps to ``int64`` or
    ``Int64`` by the model, not by its type), with ``split_blocks`` so that numeric columns are not
    consolidated into one copied block; the nullable ints are inserted as extension arrays, in place.
    """
    columns = spec.model.to_schema().columns
    names = table.column_names
    nullable = [name for name in names if str(columns[name].dtype) == "Int64"]
    frame = table.drop_columns(nullable).to_pandas(
        coerce_temporal_nanoseconds=True, date_as_object=True, split_blocks=True
    )
    as_int64 = {pa.int64(): pd.Int64Dtype()}.get
    for name in nullable:
        frame.insert(names.index(name), name, table.column(name).to_pandas(types_mapper=as_int64).array)
    return frame
