-- The read model (docs/reference.md 2). Re-runnable: every statement is IF NOT
-- EXISTS or guarded, so opening an existing file changes nothing.
-- The contract's relations are tables here; partition_offsets is internal.

CREATE TABLE IF NOT EXISTS schema_info (
    schema_version INTEGER NOT NULL
);
INSERT INTO schema_info (schema_version)
    SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM schema_info);

CREATE TABLE IF NOT EXISTS order_list (
    order_id    TEXT PRIMARY KEY NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('ORDERED', 'PAID')),
    total       INTEGER,          -- OrderPlaced payload.total, minor unit
    paid_amount INTEGER,          -- OrderPaid payload.amount, minor unit
    placed_at   TEXT,             -- OrderPlaced occurredAt, normalised UTC
    paid_at     TEXT              -- OrderPaid occurredAt, normalised UTC
) WITHOUT ROWID;

-- Exactly one row, kept equal to the sums over order_list.
CREATE TABLE IF NOT EXISTS order_totals (
    orders_placed INTEGER NOT NULL,
    orders_paid   INTEGER NOT NULL,
    placed_amount INTEGER NOT NULL,
    paid_amount   INTEGER NOT NULL
);
INSERT INTO order_totals
    SELECT 0, 0, 0, 0 WHERE NOT EXISTS (SELECT 1 FROM order_totals);

CREATE TABLE IF NOT EXISTS daily_totals (
    day           TEXT PRIMARY KEY NOT NULL, -- YYYY-MM-DD, UTC
    orders_placed INTEGER NOT NULL DEFAULT 0,
    orders_paid   INTEGER NOT NULL DEFAULT 0,
    placed_amount INTEGER NOT NULL DEFAULT 0,
    paid_amount   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- processed_events (docs/reference.md 2): one row per distinct event id applied or
-- ignored, with the fields two deliveries of one id must agree on
-- (docs/reference.md 1). It is a view over a small table that takes new ids
-- (processed_recent) and sealed runs (processed_run_N, listed in
-- processed_runs with a filter of their ids): random ids then dirty pages
-- of a table that stays in the cache, and an id never seen is told apart
-- from the runs by their filters without reading them. store.c seals
-- processed_recent into a run when it grows large and recreates the view.
CREATE TABLE IF NOT EXISTS processed_recent (
    event_id     TEXT PRIMARY KEY NOT NULL,
    event_type   TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,   -- '' for another type without one
    occurred_at  TEXT NOT NULL,   -- '' for another type without one
    amount       INTEGER          -- NULL for another type
) WITHOUT ROWID;

-- sealed_at: when the run was sealed, ms since 1970; every id in it was
-- recorded before. Dedupe retention drops the run once that is older than
-- its window; NULL is never dropped. store_runs.c adds the column to older
-- files, whose runs get the time of that migration.
CREATE TABLE IF NOT EXISTS processed_runs (
    run            INTEGER PRIMARY KEY, -- table processed_run_<run>
    events         INTEGER NOT NULL,
    filter_version INTEGER NOT NULL,
    filter         BLOB NOT NULL,       -- idfilter.c's saved form
    sealed_at      INTEGER              -- ms since 1970
);

-- One row: when processed_recent got its oldest row (ms since 1970), NULL
-- while it is empty. Dedupe retention seals processed_recent once this is
-- a quarter of its window old, so that no id waits there for ever.
CREATE TABLE IF NOT EXISTS processed_recent_since (
    since_ms INTEGER
);
INSERT INTO processed_recent_since (since_ms)
    SELECT NULL WHERE NOT EXISTS (SELECT 1 FROM processed_recent_since);

CREATE VIEW IF NOT EXISTS processed_events AS
    SELECT event_id, event_type, aggregate_id, occurred_at, amount
    FROM processed_recent;

CREATE TABLE IF NOT EXISTS dead_letters (
    topic       TEXT NOT NULL,
    "partition" INTEGER NOT NULL,
    "offset"    INTEGER NOT NULL,
    key         BLOB,
    value       BLOB,
    reason      TEXT NOT NULL,
    received_at TEXT NOT NULL,
    UNIQUE (topic, "partition", "offset")
);

-- How far each partition is applied: written in the same transaction as
-- the projections, so the file itself says where to resume.
CREATE TABLE IF NOT EXISTS partition_offsets (
    topic       TEXT NOT NULL,
    "partition" INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, "partition")
) WITHOUT ROWID;

-- Internal: one row about the file itself. generation changes when a
-- rebuild swaps a new model in (a projector on the file notices it in its
-- next batch transaction and resumes from the new offsets); the counters
-- add up what the batches committed (orderflow status reads them);
-- rebuilt_at and truncated say how the file was made by a rebuild.
CREATE TABLE IF NOT EXISTS store_info (
    generation    INTEGER NOT NULL,
    applied       INTEGER NOT NULL DEFAULT 0,
    ignored       INTEGER NOT NULL DEFAULT 0,
    duplicates    INTEGER NOT NULL DEFAULT 0,
    dead_letters  INTEGER NOT NULL DEFAULT 0,
    batches       INTEGER NOT NULL DEFAULT 0,
    last_batch_at TEXT,     -- UTC, occurredAt format; NULL: none yet
    rebuilt_at    TEXT,     -- when a rebuild made this file; NULL: never
    truncated     TEXT      -- a rebuild over deleted history: what was gone
);
-- A random generation below 2^53, so JSON readers get it exactly.
INSERT INTO store_info (generation)
    SELECT abs(random() % 9007199254740992)
    WHERE NOT EXISTS (SELECT 1 FROM store_info);
