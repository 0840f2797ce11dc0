-- 0002: operational tables: rows rejected by validation, and the shared per-vendor circuit breakers.
CREATE TABLE IF NOT EXISTS {schema}.rejects (
    id BIGSERIAL PRIMARY KEY,
    table_name TEXT NOT NULL,
    partition_key TEXT,
    run_id TEXT,
    rejected_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    reason TEXT NOT NULL,
    record JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS rejects_table_partition_idx ON {schema}.rejects (table_name, partition_key);

CREATE TABLE IF NOT EXISTS {schema}.circuit_breakers (
    vendor TEXT PRIMARY KEY,
    state TEXT NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'half_open')),
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    opened_at TIMESTAMPTZ,
    next_probe_at TIMESTAMPTZ,
    last_error TEXT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
