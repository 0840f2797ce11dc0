-- 0004: views a SQL user reaches for. Their columns, and every table's, are described with COMMENT ON
-- from the pandera models' descriptions by the migration runner (trading_data/db/documentation.py).
CREATE OR REPLACE VIEW {schema}.minute_bars AS
SELECT (ts AT TIME ZONE 'America/New_York')::date AS session, ts, ticker, open, high, low, close, volume,
       vwap, transactions
FROM {schema}.prices
WHERE timespan = 'minute';

CREATE OR REPLACE VIEW {schema}.daily_bars AS
SELECT (ts AT TIME ZONE 'America/New_York')::date AS session, ts, ticker, open, high, low, close, volume,
       vwap, transactions
FROM {schema}.prices
WHERE timespan = 'day';

-- The newest stored quote of each ticker active in the latest selected session: one backward probe of
-- the quotes key (ticker, ts, sequence_number) per ticker, never a scan of the table.
CREATE OR REPLACE VIEW {schema}.latest_nbbo AS
SELECT a.session, q.ts, q.ticker, q.sequence_number, q.sip_ns, q.participant_ns, q.bid_price, q.bid_size,
       q.bid_exchange, q.ask_price, q.ask_size, q.ask_exchange, q.tape
FROM (
    SELECT session, ticker FROM {schema}.selected_tickers
    WHERE is_active AND session = (SELECT max(session) FROM {schema}.selected_tickers)
) AS a
CROSS JOIN LATERAL (
    SELECT * FROM {schema}.quotes AS q WHERE q.ticker = a.ticker
    ORDER BY q.ts DESC, q.sequence_number DESC LIMIT 1
) AS q;
