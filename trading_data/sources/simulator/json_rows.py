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

_DIGIT = np.uint8(ord("0"))
_SMALL_INT_TABLE = 4096  # non-negative ints below this are looked up in a table of their texts


def literal(text: bytes) -> np.ndarray:
    """A slot holding the same bytes on every row."""
    return np.frombuffer(text, dtype=np.uint8)[None, :]


def texts(table: Sequence[bytes], codes: np.ndarray) -> np.ndarray:
    """Slot ``table[code]`` on each row (``b""`` for nothing), NUL-padded to the longest text."""
    width = max((len(t) for t in table), default=0)
    padded = np.zeros((len(table), max(width, 1)), dtype=np.uint8)
    for i, text in enumerate(table):
        padded[i, : len(text)] = np.frombuffer(text, dtype=np.uint8)
    return padded[codes]


def ints(values: np.ndarray) -> np.ndarray:
    """Decimal text of integers, as ``orjson`` writes them."""
    values = np.asarray(values, dtype=np.int64)
    if len(values) == 0:
        return np.zeros((0, 1), dtype=np.uint8)
    low, high = int(values.min()), int(values.max())
    if low < 0:
        return _orjson_texts(values)
    if high < _SMALL_INT_TABLE:
        return texts([str(i).encode() for i in range(high + 1)], values)
    width = len(str(high))
    digits = np.empty((len(values), width), dtype=np.uint8)
    rest = values.copy()
    for column in range(width - 1, -1, -1):
        rest, digit = np.divmod(rest, 10)
        digits[:, column] = digit
    # Leading zeros become NUL (squeezed out), except the last digit of a zero.
    leading = np.cumsum(digits[:, :-1] != 0, axis=1) == 0
    digits += _DIGIT
    digits[:, :-1][leading] = 0
    return digits


def floats(values: np.ndarray) -> np.ndarray:
    """Shortest round-trip text of floats, from ``orjson`` itself (so exactly its formatting)."""
    return _orjson_texts(np.asarray(values, dtype=np.float64))


def _orjson_texts(values: np.ndarray) -> np.ndarray:
    if len(values) == 0:
        return np.zeros((0, 1), dtype=np.uint8)
    parts = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
    array = np.array(parts, dtype=bytes)
    return array.view(np.uint8).reshape(len(array), array.dtype.itemsize)


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
