"""Dagster building blocks the definitions share, not definitions themselves: what asset steps share
(metadata, retry policy, step failures, validation), the per-ticker feed stream, the configuration-checking
executor and the trading-day schedule factory."""
