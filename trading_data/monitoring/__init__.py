"""Monitoring rules, without Dagster definitions: freshness expectations over the schedule table, volatility
bursts, failure-alert messages, and what the instance knows of materializations. The sensors and checks
that apply them are in ``trading_data/defs/monitoring``."""
