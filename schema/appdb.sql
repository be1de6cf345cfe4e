-- The writer's application database: orders and their outbox. Re-runnable.
-- Outbox rows are published in seq order (commit order, not timestamps:
-- clocks go back).

CREATE TABLE IF NOT EXISTS orders (
    order_id    TEXT PRIMARY KEY NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('PLACED', 'PAID')),
    total       INTEGER NOT NULL,  -- minor unit
    paid_amount INTEGER,           -- minor unit, once paid
    placed_at   TEXT NOT NULL,     -- UTC YYYY-MM-DDTHH:MM:SS.sssZ
    paid_at     TEXT
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS outbox_messages (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT, -- commit order
    id              TEXT NOT NULL UNIQUE,  -- the event id (UUIDv7)
    type            TEXT NOT NULL,         -- OrderPlaced / OrderPaid
    aggregate_id    TEXT NOT NULL,         -- the order id: the message key
    payload         TEXT NOT NULL,         -- the envelope, as published
    occurred_at     TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'PENDING'
                    CHECK (status IN ('PENDING', 'SENT', 'DEAD')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0, -- ms since the epoch
    last_error      TEXT,
    sent_at         TEXT,
    lease_until     INTEGER NOT NULL DEFAULT 0, -- ms; a relay is publishing it
    lease_owner     TEXT                        -- which relay
);

-- The relay's "due rows in commit order" and the status counts stay cheap
-- at millions of rows: pending and dead rows are small partial indexes,
-- and SENT rows are counted as the rest.
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox_messages (seq)
    WHERE status = 'PENDING';
CREATE INDEX IF NOT EXISTS outbox_dead ON outbox_messages (seq)
    WHERE status = 'DEAD';
DROP INDEX IF EXISTS outbox_status;
-- "Is an earlier row of this order still pending or dead?"
CREATE INDEX IF NOT EXISTS outbox_open ON outbox_messages (aggregate_id, seq)
    WHERE status IN ('PENDING', 'DEAD');
-- prune: SENT rows by age.
CREATE INDEX IF NOT EXISTS outbox_sent ON outbox_messages (sent_at)
    WHERE status = 'SENT';
