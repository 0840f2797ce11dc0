"""Planned backfills: what a range of sessions costs before it runs (:mod:`.plan`), and running it as one
Dagster backfill followed in the terminal (:mod:`.run`); `trading-data backfill` (:mod:`.commands`)."""
