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
    """Each value's text in ``orjson.dumps`` of the array, cut at its commas by index arithmetic (splitting
    the bytes made a Python object per value: two thirds of a quote page's rendering)."""
    if len(values) == 0:
        return np.zeros((0, 1), dtype=np.uint8)
    text = np.frombuffer(orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY), dtype=np.uint8)
    ends = np.flatnonzero(text == ord(","))  # no number's text holds a comma
    ends = np.append(ends, len(text) - 1)  # the last value ends at the closing bracket
    starts = np.empty_like(ends)
    starts[0] = 1
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts
    offsets = np.arange(int(lengths.max()))
    matrix = text[np.minimum(starts[:, None] + offsets, len(text) - 1)]
    matrix[offsets >= lengths[:, None]] = 0
    return matrix


def only_where(slot: np.ndarray, present: np.ndarray) -> np.ndarray:
    """``slot`` on the rows where ``present``, nothing on the others."""
    return np.where(present[:, None], slot, np.uint8(0))


def array_of_objects(
    rows: int, slots: Sequence[np.ndarray], before: bytes = b"", after: bytes = b""
) -> bytes:
    """``before[row,row,...]after``: each row the concatenation of its ``slots`` (each ``(rows, width)`` or a
    literal). ``before`` and ``after`` (the envelope around a page's rows, NUL-free) are laid in the same
    buffer, so a 10 MB page is not copied again to be wrapped."""
    if rows == 0:
        return before + b"[]" + after
    widths = [slot.shape[1] for slot in slots]
    head = len(before) + 1
    size = rows * (sum(widths) + 1)
    buffer = np.empty(head + size + len(after), dtype=np.uint8)
    buffer[:head] = np.frombuffer(before + b"[", dtype=np.uint8)
    buffer[head + size :] = np.frombuffer(after, dtype=np.uint8)
    matrix = buffer[head : head + size].reshape(rows, sum(widths) + 1)
    # The literal slots go in as one template row copied down the matrix (one contiguous copy, where a
    # narrow strided copy per slot cost twice as long); then each row's values.
    template = np.zeros(matrix.shape[1], dtype=np.uint8)
    template[-1] = ord(",")
    values: list[tuple[int, int, np.ndarray]] = []
    start = 0
    for slot, width in zip(slots, widths, strict=True):
        if slot.shape[0] == 1:
            template[start : start + width] = slot[0]
        else:
            values.append((start, width, slot))
        start += width
    matrix[:] = template
    for start, width, slot in values:
        matrix[:, start : start + width] = slot
    matrix[-1, -1] = ord("]")
    # Squeezing out the NUL padding: bytes.translate copies once, a boolean mask would take two more passes.
    return buffer.tobytes().translate(None, b"\0")
