"""Definitions by domain, loaded by ``trading_data.definitions`` with ``dg.load_from_defs_folder``."""
