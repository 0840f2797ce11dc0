-- 0001: the market tables, one per asset. Columns mirror trading_data/schemas.py (checked by tests).
-- {schema} is replaced by the migration runner with the configured, validated schema name.
CREATE SCHEMA IF NOT EXISTS {schema};

CREATE TABLE IF NOT EXISTS {schema}.selected_tickers (
    session DATE NOT NULL,
    ticker TEXT NOT NULL,
    avg_volume DOUBLE PRECISION,
    last_close DOUBLE PRECISION,
    atr DOUBLE PRECISION,
    volatility DOUBLE PRECISION,
    relative_volume DOUBLE PRECISION,
    momentum DOUBLE PRECISION,
    opportunity_score DOUBLE PRECISION,
    rank BIGINT,
    in_focus BOOLEAN NOT NULL,
    is_active BOOLEAN NOT NULL,
    is_fallback BOOLEAN NOT NULL,
    selection_source TEXT NOT NULL,
    selected_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session, ticker)
);

CREATE TABLE IF NOT EXISTS {schema}.position_sizes (
    session DATE NOT NULL,
    ticker TEXT NOT NULL,
    price DOUBLE PRECISION NOT NULL,
    atr DOUBLE PRECISION NOT NULL,
    stop_distance DOUBLE PRECISION NOT NULL,
    risk_amount DOUBLE PRECISION NOT NULL,
    shares BIGINT NOT NULL,
    notional DOUBLE PRECISION NOT NULL,
    weight DOUBLE PRECISION NOT NULL,
    is_fallback BOOLEAN NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (session, ticker)
);

CREATE TABLE IF NOT EXISTS {schema}.prices (
    ts TIMESTAMPTZ NOT NULL,
    ticker TEXT NOT NULL,
    timespan TEXT NOT NULL,
    open DOUBLE PRECISION NOT NULL,
    high DOUBLE PRECISION NOT NULL,
    low DOUBLE PRECISION NOT NULL,
    close DOUBLE PRECISION NOT NULL,
    volume DOUBLE PRECISION NOT NULL,
    vwap DOUBLE PRECISION,
    transactions BIGINT,
    PRIMARY KEY (ticker, timespan, ts)
);
CREATE INDEX IF NOT EXISTS prices_ts_idx ON {schema}.prices (ts);

CREATE TABLE IF NOT EXISTS {schema}.quotes (
    ts TIMESTAMPTZ NOT NULL,
    ticker TEXT NOT NULL,
    sequence_number BIGINT NOT NULL,
    sip_ns BIGINT NOT NULL,
    participant_ns BIGINT,
    bid_price DOUBLE PRECISION NOT NULL,
    bid_size DOUBLE PRECISION NOT NULL,
    bid_exchange BIGINT,
    ask_price DOUBLE PRECISION NOT NULL,
    ask_size DOUBLE PRECISION NOT NULL,
    ask_exchange BIGINT,
    tape BIGINT,
    PRIMARY KEY (ticker, ts, sequence_number)
);
CREATE INDEX IF NOT EXISTS quotes_ts_idx ON {schema}.quotes (ts);

CREATE TABLE IF NOT EXISTS {schema}.trades (
    ts TIMESTAMPTZ NOT NULL,
    ticker TEXT NOT NULL,
    sequence_number BIGINT NOT NULL,
    exchange BIGINT NOT NULL,
    trade_id TEXT NOT NULL,
    sip_ns BIGINT NOT NULL,
    participant_ns BIGINT,
    price DOUBLE PRECISION NOT NULL,
    size DOUBLE PRECISION NOT NULL,
    conditions TEXT,
    tape BIGINT,
    PRIMARY KEY (ticker, ts, sequence_number, exchange, trade_id)
);
CREATE INDEX IF NOT EXISTS trades_ts_idx ON {schema}.trades (ts);

CREATE TABLE IF NOT EXISTS {schema}.options_flow (
    ts TIMESTAMPTZ NOT NULL,
    ticker TEXT NOT NULL,
    record_type TEXT NOT NULL,
    record_id TEXT NOT NULL,
    option_symbol TEXT NOT NULL,
    expiry DATE NOT NULL,
    strike DOUBLE PRECISION NOT NULL,
    option_type TEXT NOT NULL,
    price DOUBLE PRECISION,
    size BIGINT,
    premium DOUBLE PRECISION,
    volume DOUBLE PRECISION,
    open_interest BIGINT,
    implied_volatility DOUBLE PRECISION,
    delta DOUBLE PRECISION,
    gamma DOUBLE PRECISION,
    theta DOUBLE PRECISION,
    vega DOUBLE PRECISION,
    underlying_price DOUBLE PRECISION,
    alert_rule TEXT,
    PRIMARY KEY (ticker, ts, record_type, record_id)
);
CREATE INDEX IF NOT EXISTS options_flow_ts_idx ON {schema}.options_flow (ts);

CREATE TABLE IF NOT EXISTS {schema}.indicators (
    ts TIMESTAMPTZ NOT NULL,
    ticker TEXT NOT NULL,
    close DOUBLE PRECISION NOT NULL,
    sma_20 DOUBLE PRECISION,
    ema_12 DOUBLE PRECISION,
    ema_26 DOUBLE PRECISION,
    rsi_14 DOUBLE PRECISION,
    macd DOUBLE PRECISION,
    macd_signal DOUBLE PRECISION,
    macd_hist DOUBLE PRECISION,
    bb_upper DOUBLE PRECISION,
    bb_middle DOUBLE PRECISION,
    bb_lower DOUBLE PRECISION,
    atr_14 DOUBLE PRECISION,
    vwap DOUBLE PRECISION,
    PRIMARY KEY (ticker, ts)
);
CREATE INDEX IF NOT EXISTS indicators_ts_idx ON {schema}.indicators (ts);

CREATE TABLE IF NOT EXISTS {schema}.daily_report (
    session DATE NOT NULL,
    table_name TEXT NOT NULL,
    ticker TEXT NOT NULL,
    rows BIGINT NOT NULL,
    expected_minutes BIGINT NOT NULL,
    covered_minutes BIGINT NOT NULL,
    coverage DOUBLE PRECISION,
    gaps BIGINT NOT NULL,
    max_gap_minutes BIGINT NOT NULL,
    validation_failures BIGINT NOT NULL,
    last_ts TIMESTAMPTZ,
    freshness_minutes DOUBLE PRECISION,
    PRIMARY KEY (session, table_name, ticker)
);
