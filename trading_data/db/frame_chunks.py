"""Streams of DataFrames an asset returns for the IO manager to store as they come, in one transaction:
:class:`FrameChunks` for one session window, :class:`SessionChunks` for each session of a multi-session
run (:mod:`trading_data.db.pandas_type_handler` writes them)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import dagster as dg
import pandas as pd


class FrameChunks:
    """DataFrames to store as they come, in one transaction (a feed of millions of rows).

    An asset returns ``FrameChunks(generator)``, not the bare generator: Dagster would take a
    returned generator for a generator of events.
    """

    def __init__(self, chunks: Iterable[pd.DataFrame]):
        self._chunks = chunks
        # Filled while the chunks are consumed (request counts, failures); the IO manager adds it to
        # the materialization's metadata once the stream is exhausted.
        self.metadata: dict[str, Any] = {}
        # Raised by the IO manager once the write has committed: the step fails, the data stays.
        self.error_after_commit: BaseException | None = None
        # Read by the IO manager once the stream is exhausted, inside the same transaction:
        # tickers whose streamed rows must not be stored (they failed part-way), and tickers whose
        # stored rows of the window (those matching ``replace_filter``, when set) the stream replaces.
        self.discard_tickers: set[str] = set()
        self.replace_tickers: list[str] = []
        self.replace_filter: str = ""
        # The pandera model every chunk was already validated (and coerced) with, if any: the IO
        # manager does not validate such chunks a second time.
        self.validated_model: type | None = None

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return iter(self._chunks)


class SessionChunks(FrameChunks):
    """One stream per session of a multi-session run, consumed in turn (memory for one session's pages).

    Each part's outcome (tickers discarded, tickers whose stored window it replaces, an error raised
    after commit) applies to its own session's window, as if that session ran alone; each part's
    metadata goes on its session's materialization.
    """

    def __init__(self, parts: Mapping[str, FrameChunks]):
        super().__init__(self._iterate())
        self.parts = dict(parts)
        models = {part.validated_model for part in self.parts.values()}
        self.validated_model = models.pop() if len(models) == 1 else None

    def _iterate(self) -> Iterator[pd.DataFrame]:
        for part in self.parts.values():
            yield from part
        errors = [p.error_after_commit for p in self.parts.values() if p.error_after_commit is not None]
        self.error_after_commit = errors[0] if errors else None
        failed = {
            k: p.metadata["failed_tickers"].value
            for k, p in self.parts.items()
            if "failed_tickers" in p.metadata
        }
        self.metadata["sessions"] = dg.MetadataValue.int(len(self.parts))
        if failed:
            self.metadata["failed_tickers_by_session"] = dg.MetadataValue.json(failed)
