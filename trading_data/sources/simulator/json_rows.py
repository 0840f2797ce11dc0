"""JSON arrays of objects written straight from numpy columns, byte for byte what ``orjson.dumps`` of the rows
as dicts gives.

A page is laid out as one ``uint8`` matrix, a row per line: literal key bytes, then each value's text
right- or left-aligned in a fixed-width slot padded with NUL bytes, which cannot occur in JSON text and
are squeezed out at the end (``matrix[matrix != 0]``). Optional members are slots whose text is NUL on
the rows that lack them. Every step is vectorised over the rows: no Python object per row or value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import orjson


def _texts_matrix(parts: Sequence[bytes]) -> np.ndarray:
    """Byte strings as the rows of a NUL-padded ``uint8`` matrix."""
    array = np.array(parts, dtype=bytes)
    return array.view(np.uint8).reshape(len(array), array.dtype.itemsize)


_SMALL_INTS = _texts_matrix([str(i).encode() for i in range(10_000)])  # looked up, not formatted


def literal(text: bytes) -> np.ndarray:
    """A slot holding the same bytes on every row."""
    return np.frombuffer(text, dtype=np.uint8)[None, :]


def texts(table: Sequence[bytes], codes: np.ndarray) -> np.ndarray:
    """Slot ``table[code]`` on each row (``b""`` for nothing)."""
    return _texts_matrix(table)[codes]


def ints(values: np.ndarray) -> np.ndarray:
    """Decimal text of integers, as ``orjson`` writes them."""
    values = np.asarray(values, dtype=np.int64)
    if len(values) == 0 or values.min() < 0:
        return _orjson_texts(values)
    low, high = int(values.min()), int(values.max())
    if high < len(_SMALL_INTS):
        return _SMALL_INTS[:, : len(str(high))][values]
    width = len(str(high))
    if len(str(low)) == width:  # all as wide (timestamps, sequence numbers): orjson's text, one row each
        text = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)
        return np.frombuffer(text, dtype=np.uint8)[1:].reshape(len(values), width + 1)[:, :width]
    return _orjson_texts(values)


def floats(values: np.ndarray) -> np.ndarray:
    """Shortest round-trip text of floats, from ``orjson`` itself (so exactly its formatting)."""
    return _orjson_texts(np.asarray(values, dtype=np.float64))


def _orjson_texts(values: np.ndarray) -> np.ndarray:
    if len(values) == 0:
        return np.zeros((0, 1), dtype=np.uint8)
    return _texts_matrix(orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b","))


def only_where(slot: np.ndarray, present: np.ndarray) -> np.ndarray:
    """``slot`` on the rows where ``present``, nothing on the others."""
    return np.where(present[:, None], slot, np.uint8(0))


def array_of_objects(rows: int, slots: Sequence[np.ndarray]) -> bytes:
    """``[row,row,...]``: each row the concatenation of its ``slots`` (each ``(rows, width)`` or a literal)."""
    if rows == 0:
        return b"[]"
    widths = [slot.shape[1] for slot in slots]
    matrix = np.empty((rows, sum(widths) + 1), dtype=np.uint8)
    start = 0
    for slot, width in zip(slots, widths, strict=True):
        matrix[:, start : start + width] = slot
        start += width
    matrix[:, -1] = ord(",")
    matrix[-1, -1] = ord("]")
    return b"[" + matrix[matrix != 0].tobytes()
