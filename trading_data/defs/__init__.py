"""Definitions by domain, one folder each, loaded by ``trading_data.definitions`` with Dagster's package
loader (``dg.load_definitions_from_package_module``)."""
