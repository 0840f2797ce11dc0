-- The closed session's reconciliation in the daily report (trading_data/domain/reconciliation.py):
-- each part on its table's row (trades: volumes; prices: traded minutes with a bar; quotes: half
-- hours quoted), null on the other rows and before the close.
ALTER TABLE {schema}.daily_report
    ADD COLUMN IF NOT EXISTS trade_volume DOUBLE PRECISION,
    ADD COLUMN IF NOT EXISTS day_bar_volume DOUBLE PRECISION,
    ADD COLUMN IF NOT EXISTS volume_deviation DOUBLE PRECISION,
    ADD COLUMN IF NOT EXISTS traded_minutes BIGINT,
    ADD COLUMN IF NOT EXISTS traded_minutes_with_bar BIGINT,
    ADD COLUMN IF NOT EXISTS quoted_half_hours BIGINT,
    ADD COLUMN IF NOT EXISTS expected_half_hours BIGINT,
    ADD COLUMN IF NOT EXISTS reconciliation TEXT;
