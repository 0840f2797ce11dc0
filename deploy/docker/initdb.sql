-- Dagster's instance storage gets a database of its own beside the market data.
CREATE DATABASE dagster;
