-- 5-minute and hourly bars from the minute bars of {schema}.prices (asset bar_aggregates). On plain
-- PostgreSQL these are tables the asset fills per session; in TimescaleDB mode the migration replaces them
-- with continuous aggregates of the same name and columns (trading_data/db/aggregates.py).
CREATE TABLE IF NOT EXISTS {schema}.bars_5m (
    ts TIMESTAMPTZ NOT NULL,
    ticker TEXT NOT NULL,
    open DOUBLE PRECISION NOT NULL,
    high DOUBLE PRECISION NOT NULL,
    low DOUBLE PRECISION NOT NULL,
    close DOUBLE PRECISION NOT NULL,
    volume DOUBLE PRECISION NOT NULL,
    vwap DOUBLE PRECISION,
    transactions BIGINT,
    minute_bars BIGINT NOT NULL,
    PRIMARY KEY (ticker, ts)
);
CREATE INDEX IF NOT EXISTS bars_5m_ts_idx ON {schema}.bars_5m (ts);

CREATE TABLE IF NOT EXISTS {schema}.bars_1h (LIKE {schema}.bars_5m INCLUDING ALL);
