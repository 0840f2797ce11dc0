"""Operations: the shared vendor circuit breaker, calendar-aware freshness checks, alerting and
adaptive-scheduling sensors, and the ``trading-data health`` report.

Import the submodules directly (``trading_data.sources.breaker`` etc.); this package imports nothing so
that the breaker can be used by the vendor clients without loading Dagster definitions.
"""
