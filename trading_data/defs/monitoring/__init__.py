"""Monitoring: the failure-alert and volatility-burst sensors and the calendar-aware freshness checks."""
